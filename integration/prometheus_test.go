package integration

// The deployment artefacts in deploy/, checked against a real `tryst serve`:
// the live /metrics output passes `promtool check metrics`, and every query
// of the Grafana dashboard and every alert runs on a real Prometheus that
// scrapes the server while it carries hub and TURN traffic. The static
// checks of the artefacts live in deploy/deploy_test.go; the example and
// Kubernetes configs go through the settings loader in cmd/tryst.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"
	"github.com/pion/turn/v4"
	"go.yaml.in/yaml/v3"

	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/proto"
	"github.com/tryst-chat/tryst/proto/hubconn"
	"github.com/tryst-chat/tryst/turnserver"
)

const deployDir = "../deploy"

// deployServer starts `tryst serve` on loopback with a known TURN secret.
func deployServer(t *testing.T, secret string) *serveProcess {
	t.Helper()
	return startServe(t, []string{"TRYST_TURN_SECRET=" + secret},
		"--allow-loopback-peers", "--turn-sockets", "1", "--turn-max-allocations", "100")
}

func TestLiveMetricsPassPromtool(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "prometheus")
	s := deployServer(t, "promtool-test-secret")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(s.Addrs.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, series := range []string{"tryst_hub_connections ", "tryst_turn_allocations ", "tryst_turn_allocations_limit 100", "process_open_fds "} {
		if !bytes.Contains(body, []byte("\n"+series)) {
			t.Errorf("/metrics has no %q", series)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// promAPI talks to a Prometheus server's HTTP API.
type promAPI struct {
	base   string
	client *http.Client
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	v, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// query runs an instant query; a scalar or string result is returned as one
// sample without labels.
func (p promAPI) query(ctx context.Context, expr string) ([]promSample, error) {
	u := p.base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, u, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var v []promSample
		err := json.Unmarshal(r.Data.Result, &v)
		return v, err
	case "scalar", "string":
		var v [2]any
		err := json.Unmarshal(r.Data.Result, &v)
		return []promSample{{Value: v}}, err
	}
	return nil, fmt.Errorf("query %q: result type %s", expr, r.Data.ResultType)
}

func (p promAPI) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Bad queries answer 400 with a JSON error body: decode it either way.
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %d: %w", u, resp.StatusCode, err)
	}
	return nil
}

// waitFor polls expr until it returns a sample, or ctx ends. Prometheus is
// an external process: there is no event to wait on but its API.
func (p promAPI) waitFor(ctx context.Context, t *testing.T, expr string) []promSample {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		res, err := p.query(ctx, expr)
		if err == nil && len(res) > 0 {
			return res
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never returned data for %s (last error: %v)", expr, lastErr)
		case <-tick.C:
		}
	}
}

// startPrometheus runs the Debian prometheus binary scraping target every
// second, with the shipped alerting rules loaded.
func startPrometheus(ctx context.Context, t *testing.T, bin, target string) promAPI {
	t.Helper()
	alerts, err := filepath.Abs(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: tryst
    static_configs: [{targets: [%q]}]
`, alerts, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p := promAPI{base: "http://" + addr, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/-/ready", nil)
		if resp, err := p.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus not ready on %s", addr)
		case <-tick.C:
		}
	}
}

// deployPair runs one rendezvous: create, offer, join, answer. With keep,
// the room stays open (both connections returned); otherwise the host leaves.
func deployPair(ctx context.Context, opts *websocket.DialOptions, wsURL string, keep bool) ([]*hubconn.Conn, error) {
	var conns []*hubconn.Conn
	fail := func(err error) ([]*hubconn.Conn, error) {
		for _, c := range conns {
			_ = c.Close()
		}
		return nil, err
	}
	dial := func() (*hubconn.Conn, error) {
		c, _, err := hubconn.Dial(ctx, wsURL, &hubconn.Options{Dial: opts})
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	host, err := dial()
	if err != nil {
		return fail(err)
	}
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeCreate, Version: proto.ProtocolVersion}); err != nil {
		return fail(err)
	}
	created, err := host.Await(ctx, proto.TypeCreated)
	if err != nil {
		return fail(err)
	}
	if err := host.Send(ctx, proto.Frame{Type: proto.TypeOffer, Data: "sealed-offer"}); err != nil {
		return fail(err)
	}
	guest, err := dial()
	if err != nil {
		return fail(err)
	}
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: created.Room}); err != nil {
		return fail(err)
	}
	if _, err := guest.Await(ctx, proto.TypeOffer); err != nil {
		return fail(err)
	}
	if err := guest.Send(ctx, proto.Frame{Type: proto.TypeAnswer, Data: "sealed-answer"}); err != nil {
		return fail(err)
	}
	if _, err := host.Await(ctx, proto.TypeAnswer); err != nil {
		return fail(err)
	}
	if keep {
		return conns, nil
	}
	_ = host.Send(ctx, proto.Frame{Type: proto.TypeLeave})
	return fail(nil)
}

// deployRelay allocates on the TURN server and relays packets to a UDP echo
// peer and back. The allocation stays open until the returned func is called.
func deployRelay(t *testing.T, turnAddr string, secret []byte) (closeAll func()) {
	t.Helper()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 2048)
		for {
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = peer.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	user, pass := turnserver.MintCredential(secret, "deploy-test", time.Hour, time.Now())
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: turnAddr,
		TURNServerAddr: turnAddr,
		Conn:           conn,
		Username:       user,
		Password:       pass,
		LoggerFactory:  lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	closeAll = func() {
		client.Close()
		conn.Close()
		peer.Close()
		<-echoed
	}
	fail := func(format string, a ...any) {
		t.Helper()
		closeAll()
		t.Fatalf(format, a...)
	}
	if err := client.Listen(); err != nil {
		fail("turn listen: %v", err)
	}
	if _, err := client.SendBindingRequest(); err != nil {
		fail("STUN binding: %v", err)
	}
	relay, err := client.Allocate()
	if err != nil {
		fail("allocate: %v", err)
	}
	inner := closeAll
	closeAll = func() { relay.Close(); inner() }
	msg := bytes.Repeat([]byte("x"), 500)
	buf := make([]byte, 2048)
	got := 0
	for i := 0; i < 20 && got < 10; i++ {
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			fail("relay write: %v", err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(time.Second))
		if n, _, err := relay.ReadFrom(buf); err == nil && n == len(msg) {
			got++
		}
	}
	if got < 10 {
		fail("only %d of 10 echoes came back through the relay", got)
	}
	return closeAll
}

// grafanaTargets returns every PromQL expression of a dashboard, keyed by
// "panel title/refId", and the row each panel is in.
type grafanaTarget struct {
	panel, row, ref, expr string
}

func grafanaTargets(t *testing.T, path string) (targets []grafanaTarget, varQueries []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	row := ""
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type == "row" {
				row = p.Title
				walk(p.Panels) // collapsed rows hold their panels
				continue
			}
			for _, tg := range p.Targets {
				targets = append(targets, grafanaTarget{panel: p.Title, row: row, ref: tg.RefID, expr: tg.Expr})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			varQueries = append(varQueries, q)
		case map[string]any:
			s, _ := q["query"].(string)
			varQueries = append(varQueries, s)
		}
	}
	return targets, varQueries
}

// grafanaExpand replaces the dashboard variables as Grafana would for one
// selected instance.
func grafanaExpand(expr, instance string) string {
	return strings.NewReplacer(
		"${instance}", instance, "$instance", instance,
		"$__rate_interval", "30s", "${__rate_interval}", "30s",
		"$__interval", "5s", "${__interval}", "5s",
		"$__range", "5m", "${__range}", "5m",
	).Replace(expr)
}

// TestDashboardAndAlertsOnLivePrometheus runs a real server with hub and
// TURN traffic and a real Prometheus scraping it, then evaluates every
// dashboard query and every alert expression through Prometheus' API.
func TestDashboardAndAlertsOnLivePrometheus(t *testing.T) {
	prom := testenv.Tool(t, "prometheus", "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const secret = "dashboard-test-secret"
	s := deployServer(t, secret)
	instance := testenv.HostPort(t, s.Addrs.Metrics)
	p := startPrometheus(ctx, t, prom, instance)
	p.waitFor(ctx, t, `up{job="tryst"} == 1`)

	// Hub traffic: three rendezvous (one room kept open) and a rejection.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
	wsURL := "ws://" + testenv.HostPort(t, s.Addrs.Hub) + "/v1/ws"
	for i := 0; i < 3; i++ {
		conns, err := deployPair(ctx, opts, wsURL, i == 2)
		if err != nil {
			t.Fatalf("pairing %d: %v", i, err)
		}
		for _, c := range conns {
			defer c.Close()
		}
	}
	if bad, _, err := hubconn.Dial(ctx, wsURL, &hubconn.Options{Dial: opts}); err == nil {
		_ = bad.Send(ctx, proto.Frame{Type: proto.TypeJoin, Version: proto.ProtocolVersion, Room: "no-such-room"})
		_, _ = bad.Next(ctx) // the error frame
		_ = bad.Close()
	}
	// TURN traffic: an allocation relaying both ways, kept open.
	closeRelay := deployRelay(t, s.Addrs.TURNUDP, []byte(secret))
	defer closeRelay()

	p.waitFor(ctx, t, `tryst_hub_pairing_duration_seconds_count{job="tryst"} >= 3`)
	p.waitFor(ctx, t, `min(tryst_turn_relay_bytes_total{job="tryst"}) > 0`)
	p.waitFor(ctx, t, `tryst_turn_allocations{job="tryst"} >= 1 and tryst_hub_rooms{job="tryst"} >= 1`)

	targets, varQueries := grafanaTargets(t, filepath.Join(deployDir, "grafana", "tryst.json"))
	if len(targets) < 15 {
		t.Fatalf("only %d dashboard queries found", len(targets))
	}
	for _, q := range varQueries {
		// label_values(metric, label): the metric must carry the label.
		m, label, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")"), ",")
		if !ok {
			t.Errorf("template variable query %q: not label_values(metric, label)", q)
			continue
		}
		res, err := p.query(ctx, m)
		if err != nil || len(res) == 0 || res[0].Metric[strings.TrimSpace(label)] != instance {
			t.Errorf("template variable %q: %v %v", q, res, err)
		}
	}
	results := map[string][]promSample{}
	for _, tg := range targets {
		expr := grafanaExpand(tg.expr, instance)
		if strings.Contains(expr, "$") {
			t.Errorf("panel %q %s: unexpanded variable in %s", tg.panel, tg.ref, expr)
			continue
		}
		res, err := p.query(ctx, expr)
		if err != nil {
			t.Errorf("panel %q %s: %v", tg.panel, tg.ref, err)
			continue
		}
		if len(res) == 0 {
			t.Errorf("panel %q (%s row) %s: no data for %s", tg.panel, tg.row, tg.ref, expr)
		}
		results[tg.panel+"/"+tg.ref] = res
	}
	// The traffic shows where it should.
	positive := func(key string, minSeries int) {
		t.Helper()
		res := results[key]
		n := 0
		for _, r := range res {
			if v := r.float(); v > 0 && !math.IsInf(v, 0) {
				n++
			}
		}
		if n < minSeries {
			t.Errorf("%s: %d positive series, want %d: %v", key, n, minSeries, res)
		}
	}
	positive("Connections/A", 1)
	positive("Rooms/A", 1)
	positive("Messages by type/A", 4) // create, join, offer, answer
	positive("Rejections by reason/A", 1)
	positive("Pairing latency/A", 1)
	positive("Pairing latency/B", 1)
	positive("Pairing latency/C", 1)
	positive("Allocations and relay ports/A", 1)
	positive("Allocations and relay ports/B", 1)
	positive("Allocations and relay ports/C", 1) // the relay port of the open allocation
	positive("Allocations and relay ports/D", 1)
	positive("Relayed bandwidth/A", 2) // both directions
	positive("Relayed packets/A", 2)
	positive("CPU/A", 1)
	positive("Goroutines/A", 1)

	// Every alert expression runs, and Prometheus evaluates every rule
	// without error.
	raw, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	nRules := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			nRules++
			if _, err := p.query(ctx, r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
		}
	}
	var st struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for evaluated := false; !evaluated; {
		if err := p.get(ctx, p.base+"/api/v1/rules", &st); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range st.Data.Groups {
			for _, r := range g.Rules {
				if !r.LastEvaluation.IsZero() && r.LastEvaluation.Year() > 1 {
					n++
				}
			}
		}
		if evaluated = n == nRules; !evaluated {
			select {
			case <-ctx.Done():
				t.Fatalf("Prometheus evaluated %d of %d rules", n, nRules)
			case <-tick.C:
			}
		}
	}
	for _, g := range st.Data.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %s, error %q", r.Name, r.Health, r.LastError)
			}
		}
	}
}
