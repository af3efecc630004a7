package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/termui"
)

// peerFlags are the flags chat, send and receive share.
type peerFlags struct {
	hub          string
	room         string
	relay        bool
	passwordFile string
	out          string
	chunk        int
	loopback     bool
}

func (p *peerFlags) register(fs *flag.FlagSet, withRoom, withOut bool) {
	fs.StringVar(&p.hub, "hub", "http://localhost:8080", "hub URL")
	if withRoom {
		fs.StringVar(&p.room, "room", "", "room code to join; without it, create a room and print its code")
	}
	fs.BoolVar(&p.relay, "relay", false, "use only the TURN relay (no direct path)")
	fs.StringVar(&p.passwordFile, "password-file", "", "read the password from this file (else TRYST_PASSWORD, else a prompt)")
	if withOut {
		fs.StringVar(&p.out, "out", ".", "directory for received files")
	}
	fs.IntVar(&p.chunk, "chunk-size", 16<<10, "file chunk size in bytes (1 KiB to 64 KiB)")
	fs.BoolVar(&p.loopback, "ice-loopback", false, "gather only loopback ICE candidates (tests and local development)")
}

func parsePeerFlags(name string, args []string, withRoom, withOut bool, stderr io.Writer) (*peerFlags, *flag.FlagSet, error) {
	pf := &peerFlags{}
	fs := flag.NewFlagSet("tryst "+name, flag.ContinueOnError)
	pf.register(fs, withRoom, withOut)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, nil, err
		}
		return nil, nil, usageError{err}
	}
	return pf, fs, nil
}

// newClient reads the password and builds the client the flags describe.
func (pf *peerFlags) newClient(std stdio, onEvent func(client.Event)) (*client.Client, error) {
	pw, err := readPassword(pf.passwordFile, std)
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{
		Hub: pf.hub, Room: pf.room, Password: pw, Relay: pf.relay, OutDir: pf.out,
		ChunkSize: pf.chunk, LoopbackOnly: pf.loopback, OnEvent: onEvent,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func runChat(ctx context.Context, args []string, std stdio) error {
	pf, _, err := parsePeerFlags("chat", args, true, true, std.err)
	if err != nil {
		return err
	}
	pr := termui.NewPrinter(std.out, std.out)
	c, err := pf.newClient(std, func(ev client.Event) {
		switch ev.Kind {
		case client.EventRoom:
			pr.Say("* room code: %s (give it to the other side, with the password)", ev.Text)
		case client.EventChat:
			pr.Say("[%s] peer: %s", ev.Time.Format("15:04:05"), ev.Text)
		default:
			pr.Event(ev)
		}
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(std.in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case err := <-runErr:
			return chatEnd(err)
		case line, ok := <-lines:
			if !ok {
				// End of input (a script's pipe): deliver what was typed, then leave.
				if err := c.WaitIdle(ctx); err != nil {
					return chatEnd(err)
				}
				c.Leave()
				return chatEnd(<-runErr)
			}
			if quit := chatLine(c, pr, line); quit {
				c.Leave()
				return chatEnd(<-runErr)
			}
		}
	}
}

// chatEnd maps how a chat ended to the command's result: the other side
// leaving is a normal end.
func chatEnd(err error) error {
	if errors.Is(err, client.ErrPeerLeft) {
		return nil
	}
	return err
}

// chatLine handles one typed line; it reports whether to quit.
func chatLine(c *client.Client, pr *termui.Printer, line string) bool {
	cmd, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch cmd {
	case "/quit", "/exit":
		return true
	case "/status":
		st := c.Status()
		if !st.Connected {
			pr.Say("* room %s: not connected", st.Room)
		} else {
			pr.Say("* room %s: connected, %s, round trip %v", st.Room, st.Path, st.RTT.Round(time.Millisecond/10))
		}
	case "/send":
		paths := strings.Fields(rest)
		if len(paths) == 0 {
			pr.Say("* usage: /send PATH...")
		}
		for _, p := range paths {
			if err := c.SendFile(p); err != nil {
				pr.Say("* %v", err)
			} else {
				pr.Say("* queued %s", p)
			}
		}
	case "/help":
		pr.Say("* /send PATH... sends files, /status shows the connection, /quit leaves")
	case "":
	default:
		if strings.HasPrefix(cmd, "/") && !strings.HasPrefix(cmd, "//") {
			pr.Say("* unknown command %s (/help lists them; start with // to send a line beginning with /)", cmd)
			return false
		}
		if err := c.Send(strings.TrimPrefix(line, "/")); err != nil {
			pr.Say("* %v", err)
		}
	}
	return false
}

func runSend(ctx context.Context, args []string, std stdio) error {
	pf, fs, err := parsePeerFlags("send", args, false, false, std.err)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("send: no files given")}
	}
	pr := termui.NewPrinter(std.out, std.err)
	failed := 0
	var mu sync.Mutex
	c, err := pf.newClient(std, func(ev client.Event) {
		switch ev.Kind {
		case client.EventRoom:
			pr.Say("code: %s", ev.Text)
		case client.EventFileSent:
			if !ev.File.OK {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			pr.Event(ev)
		default:
			pr.Event(ev)
		}
	})
	if err != nil {
		return err
	}
	for _, p := range fs.Args() {
		if err := c.SendFile(p); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	idle := make(chan error, 1)
	go func() { idle <- c.WaitIdle(ctx) }()
	select {
	case err := <-runErr:
		if err == nil {
			err = errors.New("session ended before the files were delivered")
		}
		return err
	case err := <-idle:
		if err != nil {
			return err
		}
	}
	c.Leave()
	if err := <-runErr; err != nil && !errors.Is(err, client.ErrPeerLeft) {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not delivered intact", failed, fs.NArg())
	}
	return nil
}

func runReceive(ctx context.Context, args []string, std stdio) error {
	pf, fs, err := parsePeerFlags("receive", args, false, true, std.err)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("receive: give exactly one room code")}
	}
	pf.room = fs.Arg(0)
	pr := termui.NewPrinter(std.out, std.err)
	var mu sync.Mutex
	got, bad := 0, 0
	c, err := pf.newClient(std, func(ev client.Event) {
		if ev.Kind == client.EventFileReceived {
			mu.Lock()
			if ev.File.OK {
				got++
			} else {
				bad++
			}
			mu.Unlock()
		}
		pr.Event(ev)
	})
	if err != nil {
		return err
	}
	err = c.Run(ctx)
	if err != nil && !errors.Is(err, client.ErrPeerLeft) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case bad > 0:
		return fmt.Errorf("%d file(s) refused or corrupted, %d received", bad, got)
	case got == 0:
		return errors.New("the sender left without sending a file")
	}
	return nil
}
