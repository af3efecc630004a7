package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tryst-chat/tryst/internal/doctor"
)

// runDoctor implements `tryst doctor`: flags, internal/doctor's checks, and
// each result printed as PASS, FAIL (with a hint) or SKIP as it comes.
// Exit status 1 when a check fails, 2 for a bad setting.
func runDoctor(ctx context.Context, args []string, std stdio) error {
	cfg, err := parseDoctorFlags(args, std.err)
	if err != nil {
		return err
	}
	cfg.OnStart = func(hub string) { fmt.Fprintf(std.out, "checking %s\n", hub) }
	cfg.OnResult = func(r doctor.Result) { printDoctorResult(std.out, r) }
	rep, err := doctor.Run(ctx, cfg)
	var ce *doctor.ConfigError
	if errors.As(err, &ce) {
		return badSetting("doctor: %v", err)
	}
	fmt.Fprintf(std.out, "\n%d passed, %d failed, %d skipped\n",
		rep.Count(doctor.Pass), rep.Count(doctor.Fail), rep.Count(doctor.Skip))
	if n := rep.Count(doctor.Fail); n > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", n)
	}
	// Interrupted: the checks left were skipped, and the exit status says
	// the run did not finish.
	return err
}

func parseDoctorFlags(args []string, stderr io.Writer) (doctor.Config, error) {
	var c doctor.Config
	fs := flag.NewFlagSet("tryst doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Hub, "hub", "", "hub `URL` to check (http://, https://, ws://, wss:// or HOST:PORT)")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding an access token, for hubs with --token-secret-file")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM certificates to trust for the hub and TURNS, besides the system roots")
	fs.BoolVar(&c.Insecure, "insecure", false, "do not verify TLS certificates (self-signed test deployments only)")
	fs.BoolVar(&c.ExpectPublic, "expect-public", false, "require a public relay address even when the hub's address is private")
	fs.DurationVar(&c.Timeout, "timeout", doctor.DefaultTimeout, "time allowed for each check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: tryst doctor --hub URL [flags]\n\nChecks a deployment from the outside: WebSocket, /v1/ice, clock, STUN, TURN over UDP/TCP/TLS,\nthe relay address and a relayed round trip. Exit status 1 when a check fails.\n\nFlags:")
			fs.PrintDefaults()
			return c, err
		}
		return c, usageError{fmt.Errorf("doctor: %w", err)}
	}
	// The library would refuse these too; here they come first, and a zero
	// --timeout is refused rather than taken as the default.
	switch {
	case fs.NArg() > 0:
		return c, badSetting("doctor: unexpected argument %q", fs.Arg(0))
	case c.Hub == "":
		return c, badSetting("doctor: --hub is required")
	case c.Timeout <= 0:
		return c, badSetting("doctor: --timeout must be positive")
	}
	return c, nil
}

// printDoctorResult prints one check: its status, name and detail, and for
// a failure the hint on a line of its own.
func printDoctorResult(w io.Writer, r doctor.Result) {
	fmt.Fprintf(w, "%s %s: %s\n", r.Status, r.Name, r.Detail)
	if r.Status == doctor.Fail && r.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", r.Hint)
	}
}
