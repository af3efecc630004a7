package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/hub"
	"github.com/tryst-chat/tryst/proto"
)

// stack is what the scenarios connect through: `tryst serve` as a
// child process (hub and TURN relay on loopback, see relayProcess), plus an
// in-process hub that hands out no ICE servers for the peers on the emulated
// network (they could not reach the loopback relay).
type stack struct {
	relay     *relayProcess
	cpus      cpuLayout
	hubs      []*hub.Hub
	servers   []*http.Server
	serveDone sync.WaitGroup
	hubURL    string // the relay's hub: hands out STUN and TURN
	bareURL   string // hands out nothing
}

func startStack(ctx context.Context, cfg Config, cpus cpuLayout) (env *stack, err error) {
	env = &stack{cpus: cpus}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	if env.relay, err = startRelayProcess(ctx, cfg, cpus.relay); err != nil {
		return env, err
	}
	env.hubURL = env.relay.addrs.Hub
	if env.bareURL, err = env.startBareHub(); err != nil {
		return env, err
	}
	return env, nil
}

// iceConfig is what the relay's hub hands a Client, for the raw pairs.
func (env *stack) iceConfig() proto.ICEConfig {
	user, pass := env.relay.credential("bench")
	addr := env.relay.addrs.TURNUDP
	return proto.ICEConfig{TTL: 600, Servers: []proto.ICEServer{
		{URLs: []string{"stun:" + addr}},
		{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: user, Credential: pass},
	}}
}

// startBareHub starts an in-process hub that hands out no ICE servers.
func (env *stack) startBareHub() (string, error) {
	// Every pairing of every repeat comes from 127.0.0.1: the per-address
	// room limits, meant for abuse, would refuse a long run.
	h, err := hub.New(hub.Config{RoomBurst: -1, MaxIdleRoomsPerIP: -1})
	if err != nil {
		return "", fmt.Errorf("start hub: %w", err)
	}
	env.hubs = append(env.hubs, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("start hub: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	env.servers = append(env.servers, srv)
	env.serveDone.Add(1)
	go func() {
		defer env.serveDone.Done()
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

func (env *stack) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range env.servers {
		_ = s.Shutdown(ctx)
	}
	for _, h := range env.hubs {
		_ = h.Shutdown(ctx)
	}
	env.serveDone.Wait()
	if env.relay != nil {
		if err := env.relay.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := env.cpus.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
