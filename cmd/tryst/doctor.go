package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
)

// doctorConfig holds the flags of `tryst doctor`.
type doctorConfig struct {
	hub          string
	tokenFile    string
	caFile       string
	insecure     bool
	expectPublic bool
	timeout      time.Duration
}

func parseDoctorFlags(args []string, stderr io.Writer) (doctorConfig, error) {
	var c doctorConfig
	fs := flag.NewFlagSet("tryst doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.hub, "hub", "", "hub `URL` to check (http://, https://, ws://, wss:// or HOST:PORT)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding an access token, for hubs with --token-secret-file")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM certificates to trust for the hub and TURNS, besides the system roots")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify TLS certificates (self-signed test deployments only)")
	fs.BoolVar(&c.expectPublic, "expect-public", false, "require a public relay address even when the hub's address is private")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "time allowed for each check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: tryst doctor --hub URL [flags]\n\nChecks a deployment from the outside: WebSocket, /v1/ice, clock, STUN, TURN over UDP/TCP/TLS,\nthe relay address and a relayed round trip. Exit status 1 when a check fails.\n\nFlags:")
			fs.PrintDefaults()
			return c, err
		}
		return c, usageError{fmt.Errorf("doctor: %w", err)}
	}
	switch {
	case fs.NArg() > 0:
		return c, badSetting("doctor: unexpected argument %q", fs.Arg(0))
	case c.hub == "":
		return c, badSetting("doctor: --hub is required")
	case c.timeout <= 0:
		return c, badSetting("doctor: --timeout must be positive")
	}
	return c, nil
}

// The outcome of one check.
type checkStatus int

const (
	statusPass checkStatus = iota
	statusFail
	statusSkip
)

type checkResult struct {
	status checkStatus
	detail string
	hint   string // how to fix a failure
}

func checkPass(format string, a ...any) checkResult {
	return checkResult{status: statusPass, detail: fmt.Sprintf(format, a...)}
}

func checkFail(hint, format string, a ...any) checkResult {
	return checkResult{status: statusFail, detail: fmt.Sprintf(format, a...), hint: hint}
}

func checkSkip(format string, a ...any) checkResult {
	return checkResult{status: statusSkip, detail: fmt.Sprintf(format, a...)}
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

// doctor runs the checks of `tryst doctor` and remembers what earlier
// checks learnt for later ones.
type doctor struct {
	cfg   doctorConfig
	out   io.Writer
	base  *url.URL // the hub as http:// or https://, path stripped
	roots *x509.CertPool
	token string
	tr    *http.Transport
	http  *http.Client
	now   func() time.Time

	counts [3]int

	// Learnt along the way.
	ice       *proto.ICEConfig
	iceDate   time.Time // the HTTP Date of the /v1/ice answer, zero without one
	iceLocal  time.Time // local time midway through the request
	stunURL   string    // host:port
	turnURLs  []iceURL
	relayed   netip.AddrPort // from the first allocation that worked
	udpAlloc  *doctorAlloc   // kept open for the round trip
	relayFrom string         // which allocation gave relayed
}

// iceURL is a parsed stun:, turn: or turns: URL.
type iceURL struct {
	scheme    string // stun, turn, turns
	transport string // udp, tcp
	hostPort  string
}

func (u iceURL) name() string {
	switch {
	case u.scheme == "turns":
		return "tls"
	case u.transport == "tcp":
		return "tcp"
	}
	return "udp"
}

// parseICEURL parses RFC 7064/7065 URLs: stun:host[:port], turn:host[:port][?transport=udp|tcp], turns:...
func parseICEURL(s string) (iceURL, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return iceURL{}, fmt.Errorf("%q is not an ICE server URL", s)
	}
	u := iceURL{scheme: strings.ToLower(scheme), transport: "udp"}
	rest, query, _ := strings.Cut(rest, "?")
	port := "3478"
	switch u.scheme {
	case "stun", "turn":
	case "stuns", "turns":
		port, u.transport = "5349", "tcp"
	default:
		return iceURL{}, fmt.Errorf("%q: unknown scheme %q", s, scheme)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return iceURL{}, fmt.Errorf("%q: %w", s, err)
		}
		if t := q.Get("transport"); t != "" {
			u.transport = strings.ToLower(t)
		}
	}
	if host, p, err := net.SplitHostPort(rest); err == nil {
		u.hostPort = net.JoinHostPort(host, p)
	} else {
		u.hostPort = net.JoinHostPort(strings.Trim(rest, "[]"), port)
	}
	if rest == "" || (u.transport != "udp" && u.transport != "tcp") {
		return iceURL{}, fmt.Errorf("%q is not a usable ICE server URL", s)
	}
	return u, nil
}

// runDoctor implements `tryst doctor`: it checks a deployment from the
// outside and prints each check as PASS, FAIL (with a hint) or SKIP.
func runDoctor(ctx context.Context, args []string, std stdio) error {
	cfg, err := parseDoctorFlags(args, std.err)
	if err != nil {
		return err
	}
	d := &doctor{cfg: cfg, out: std.out, now: time.Now}
	if err := d.setup(); err != nil {
		return err
	}
	defer d.close()
	d.run(ctx)
	fmt.Fprintf(d.out, "\n%d passed, %d failed, %d skipped\n",
		d.counts[statusPass], d.counts[statusFail], d.counts[statusSkip])
	if n := d.counts[statusFail]; n > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", n)
	}
	return ctx.Err()
}

func (d *doctor) setup() error {
	// The same reading of the hub URL as the clients', back to HTTP(S).
	ws, err := proto.WebSocketURL(d.cfg.hub)
	if err != nil {
		return badSetting("doctor: %v", err)
	}
	u, err := url.Parse(ws)
	if err != nil {
		return badSetting("doctor: %v", err)
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	d.base = &url.URL{Scheme: scheme, Host: u.Host}
	if d.cfg.caFile != "" {
		pem, err := os.ReadFile(d.cfg.caFile)
		if err != nil {
			return badSetting("doctor: --ca-file: %v", err)
		}
		if d.roots, err = x509.SystemCertPool(); err != nil || d.roots == nil {
			d.roots = x509.NewCertPool()
		}
		if !d.roots.AppendCertsFromPEM(pem) {
			return badSetting("doctor: --ca-file %s: no PEM certificate in it", d.cfg.caFile)
		}
	}
	if d.cfg.tokenFile != "" {
		data, err := os.ReadFile(d.cfg.tokenFile)
		if err != nil {
			return badSetting("doctor: --token-file: %v", err)
		}
		d.token = strings.TrimSpace(string(data))
		if d.token == "" {
			return badSetting("doctor: --token-file %s is empty", d.cfg.tokenFile)
		}
	}
	// No proxy: the point is to reach the hub the way clients do.
	d.tr = &http.Transport{
		TLSClientConfig:     d.tlsConfig(u.Hostname()),
		TLSHandshakeTimeout: d.cfg.timeout,
		DisableKeepAlives:   true,
	}
	d.http = &http.Client{Transport: d.tr, Timeout: d.cfg.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return nil
}

func (d *doctor) close() {
	if d.udpAlloc != nil {
		d.udpAlloc.close()
		d.udpAlloc = nil
	}
	d.tr.CloseIdleConnections()
}

func (d *doctor) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		RootCAs:            d.roots,
		InsecureSkipVerify: d.cfg.insecure, //nolint:gosec // only with --insecure, for self-signed test setups
	}
}

func (d *doctor) report(name string, r checkResult) {
	d.counts[r.status]++
	switch r.status {
	case statusPass:
		fmt.Fprintf(d.out, "PASS %s: %s\n", name, r.detail)
	case statusFail:
		fmt.Fprintf(d.out, "FAIL %s: %s\n", name, r.detail)
		if r.hint != "" {
			fmt.Fprintf(d.out, "  hint: %s\n", r.hint)
		}
	case statusSkip:
		fmt.Fprintf(d.out, "SKIP %s: %s\n", name, r.detail)
	}
}

// check runs one check with its own timeout, or skips it once ctx is done.
func (d *doctor) check(ctx context.Context, name string, f func(context.Context) checkResult) checkResult {
	var r checkResult
	if ctx.Err() != nil {
		r = checkSkip("interrupted")
	} else {
		cctx, cancel := context.WithTimeout(ctx, d.cfg.timeout)
		r = f(cctx)
		cancel()
	}
	d.report(name, r)
	return r
}

func (d *doctor) run(ctx context.Context) {
	fmt.Fprintf(d.out, "checking %s\n", d.base)
	d.check(ctx, "websocket", d.checkWebSocket)
	if d.check(ctx, "ice", d.checkICE).status != statusPass {
		for _, name := range []string{"clock", "stun", "turn-udp", "turn-tcp", "turn-tls", "relay-address", "round-trip"} {
			d.report(name, checkSkip("needs the ICE servers from /v1/ice"))
		}
		return
	}
	d.check(ctx, "clock", d.checkClock)
	stunOK := d.check(ctx, "stun", d.checkSTUN).status == statusPass
	for _, kind := range []string{"udp", "tcp", "tls"} {
		d.check(ctx, "turn-"+kind, func(ctx context.Context) checkResult { return d.checkTURN(ctx, kind) })
	}
	relayOK := d.check(ctx, "relay-address", d.checkRelayAddress).status != statusFail
	d.check(ctx, "round-trip", func(ctx context.Context) checkResult {
		switch {
		case d.udpAlloc == nil:
			return checkSkip("needs the TURN allocation over UDP")
		case !stunOK:
			return checkSkip("needs a working STUN server to learn this machine's address")
		}
		return d.checkRoundTrip(ctx, relayOK)
	})
}

// ---- WebSocket ----

func (d *doctor) checkWebSocket(ctx context.Context) checkResult {
	wsu := *d.base
	wsu.Scheme = map[string]string{"http": "ws", "https": "wss"}[d.base.Scheme]
	wsu.Path = "/v1/ws"
	// The origin a browser sends for the page the hub itself serves.
	origin := d.base.String()
	hc, resp, err := hubconn.Dial(ctx, wsu.String(), &hubconn.Options{Dial: &websocket.DialOptions{
		HTTPClient:      d.http,
		HTTPHeader:      http.Header{"Origin": {origin}},
		CompressionMode: websocket.CompressionDisabled,
	}})
	if err != nil {
		if resp != nil {
			return wsStatusFailure(resp.StatusCode, origin)
		}
		return d.dialFailure(ctx, "connect to "+wsu.String(), err)
	}
	defer hc.Close()

	create := proto.Frame{Type: proto.TypeCreate, Auth: d.token}
	f, err := wsRoundTrip(ctx, hc, create)
	if err != nil {
		return checkFail("the hub accepted the WebSocket but did not answer: check proxy timeouts and the hub's log",
			"origin %s accepted, but create got no answer: %v", origin, err)
	}
	switch {
	case f.Type == proto.TypeError && f.Code == proto.CodeUnauthorized && d.token == "":
		return checkFail("access control is on (--token-secret-file): give tryst doctor --token-file with a valid access token",
			"origin %s accepted, but create refused: %s", origin, f.Message)
	case f.Type == proto.TypeError && f.Code == proto.CodeUnauthorized:
		return checkFail("the access token in --token-file is expired or signed with a secret the hub does not hold",
			"origin %s accepted, but the access token was refused: %s", origin, f.Message)
	case f.Type == proto.TypeError:
		return checkFail("see the hub's log", "origin %s accepted, but create failed: %s: %s", origin, f.Code, f.Message)
	case f.Type != proto.TypeCreated || f.Room == "":
		return checkFail("is this a Tryst hub, and of a compatible version?", "create answered with %q", f.Type)
	}
	if err := hc.Send(ctx, proto.Frame{Type: proto.TypeLeave}); err != nil {
		return checkFail("see the hub's log", "room created, but leave failed: %v", err)
	}
	// The hub closes the connection with 1000 once the room is gone.
	_, err = hc.Next(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		return checkFail("see the hub's log", "room created, but leave was not acknowledged: %v", err)
	}
	return checkPass("%s accepts origin %s; room created and left", wsu.String(), origin)
}

// wsRoundTrip sends f and returns the hub's next frame, whatever its type.
func wsRoundTrip(ctx context.Context, hc *hubconn.Conn, f proto.Frame) (proto.Frame, error) {
	if err := hc.Send(ctx, f); err != nil {
		return proto.Frame{}, err
	}
	return hc.Next(ctx)
}

func wsStatusFailure(code int, origin string) checkResult {
	switch code {
	case http.StatusForbidden:
		return checkFail("allow the origin with --origin, or, behind a reverse proxy, keep the Host header "+
			"(nginx: proxy_set_header Host $host) so the same-origin check sees the public name",
			"the hub refused origin %s (403)", origin)
	case http.StatusTooManyRequests:
		return checkFail("too many connections from this address: raise --max-conns-per-ip (behind a proxy every "+
			"client shares the proxy's address) or retry later", "the hub refused the connection (429)")
	case http.StatusServiceUnavailable:
		return checkFail("the hub is draining (shutting down or restarting); retry in a moment",
			"the hub refused the connection (503)")
	case http.StatusUnauthorized:
		return checkFail("something in front of the hub asks for authentication: let /v1/ws through",
			"the WebSocket upgrade got 401")
	}
	if code >= 300 && code < 400 {
		return checkFail("the hub redirects (typically http:// to https://): give --hub the URL it redirects to",
			"the WebSocket upgrade got HTTP %d", code)
	}
	return checkFail("is the URL a Tryst hub? A reverse proxy must forward /v1/ws as a WebSocket "+
		"(proxy_http_version 1.1; Upgrade and Connection headers)",
		"the WebSocket upgrade got HTTP %d", code)
}

// dialFailure explains a failed TCP/TLS/HTTP connection.
func (d *doctor) dialFailure(ctx context.Context, what string, err error) checkResult {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		dnsErr     *net.DNSError
		verifyErr  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA):
		return checkFail("the certificate is not signed by a CA this machine trusts: use a public CA (e.g. Let's Encrypt) "+
			"with the full chain in --tls-cert, or pass --ca-file (or --insecure for a test setup)", "%s: %v", what, err)
	case errors.As(err, &hostErr):
		return checkFail("the certificate does not cover this host name: reissue it for the name clients use", "%s: %v", what, err)
	case errors.As(err, &invalidErr):
		return checkFail("the certificate is expired or not valid yet: renew it (and check the clock)", "%s: %v", what, err)
	case errors.As(err, &verifyErr):
		return checkFail("the TLS certificate was not accepted: use a certificate from a public CA, or pass --ca-file "+
			"(or --insecure for a test setup)", "%s: %v", what, err)
	case errors.As(err, &recordErr):
		return checkFail("the server does not speak TLS there: use http:// (or give tryst serve --tls-cert/--tls-key)",
			"%s: %v", what, err)
	case errors.As(err, &dnsErr):
		return checkFail("the host name does not resolve: check the DNS record", "%s: %v", what, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return checkFail("nothing listens there: is tryst serve running, is --listen right, is the port open in the firewall?",
			"%s: connection refused", what)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return checkFail("no answer: a firewall may drop the traffic, or the host is down", "%s: no answer in %v", what, d.cfg.timeout)
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return checkFail("the TLS handshake failed: check the certificate and key given to --tls-cert/--tls-key", "%s: %v", what, err)
	}
	return checkFail("check the hub URL and that the hub is reachable from here", "%s: %v", what, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---- /v1/ice ----

func (d *doctor) checkICE(ctx context.Context) checkResult {
	u := d.base.JoinPath("/v1/ice").String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return checkFail("", "GET %s: %v", u, err)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	start := d.now()
	resp, err := d.http.Do(req)
	if err != nil {
		return d.dialFailure(ctx, "GET "+u, err)
	}
	defer resp.Body.Close()
	d.iceLocal = start.Add(d.now().Sub(start) / 2)
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		d.iceDate = t
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return d.dialFailure(ctx, "GET "+u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		if d.token == "" {
			return checkFail("access control is on (--token-secret-file): give --token-file with an access token "+
				"(see docs/PROTOCOL.md, Access tokens)", "GET %s: 401 unauthorized", u)
		}
		return checkFail("the access token in --token-file is expired or signed with a secret the hub does not hold",
			"GET %s: 401, the access token was refused: %s", u, strings.TrimSpace(string(body)))
	case http.StatusTooManyRequests:
		return checkFail("this address asked for ICE servers too often (1/s, burst 20): retry in a minute",
			"GET %s: 429 rate limited", u)
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return checkFail("give --hub the URL it redirects to (clients do not follow redirects for the WebSocket)",
			"GET %s: HTTP %d to %s", u, resp.StatusCode, resp.Header.Get("Location"))
	default:
		return checkFail("is this a Tryst hub? A reverse proxy must forward /v1/ice", "GET %s: HTTP %d", u, resp.StatusCode)
	}
	var ice proto.ICEConfig
	if err := json.Unmarshal(body, &ice); err != nil {
		return checkFail("is this a Tryst hub? /v1/ice must answer JSON", "GET %s: %v", u, err)
	}
	var kinds []string
	for _, s := range ice.Servers {
		for _, raw := range s.URLs {
			iu, err := parseICEURL(raw)
			if err != nil {
				return checkFail("check --turn-host", "%v", err)
			}
			switch iu.scheme {
			case "stun":
				if d.stunURL == "" {
					d.stunURL = iu.hostPort
				}
			case "turn", "turns":
				if s.Username == "" || s.Credential == "" {
					return checkFail("the hub must hand out TURN credentials with every TURN URL", "%s has no username/credential", raw)
				}
				if d.ice == nil {
					d.ice = &proto.ICEConfig{TTL: ice.TTL, Servers: []proto.ICEServer{s}}
				}
				if s.Username == d.ice.Servers[0].Username {
					d.turnURLs = append(d.turnURLs, iu)
					kinds = append(kinds, iu.name())
				}
			}
		}
	}
	switch {
	case d.stunURL == "" && d.ice == nil:
		return checkFail("the hub has no ICE servers configured (is it tryst serve?)", "no STUN or TURN URL in %s", u)
	case d.stunURL == "":
		return checkFail("the hub must list a stun: URL", "no STUN URL in %s", u)
	case d.ice == nil:
		return checkFail("the hub must list turn: URLs with credentials", "no TURN URL in %s", u)
	}
	return checkPass("stun %s; turn over %s as %s; ttl %ds", d.stunURL, strings.Join(kinds, ", "),
		d.ice.Servers[0].Username, d.ice.TTL)
}

func (d *doctor) credential() (user, pass string) {
	return d.ice.Servers[0].Username, d.ice.Servers[0].Credential
}

// ---- clock ----

const maxSkew = 30 * time.Second

func (d *doctor) checkClock(context.Context) checkResult {
	user, _ := d.credential()
	return clockCheck(user, d.ice.TTL, d.iceLocal, d.iceDate)
}

// clockCheck compares the issue time of a TURN REST credential (its expiry
// minus the advertised ttl, both on the hub's clock) with the local clock
// and with the HTTP Date header of the same answer.
func clockCheck(username string, ttl int, local, date time.Time) checkResult {
	ts, _, _ := strings.Cut(username, ":")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts == "" {
		return checkFail("TURN REST usernames are \"<expiry-unix>:<id>\": check the relay's credential scheme",
			"username %q does not start with an expiry", username)
	}
	expiry := time.Unix(sec, 0)
	const ntp = "run NTP (chrony or systemd-timesyncd) on the hub, the relay and this machine: with skewed " +
		"clocks TURN credentials may look expired before they reach the relay"
	if !expiry.After(local) {
		return checkFail(ntp, "the credential expired %v ago by this machine's clock", local.Sub(expiry).Round(time.Second))
	}
	if ttl <= 0 {
		return checkPass("credential valid for %v by this machine's clock (no ttl to compare)", expiry.Sub(local).Round(time.Second))
	}
	issued := expiry.Add(-time.Duration(ttl) * time.Second)
	skew := issued.Sub(local) // positive: the hub is ahead
	if skew.Abs() > maxSkew {
		return checkFail(ntp, "the hub's clock is %s this machine's (credential issued at %s, local time %s)",
			aheadBehind(skew), issued.UTC().Format(time.RFC3339), local.UTC().Format(time.RFC3339))
	}
	detail := fmt.Sprintf("hub and local clocks agree within %v", skew.Abs().Round(time.Second)+time.Second)
	if !date.IsZero() {
		if ds := issued.Sub(date); ds.Abs() > maxSkew {
			return checkFail("the credential's expiry does not match ttl on the HTTP Date's clock: the credential "+
				"lifetime differs from the advertised ttl (check --turn-ttl), or a proxy with another clock "+
				"sets Date; "+ntp, "credential issued %s the HTTP Date (ttl %ds)", aheadBehind(ds), ttl)
		}
		detail += "; credential consistent with the HTTP Date"
	}
	return checkPass("%s; credential expires in %v", detail, expiry.Sub(local).Round(time.Second))
}

func aheadBehind(d time.Duration) string {
	if d >= 0 {
		return d.Round(time.Second).String() + " ahead of"
	}
	return (-d).Round(time.Second).String() + " behind"
}
