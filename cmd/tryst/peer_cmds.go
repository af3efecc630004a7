package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/settings"
	"github.com/tryst-chat/tryst/internal/termui"
	"github.com/tryst-chat/tryst/proto"
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
	stateDir     string
	debug        bool
	stateKey     string // set by the command: send keys its state by its files
}

func (p *peerFlags) register(fs *flag.FlagSet, withRoom, withOut bool, stateDir string) {
	fs.StringVar(&p.hub, "hub", "http://localhost:8080", "hub URL")
	if withRoom {
		fs.StringVar(&p.room, "room", "", "room code to join; without it, create a room and print its code")
	}
	fs.BoolVar(&p.relay, "relay", false, "use only the TURN relay (no direct path)")
	fs.StringVar(&p.passwordFile, "password-file", "", "read the password from this file (else TRYST_PASSWORD, else a prompt)")
	if withOut {
		fs.StringVar(&p.out, "out", ".", "directory for received files")
	}
	fs.IntVar(&p.chunk, "chunk-size", proto.DefaultChunkData,
		fmt.Sprintf("file data per chunk in bytes (%d to %d)", client.MinChunkSize, proto.MaxChunkData))
	fs.BoolVar(&p.loopback, "ice-loopback", false, "gather only loopback ICE candidates (tests and local development)")
	fs.StringVar(&p.stateDir, "state-dir", stateDir, "where to keep the room and the transfers under way, so that "+
		"rerunning the command after it died resumes them (empty: keep nothing)")
	fs.BoolVar(&p.debug, "debug", false, "log what happens on the network in detail, to standard error")
}

func parsePeerFlags(name string, args []string, withRoom, withOut bool, std stdio) (*peerFlags, *flag.FlagSet, error) {
	stderr := std.err
	pf := &peerFlags{}
	fs := flag.NewFlagSet("tryst "+name, flag.ContinueOnError)
	pf.register(fs, withRoom, withOut, settings.StateDir(std.getenv))
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
	cfg := client.Config{
		Hub: pf.hub, Room: pf.room, Password: pw, Relay: pf.relay, OutDir: pf.out,
		ChunkSize: pf.chunk, LoopbackOnly: pf.loopback, OnEvent: onEvent,
		StateDir: pf.stateDir, StateKey: pf.stateKey,
	}
	if pf.debug {
		cfg.Logger = slog.New(slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// errInterrupted is how send and receive end on Ctrl-C: an explicit leave.
var errInterrupted = errors.New("interrupted: you left the room, and it is closed (nothing to resume)")

func runChat(ctx context.Context, args []string, std stdio) error {
	pf, _, err := parsePeerFlags("chat", args, true, true, std)
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
			return chatEnd(pr, err)
		case line, ok := <-lines:
			if !ok {
				// End of input (a script's pipe): deliver what was typed, then leave.
				if err := c.WaitIdle(ctx); err != nil {
					return chatEnd(pr, <-runErr)
				}
				c.Leave()
				return chatEnd(pr, <-runErr)
			}
			if quit := chatLine(c, pr, line); quit {
				c.Leave()
				return chatEnd(pr, <-runErr)
			}
		}
	}
}

// chatEnd maps how a chat ended to the command's result: the other side
// leaving, and Ctrl-C (which leaves the room), are normal ends.
func chatEnd(pr *termui.Printer, err error) error {
	switch {
	case errors.Is(err, client.ErrPeerLeft):
		return nil
	case errors.Is(err, context.Canceled):
		pr.Say("* you left the room; it is closed")
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
		hub := "hub reachable"
		if !st.Hub {
			hub = "hub unreachable, reconnecting in the background"
			if st.HubIssue != "" {
				hub = "hub unreachable (" + st.HubIssue + "), reconnecting in the background"
			}
		}
		if !st.Connected {
			pr.Say("* room %s: not connected to the other side; %s", st.Room, hub)
		} else {
			pr.Say("* room %s: connected, %s, round trip %v; %s", st.Room, st.Path, st.RTT.Round(time.Millisecond/10), hub)
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
	pf, fs, err := parsePeerFlags("send", args, false, false, std)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("send: no files given")}
	}
	// A rerun with the same files (and hub) comes back to the same room.
	var abs []string
	for _, p := range fs.Args() {
		a, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		abs = append(abs, a)
	}
	pf.stateKey = client.SendStateKey(pf.hub, abs)
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
	var delivered bool
	select {
	case err = <-runErr:
	case ierr := <-idle:
		if delivered = ierr == nil; delivered {
			c.Leave()
		}
		err = <-runErr
	}
	switch {
	case delivered && (err == nil || errors.Is(err, client.ErrPeerLeft)):
	case errors.Is(err, context.Canceled):
		return errInterrupted
	case errors.Is(err, client.ErrPeerLeft):
		return errors.New("the receiver left the room before the files were delivered")
	case err == nil:
		return errors.New("the session ended before the files were delivered")
	default:
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not delivered intact", failed, fs.NArg())
	}
	return nil
}

func runReceive(ctx context.Context, args []string, std stdio) error {
	pf, fs, err := parsePeerFlags("receive", args, false, true, std)
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
	if errors.Is(err, context.Canceled) {
		return errInterrupted
	}
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
