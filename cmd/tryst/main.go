// Command tryst runs Tryst: `tryst serve` starts the rendezvous hub, the
// STUN/TURN relay and the metrics endpoint; the other subcommands are clients
// and tools. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/tryst-chat/tryst/internal/termui"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func versionString() string {
	if version != "dev" {
		return version
	}
	// A plain `go build` or `go run` still records the VCS revision.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

const usage = `tryst: private peer-to-peer chat and file transfer

Usage:
  tryst serve [flags]            run the hub, the STUN/TURN relay and metrics
  tryst chat --hub URL [--room CODE] [--relay]
                                 chat (and /send files); hosts without --room
  tryst send --hub URL [--relay] PATH...
                                 print a code and send files to whoever joins
  tryst receive --hub URL [--out DIR] CODE
                                 receive files
  tryst doctor --hub URL         check a deployment from the outside (WebSocket, ICE,
                                 clock, STUN, TURN over UDP/TCP/TLS, relayed round trip)
  tryst bench hub --hub URL      load-test a hub
  tryst bench turn --server H:P  load-test a TURN server
  tryst bench transfer           file-transfer throughput vs a bare data channel
  tryst version                  print the version

Run "tryst COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runIO(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.LookupEnv})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// stdio is what a command may touch of its process, so tests can run
// commands in-process.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) (string, bool)
}

// usageError is a bad setting or command line: main exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badSetting(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

// exitCode reports err in one line: status 2 for usage errors, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	// Escaped: an error can quote what the other side sent (an SDP, a
	// file name), and it must not reach the terminal raw.
	fmt.Fprintf(stderr, "tryst: %s\n", termui.Escape(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// command is the one signature every subcommand has: its arguments after
// the command name, and what it may touch of the process.
type command func(ctx context.Context, args []string, std stdio) error

var (
	commands = map[string]command{
		"serve":   runServe,
		"chat":    runChat,
		"send":    runSend,
		"receive": runReceive,
		"doctor":  runDoctor,
	}
	benchTargets = map[string]command{
		"hub":      runBenchHub,
		"turn":     runBenchTURN,
		"transfer": runBenchTransfer,
	}
)

func runIO(ctx context.Context, args []string, std stdio) error {
	stdout, stderr := std.out, std.err
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	if run, ok := commands[args[0]]; ok {
		return run(ctx, args[1:], std)
	}
	switch args[0] {
	case "bench":
		if len(args) < 2 {
			return usageError{errors.New("bench needs a target: hub, turn or transfer")}
		}
		if run, ok := benchTargets[args[1]]; ok {
			return run(ctx, args[2:], std)
		}
		return usageError{fmt.Errorf("unknown bench target %q: use hub, turn or transfer", args[1])}
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "tryst %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}
