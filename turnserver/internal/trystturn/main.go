// Command trystturn runs the turnserver package on its own, without the hub,
// as the server under test of `tryst bench turn` (docs/BENCHMARKS.md, "TURN
// relay: Tryst vs coturn") and for profiling it (-pprof). Deployments run the
// same relay inside `tryst serve`; this command is not installed. The user,
// per-IP and global allocation quotas and the per-source rate limit are off:
// every benchmark client comes from one loopback address.
//
//	go run ./turnserver/internal/trystturn -listen 127.0.0.1:3478 -secret-file secrets -allow-loopback
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // opt-in, loopback only, for profiling benchmarks
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tryst-chat/tryst/turnserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trystturn:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:3478", "UDP+TCP listen address")
	secretFile := flag.String("secret-file", "", "secrets file (one per line)")
	allowLoopback := flag.Bool("allow-loopback", false, "allow loopback peers")
	ports := flag.String("ports", "49152-65535", "relay port range")
	sockets := flag.Int("sockets", 0, "UDP sockets (0 = NumCPU)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	data, err := os.ReadFile(*secretFile)
	if err != nil {
		return err
	}
	secrets, err := turnserver.ParseSecrets(data)
	if err != nil {
		return err
	}
	lo, hi, err := turnserver.ParsePortRange(*ports)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	srv, err := turnserver.New(turnserver.Config{
		ListenAddr:         *listen,
		Secrets:            secrets,
		AllowLoopbackPeers: *allowLoopback,
		RelayPortMin:       lo,
		RelayPortMax:       hi,
		Sockets:            *sockets,
		UserQuota:          -1,
		MaxAllocations:     -1,
		AllocationsPerIP:   -1, // every benchmark client is on one loopback address
		SourceRate:         -1,
		Logger:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		hs := &http.Server{Addr: *pprofAddr, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.ListenAndServe() }()
		defer hs.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("pid %d udp %v tcp %v\n", os.Getpid(), srv.UDPAddr(), srv.TCPAddr())
	<-ctx.Done()
	return srv.Close()
}
