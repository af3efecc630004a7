// Package doctor checks a Tryst deployment from the outside, the way a
// client on another network meets it: the hub's WebSocket and /v1/ice, the
// clocks behind its TURN credentials, STUN, TURN over UDP, TCP and TLS, the
// relayed address the relay advertises, and a round trip through the relay.
//
// It is the engine of `tryst doctor`, apart from the command so that it
// returns what it found instead of printing it: Run gives back one Result
// per check, in a fixed order (PASS; FAIL with a hint on how to fix it; or
// SKIP with the reason), and cmd/tryst decides how to show them and which
// exit status they make. It never prints, exits or panics: the only errors
// Run returns are a Config it refuses and a context that ended; a
// deployment's problems are failed checks.
//
// It speaks to the hub with proto and proto/hubconn, as the clients do, and
// to the relay with pion's STUN and TURN clients.
package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tryst-chat/tryst/internal/settings"
	"github.com/tryst-chat/tryst/proto"
)

// DefaultTimeout is the time allowed for each check when Config.Timeout is
// zero.
const DefaultTimeout = 5 * time.Second

// Config says what to check and how. Each field is the setting of the
// `tryst doctor` flag named in its comment.
type Config struct {
	// Hub (--hub) is the hub to check, written as for a client: http://,
	// https://, ws://, wss:// or HOST:PORT (see proto.WebSocketURL).
	Hub string
	// TokenFile (--token-file) holds an access token, for hubs with access
	// control (tryst serve --token-secret-file).
	TokenFile string
	// CAFile (--ca-file) holds PEM certificates to trust for the hub and
	// TURNS, besides the system roots.
	CAFile string
	// Insecure (--insecure) skips TLS certificate verification: for
	// self-signed test deployments only.
	Insecure bool
	// ExpectPublic (--expect-public) requires a public relay address even
	// when the hub's own address is private, as for a hub reached over a
	// VPN whose clients are elsewhere.
	ExpectPublic bool
	// Timeout (--timeout) is the time allowed for each check; zero means
	// DefaultTimeout.
	Timeout time.Duration

	// OnStart and OnResult, when set, are told what Run does as it does
	// it, on Run's goroutine and in order: OnStart once, before the first
	// check, with the hub's address as Report.Hub will have it; OnResult
	// with each result as its check ends. They let a command print as the
	// checks go rather than after them all, since a deployment that drops
	// packets costs a timeout per check.
	OnStart  func(hub string)
	OnResult func(Result)
}

// validate refuses what no run could use and fills in the defaults. It
// reads no file: newChecker does, right after.
func (c *Config) validate() error {
	switch {
	case c.Hub == "":
		return &ConfigError{errors.New("--hub is required")}
	case c.Timeout < 0:
		return &ConfigError{errors.New("--timeout must be positive")}
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	return nil
}

// Status is the outcome of one check.
type Status int

const (
	Pass Status = iota // the check passed
	Fail               // the deployment has a problem; Result.Hint says what to do
	Skip               // the check did not run, and Result.Detail says why
)

// String returns the word `tryst doctor` prints: PASS, FAIL or SKIP.
func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Skip:
		return "SKIP"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Result is what one check found.
type Result struct {
	Name     string // the check: one of websocket, ice, clock, stun, turn-udp, turn-tcp, turn-tls, relay-address, round-trip
	Status   Status
	Detail   string        // what the check saw, or why it was skipped
	Hint     string        // for a failure, how to fix it; may be empty
	Duration time.Duration // how long the check ran; zero for one that never started
}

// Report is what Run found.
type Report struct {
	Hub     string   // the hub as checked: http:// or https:// with its host, no path
	Results []Result // one per check, in the order they ran
}

// Count returns how many checks ended with status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// checkNames are the checks in the order Run runs them; every run reports
// each of them once.
var checkNames = []string{"websocket", "ice", "clock", "stun", "turn-udp", "turn-tcp", "turn-tls", "relay-address", "round-trip"}

// Run checks the deployment cfg names, one check after another, each within
// cfg.Timeout, and returns what it found. A check that needs what an
// earlier one failed to learn is skipped, saying so; once ctx ends, the
// checks left are skipped as interrupted.
//
// The error is a *ConfigError when cfg is refused, before anything is
// checked, or ctx's own error when ctx ended before Run did; the report
// then holds every check, the interrupted ones skipped.
func Run(ctx context.Context, cfg Config) (Report, error) {
	c, err := newChecker(cfg)
	if err != nil {
		return Report{}, err
	}
	defer c.close()
	c.run(ctx)
	return c.report, ctx.Err()
}

func pass(format string, a ...any) Result {
	return Result{Status: Pass, Detail: fmt.Sprintf(format, a...)}
}

func fail(hint, format string, a ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, a...), Hint: hint}
}

func skip(format string, a ...any) Result {
	return Result{Status: Skip, Detail: fmt.Sprintf(format, a...)}
}

// Hints shared by several checks.
const (
	hintSecret = "the hub and the relay use different secrets: check --turn-secret-file (or TRYST_TURN_SECRET) " +
		"or coturn's static-auth-secret and realm; an expired credential is refused too (see the clock check)"
	hintUDPBlocked = "nothing answered over UDP: is the relay running (--turn-listen)? Open 3478/udp in every " +
		"firewall and security group on the way (and 49152-65535/udp for relayed traffic)"
	hintTCPBlocked = "open 3478/tcp (TURN over TCP) and 5349/tcp (TURNS) in the firewall, and check " +
		"--turn-listen / --turn-tls-listen"
	hintPublicIP = "clients elsewhere cannot reach a private relay address: set --public-ip to the server's " +
		"public IPv4 address (coturn: external-ip)"
)

// checker is one run of the checks. Later checks build on what earlier
// ones learnt (the ICE servers, an allocation), so it keeps that too.
type checker struct {
	cfg   Config
	base  *url.URL // the hub as http:// or https://, path stripped
	roots *x509.CertPool
	token string
	tr    *http.Transport
	httpc *http.Client
	now   func() time.Time

	report Report

	// Learnt along the way.
	ice       *proto.ICEConfig
	iceDate   time.Time // the HTTP Date of the /v1/ice answer, zero without one
	iceLocal  time.Time // local time midway through the request
	stunURL   string    // host:port
	turnURLs  []iceURL
	relayed   netip.AddrPort // from the first allocation that worked
	udpAlloc  *allocation    // kept open for the round trip
	relayFrom string         // which allocation gave relayed
}

// newChecker validates cfg and reads its files; it opens no connection.
func newChecker(cfg Config) (*checker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &checker{cfg: cfg, now: time.Now}
	// The same reading of the hub URL as the clients', back to HTTP(S).
	ws, err := proto.WebSocketURL(cfg.Hub)
	if err != nil {
		return nil, &ConfigError{err}
	}
	u, err := url.Parse(ws)
	if err != nil {
		return nil, &ConfigError{err}
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	c.base = &url.URL{Scheme: scheme, Host: u.Host}
	if cfg.CAFile != "" {
		// Added to the system roots, as the flag says, not in their place.
		var err error
		if c.roots, err = settings.RootsWith(cfg.CAFile); err != nil {
			return nil, &ConfigError{fmt.Errorf("--ca-file: %w", err)}
		}
	}
	if cfg.TokenFile != "" {
		data, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, &ConfigError{fmt.Errorf("--token-file: %w", err)}
		}
		c.token = strings.TrimSpace(string(data))
		if c.token == "" {
			return nil, &ConfigError{fmt.Errorf("--token-file %s is empty", cfg.TokenFile)}
		}
	}
	// No proxy: the point is to reach the hub the way clients do. Without
	// keep-alives no connection outlives its request.
	c.tr = &http.Transport{
		TLSClientConfig:     c.tlsConfig(u.Hostname()),
		TLSHandshakeTimeout: cfg.Timeout,
		DisableKeepAlives:   true,
	}
	// Redirects are reported, not followed: clients do not follow them for
	// the WebSocket either.
	c.httpc = &http.Client{Transport: c.tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.report.Hub = c.base.String()
	return c, nil
}

func (c *checker) close() {
	if c.udpAlloc != nil {
		c.udpAlloc.close()
		c.udpAlloc = nil
	}
	c.tr.CloseIdleConnections()
}

func (c *checker) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		RootCAs:            c.roots,
		InsecureSkipVerify: c.cfg.Insecure, //nolint:gosec // only with --insecure, for self-signed test setups
	}
}

// record adds r to the report and tells OnResult.
func (c *checker) record(r Result) {
	c.report.Results = append(c.report.Results, r)
	if c.cfg.OnResult != nil {
		c.cfg.OnResult(r)
	}
}

// check runs one check with its own timeout, or skips it once ctx is done,
// and records the result.
func (c *checker) check(ctx context.Context, name string, f func(context.Context) Result) Result {
	var r Result
	if ctx.Err() != nil {
		r = skip("interrupted")
	} else {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		start := time.Now()
		r = f(cctx)
		r.Duration = time.Since(start)
		cancel()
	}
	r.Name = name
	c.record(r)
	return r
}

func (c *checker) run(ctx context.Context) {
	if c.cfg.OnStart != nil {
		c.cfg.OnStart(c.report.Hub)
	}
	c.check(ctx, "websocket", c.checkWebSocket)
	if c.check(ctx, "ice", c.checkICE).Status != Pass {
		// Everything after this needs the ICE servers.
		for _, name := range checkNames[2:] {
			r := skip("needs the ICE servers from /v1/ice")
			r.Name = name
			c.record(r)
		}
		return
	}
	c.check(ctx, "clock", c.checkClock)
	stunOK := c.check(ctx, "stun", c.checkSTUN).Status == Pass
	for _, kind := range []string{"udp", "tcp", "tls"} {
		c.check(ctx, "turn-"+kind, func(ctx context.Context) Result { return c.checkTURN(ctx, kind) })
	}
	relayOK := c.check(ctx, "relay-address", c.checkRelayAddress).Status != Fail
	c.check(ctx, "round-trip", func(ctx context.Context) Result {
		switch {
		case c.udpAlloc == nil:
			return skip("needs the TURN allocation over UDP")
		case !stunOK:
			return skip("needs a working STUN server to learn this machine's address")
		}
		return c.checkRoundTrip(ctx, relayOK)
	})
}
