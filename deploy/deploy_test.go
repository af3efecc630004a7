// Package deploy holds no code: its tests check the deployment artefacts in
// this directory (Dockerfile, compose, Prometheus, Grafana, systemd,
// Kubernetes) for structure and for consistency with each other and with
// the series Tryst exports. The tests that need a running server are in
// cmd/tryst/deploy_test.go.
package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/tryst-chat/tryst/internal/testenv"
	"github.com/tryst-chat/tryst/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestPrometheusConfigAndRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "prometheus")
	run(t, promtool, "check", "config", "prometheus/prometheus.yml")
	run(t, promtool, "check", "rules", "prometheus/alerts.yml")
	out := run(t, promtool, "test", "rules", "prometheus/alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestEveryAlertHasAUnitTest(t *testing.T) {
	var rules ruleFile
	readYAML(t, "prometheus/alerts.yml", &rules)
	var tests struct {
		Tests []struct {
			Alerts []struct {
				Name string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/alerts_test.yml", &tests)
	tested := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.Alerts {
			tested[a.Name] = true
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !tested[r.Alert] {
				t.Errorf("alert %s has no test in prometheus/alerts_test.yml", r.Alert)
			}
			if !strings.Contains(r.Expr, `job="tryst"`) {
				t.Errorf("alert %s does not select job=\"tryst\"", r.Alert)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d alerts", n)
	}
}

// exported returns every series name Tryst exports, histogram and summary
// suffixes included.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg, err := metrics.NewRegistry("test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewHub(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewTURN(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewTURNAllocationsLimit(reg, 1); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true} // added by Prometheus
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			names[n+s] = true
		}
	}
	return names
}

var seriesRE = regexp.MustCompile(`\b((?:tryst|go|process)_[a-z0-9_]+|up)\b`)

// checkSeries reports series named in expr that Tryst does not export: a
// renamed metric breaks the dashboard or an alert silently otherwise.
func checkSeries(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, m := range seriesRE.FindAllString(expr, -1) {
		if !names[m] {
			t.Errorf("%s: %s is not a series Tryst exports", where, m)
		}
	}
}

func TestAlertsAndDashboardUseExportedSeries(t *testing.T) {
	names := exported(t)
	var rules ruleFile
	readYAML(t, "prometheus/alerts.yml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			checkSeries(t, "alert "+r.Alert, r.Expr, names)
		}
	}
	d := loadDashboard(t)
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			checkSeries(t, "panel "+p.Title, tg.Expr, names)
		}
	}
}

type dashPanel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource map[string]string `json:"datasource"`
	Targets    []struct {
		RefID      string            `json:"refId"`
		Expr       string            `json:"expr"`
		Datasource map[string]string `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

type dashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// panels lists every non-row panel, those of collapsed rows included.
func (d dashboard) panels() []dashPanel {
	var out []dashPanel
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/tryst.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/tryst.json: %v", err)
	}
	return d
}

func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["instance"] != "query" || vars["datasource"] != "datasource" {
		t.Errorf("template variables: %v, want instance (query) and datasource", vars)
	}
	ids := map[int]bool{}
	var all strings.Builder
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q %s: does not filter on $instance: %s", p.Title, tg.RefID, tg.Expr)
			}
			all.WriteString(tg.Expr + "\n")
		}
	}
	// What the dashboard must show.
	for _, want := range []string{
		"tryst_hub_connections", "tryst_hub_rooms", "tryst_hub_mailbox_bytes", "tryst_hub_messages_total", "tryst_hub_rejections_total",
		"histogram_quantile(0.5, sum by (le) (rate(tryst_hub_pairing_duration_seconds_bucket",
		"histogram_quantile(0.95, sum by (le) (rate(tryst_hub_pairing_duration_seconds_bucket",
		"histogram_quantile(0.99, sum by (le) (rate(tryst_hub_pairing_duration_seconds_bucket",
		"tryst_turn_allocations{", "tryst_turn_allocations_limit", "sum by (direction) (rate(tryst_turn_relay_bytes_total",
		"tryst_turn_auth_failures_total", "tryst_turn_permission_denied_total", "tryst_turn_quota_rejections_total",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "process_open_fds",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no panel queries %s", want)
		}
	}

	// Provisioning: the datasource the compose Prometheus is, the dashboard
	// directory compose mounts the JSON into.
	var ds struct {
		Datasources []struct {
			Type, URL string
		}
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasource provisioning: %+v", ds)
	}
	var prov struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	readYAML(t, "grafana/provisioning/dashboards/tryst.yaml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard provisioning: %+v", prov)
	}
	c := loadCompose(t)
	want := "./grafana/tryst.json:" + prov.Providers[0].Options.Path + "/tryst.json:ro"
	if !slices.Contains(c.Services["grafana"].Volumes, want) {
		t.Errorf("compose grafana volumes %v lack %s", c.Services["grafana"].Volumes, want)
	}
}

type composeFile struct {
	Services map[string]struct {
		Build struct {
			Context    string            `yaml:"context"`
			Dockerfile string            `yaml:"dockerfile"`
			Args       map[string]string `yaml:"args"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

// promConfig is what the tests read of a Prometheus configuration.
type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, "compose.yaml", &c)
	return c
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, s := range []string{"tryst", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml: no service %s", s)
		}
	}
	tr := c.Services["tryst"]
	if filepath.Join(tr.Build.Context, tr.Build.Dockerfile) != "../deploy/Dockerfile" {
		t.Errorf("tryst builds %s/%s, want the repository root and deploy/Dockerfile", tr.Build.Context, tr.Build.Dockerfile)
	}
	flags := map[string]string{}
	for _, a := range tr.Command {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	if flags["metrics-listen"] != "0.0.0.0:9464" {
		t.Errorf("tryst --metrics-listen %q, want 0.0.0.0:9464", flags["metrics-listen"])
	}
	if !slices.Contains(tr.Secrets, "turn-secret") || flags["turn-secret-file"] != "/run/secrets/turn-secret" {
		t.Errorf("tryst: the TURN secret must come from the compose secret turn-secret via --turn-secret-file")
	}
	if c.Secrets["turn-secret"].File != "./turn-secret" {
		t.Errorf("secret turn-secret: file %q", c.Secrets["turn-secret"].File)
	}
	// The hub key lives in the state directory: a named volume, so that
	// rooms survive a restart and a new container.
	if dir := flags["state-dir"]; dir == "" || !slices.ContainsFunc(tr.Volumes, func(v string) bool {
		name, mount, _ := strings.Cut(v, ":")
		_, declared := c.Volumes[name]
		return mount == dir && declared
	}) {
		t.Errorf("tryst: --state-dir %q is not a named volume (volumes %v)", dir, tr.Volumes)
	}
	if _, ok := tr.Environment["TRYST_PUBLIC_IP"]; !ok {
		t.Error("tryst: no TRYST_PUBLIC_IP placeholder")
	}
	for k := range tr.Environment {
		if strings.Contains(k, "SECRET") {
			t.Errorf("tryst: secret in the environment (%s): use the secret file", k)
		}
	}
	relay := flags["turn-relay-ports"]
	published := map[string]bool{}
	for _, p := range tr.Ports {
		published[p] = true
		if strings.Contains(p, "9464") {
			t.Errorf("tryst publishes the metrics port (%s): keep it inside the compose network", p)
		}
	}
	for _, p := range []string{"8080:8080/tcp", "3478:3478/udp", "3478:3478/tcp", relay + ":" + relay + "/udp"} {
		if !published[p] {
			t.Errorf("tryst does not publish %s", p)
		}
	}
	for _, s := range []string{"prometheus", "grafana"} {
		for _, p := range c.Services[s].Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s on every interface", s, p)
			}
		}
	}
	// Bind-mounted sources exist.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: volume %s: %v", name, v, err)
				}
			}
		}
	}
	if !slices.Contains(c.Services["prometheus"].Volumes, "./prometheus:/etc/prometheus:ro") {
		t.Errorf("prometheus does not mount ./prometheus")
	}

	// Prometheus scrapes the compose service on its metrics port, as job
	// "tryst" (the alerts select on it).
	var pc promConfig
	readYAML(t, "prometheus/prometheus.yml", &pc)
	if !slices.Contains(pc.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml: rule_files %v", pc.RuleFiles)
	}
	if len(pc.ScrapeConfigs) != 1 || pc.ScrapeConfigs[0].JobName != "tryst" ||
		len(pc.ScrapeConfigs[0].StaticConfigs) != 1 || !slices.Equal(pc.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"tryst:9464"}) {
		t.Errorf("prometheus.yml: scrape configs %+v, want job tryst scraping tryst:9464", pc.ScrapeConfigs)
	}
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // comment inside a continuation
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfile lints the Dockerfile's structure. It cannot be built here
// (no Docker engine); docs/OPERATIONS.md says so.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var froms []string
	var user, entry, expose, build string
	var chowned []string
	args, env := map[string]string{}, map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
			user = "" // USER is per stage
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "EXPOSE":
			expose += " " + in.args
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		case "ARG", "ENV":
			k, v, _ := strings.Cut(in.args, "=")
			if in.cmd == "ARG" {
				args[k] = v
			}
			if regexp.MustCompile(`(?i)secret|passw|token|key|credential`).MatchString(k) {
				t.Errorf("%s %s: secrets must not be build args or image environment", in.cmd, k)
			}
		case "ADD":
			t.Errorf("ADD %s: use COPY", in.args)
		case "COPY":
			if strings.Contains(in.args, "--chown=65532:65532") {
				chowned = append(chowned, in.args)
			}
		}
		if in.cmd == "ENV" {
			k, v, _ := strings.Cut(in.args, "=")
			env[k] = v
		}
	}
	if len(froms) < 2 {
		t.Fatalf("not a multi-stage build: FROM %v", froms)
	}
	if !strings.HasPrefix(froms[0], "golang:${GO_VERSION} AS ") {
		t.Errorf("builder stage FROM %s, want golang:${GO_VERSION}", froms[0])
	}
	// The builder's Go is the module's.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod); m == nil || args["GO_VERSION"] != string(m[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says %s", args["GO_VERSION"], m)
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("final stage USER %q: must run as non-root", user)
	} else if !strings.HasPrefix(user, "65532") {
		t.Errorf("final stage USER %q, want 65532 (distroless nonroot)", user)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-X main.version=${VERSION}`, "./cmd/tryst"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build lacks %s: %s", want, build)
		}
	}
	if _, ok := args["VERSION"]; !ok {
		t.Error("no ARG VERSION")
	}
	for _, p := range []string{"8080/tcp", "3478/udp", "3478/tcp", "5349/tcp"} {
		if !slices.Contains(strings.Fields(expose), p) {
			t.Errorf("EXPOSE lacks %s", p)
		}
	}
	// The state directory (the hub key) is the user's, so that a volume
	// mounted on it starts writable.
	if dir := env["TRYST_STATE_DIR"]; dir == "" || !slices.ContainsFunc(chowned, func(c string) bool {
		f := strings.Fields(c)
		return strings.HasPrefix(dir, strings.TrimSuffix(f[len(f)-1], "/"))
	}) {
		t.Errorf("ENV TRYST_STATE_DIR=%q is not in a COPY --chown=65532:65532 (%v)", dir, chowned)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entry), &ep); err != nil || !slices.Equal(ep, []string{"/tryst", "serve"}) {
		t.Errorf("ENTRYPOINT %s, want [\"/tryst\", \"serve\"] (exec form)", entry)
	}
	// The .dockerignore keeps hand-made secrets out of the build context.
	ign, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "deploy/turn-secret", "deploy/kubernetes/turn-secret", "deploy/kubernetes/hub-key"} {
		if !slices.Contains(strings.Fields(string(ign)), p) {
			t.Errorf("Dockerfile.dockerignore lacks %s", p)
		}
	}
}

// unitFile parses a systemd unit: section -> key -> values (in order).
func unitFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := map[string]map[string][]string{}
	sec := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: bad line %q", path, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	u := unitFile(t, "systemd/tryst.service")
	svc := u["Service"]
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "SystemCallFilter": "@system-service",
		"CapabilityBoundingSet": "", "AmbientCapabilities": "", "Restart": "on-failure",
		"LoadCredential": "turn-secret:/etc/tryst/turn-secret", "EnvironmentFile": "-/etc/tryst/tryst.env",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"StateDirectory":          "tryst",
	} {
		if got, ok := svc[k]; !ok || !slices.Contains(got, want) {
			t.Errorf("[Service] %s=%v, want %q", k, got, want)
		}
	}
	if n := svc["LimitNOFILE"]; len(n) != 1 || len(n[0]) < 5 {
		t.Errorf("LimitNOFILE=%v: want a high limit", n)
	}
	exec := strings.Join(svc["ExecStart"], " ")
	if !strings.Contains(exec, "--turn-secret-file ${CREDENTIALS_DIRECTORY}/turn-secret") || !strings.Contains(exec, " serve ") {
		t.Errorf("ExecStart=%s: want tryst serve --turn-secret-file ${CREDENTIALS_DIRECTORY}/turn-secret", exec)
	}
	// The hub key in StateDirectory=: rooms survive a restart.
	if !strings.Contains(exec, "--state-dir ${STATE_DIRECTORY}") {
		t.Errorf("ExecStart=%s: want --state-dir ${STATE_DIRECTORY}", exec)
	}
	drop := unitFile(t, "systemd/low-ports.conf")
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if !slices.Equal(drop["Service"][k], []string{"CAP_NET_BIND_SERVICE"}) {
			t.Errorf("low-ports.conf: %s=%v", k, drop["Service"][k])
		}
	}

	// systemd's own checks, on a copy whose ExecStart exists here.
	sa := testenv.Tool(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile("systemd/tryst.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "tryst.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/tryst", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(t, sa, "verify", unit); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	// Exposure 2.0 or less on systemd's 0 (locked down) to 10 scale.
	out := run(t, sa, "security", "--offline=true", "--threshold=20", unit)
	if !strings.Contains(out, "Overall exposure level") {
		t.Errorf("systemd-analyze security:\n%s", out)
	}
}

// k8sDocs reads every YAML document of the Kubernetes manifests.
func k8sDocs(t *testing.T, files ...string) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var d map[string]any
			if err := dec.Decode(&d); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: %v", f, err)
				}
				break
			}
			kind, _ := d["kind"].(string)
			// The first of a kind is docs[kind]; every one is also
			// docs["Kind/name"].
			name, _ := get(d, "metadata", "name").(string)
			if _, dup := docs[kind+"/"+name]; dup {
				t.Fatalf("two %s manifests named %s", kind, name)
			}
			docs[kind+"/"+name] = d
			if _, ok := docs[kind]; !ok {
				docs[kind] = d
			}
		}
		fh.Close()
	}
	return docs
}

// get walks a decoded YAML document: keys for mappings, ints for lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetes(t *testing.T) {
	var kust struct {
		Resources       []string `yaml:"resources"`
		SecretGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"secretGenerator"`
	}
	readYAML(t, "kubernetes/kustomization.yaml", &kust)
	var files []string
	for _, r := range kust.Resources {
		files = append(files, filepath.Join("kubernetes", r))
	}
	var mon struct{ Resources []string }
	readYAML(t, "kubernetes/monitoring/kustomization.yaml", &mon)
	for _, r := range mon.Resources {
		files = append(files, filepath.Join("kubernetes/monitoring", r))
	}
	docs := k8sDocs(t, files...)
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"} {
		if docs[k] == nil {
			t.Fatalf("no %s manifest", k)
		}
	}
	if len(kust.SecretGenerator) != 3 || !slices.Equal(kust.SecretGenerator[0].Files, []string{"turn-secret"}) ||
		!slices.Equal(kust.SecretGenerator[1].Files, []string{"hub-key"}) || !slices.Equal(kust.SecretGenerator[2].Files, []string{"store-password"}) {
		t.Fatalf("kustomization: want secretGenerators from the files turn-secret, hub-key and store-password: %+v", kust.SecretGenerator)
	}
	secretName, hubKeyName, storeName := kust.SecretGenerator[0].Name, kust.SecretGenerator[1].Name, kust.SecretGenerator[2].Name

	dep := docs["Deployment"]
	pod := get(dep, "spec", "template", "spec")
	if get(pod, "hostNetwork") != true {
		t.Error("Deployment: hostNetwork is not true (the relay needs its port range)")
	}
	// Several pods share the rooms through Redis: one per Kubernetes node
	// (host ports), replaced one node at a time with no surge.
	if r, _ := get(dep, "spec", "replicas").(int); r < 2 {
		t.Errorf("Deployment: replicas %v, want several nodes", get(dep, "spec", "replicas"))
	}
	if get(dep, "spec", "strategy", "type") != "RollingUpdate" || get(dep, "spec", "strategy", "rollingUpdate", "maxSurge") != 0 {
		t.Error("Deployment: strategy must be RollingUpdate with maxSurge 0 (host ports)")
	}
	if get(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", 0, "topologyKey") != "kubernetes.io/hostname" {
		t.Error("Deployment: no required anti-affinity per host (two pods on one node would fight over the host ports)")
	}
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("Deployment: runAsNonRoot is not true")
	}
	ctr := get(pod, "containers", 0)
	if get(ctr, "livenessProbe", "httpGet", "path") != "/healthz" || get(ctr, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Error("Deployment: probes must be /healthz (liveness) and /readyz (readiness)")
	}
	if get(ctr, "securityContext", "allowPrivilegeEscalation") != false || get(ctr, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("Deployment: container securityContext not locked down")
	}
	mounts := map[string]string{} // volume -> mount path
	for i := 0; get(ctr, "volumeMounts", i) != nil; i++ {
		m := get(ctr, "volumeMounts", i)
		mounts[get(m, "name").(string)] = get(m, "mountPath").(string)
	}
	var secretVol, configVol, hubKeyVol, storeVol string
	for i := 0; get(pod, "volumes", i) != nil; i++ {
		v := get(pod, "volumes", i)
		if get(v, "secret", "secretName") == secretName {
			secretVol = get(v, "name").(string)
		}
		if get(v, "secret", "secretName") == hubKeyName {
			hubKeyVol = get(v, "name").(string)
		}
		if get(v, "secret", "secretName") == storeName {
			storeVol = get(v, "name").(string)
		}
		if get(v, "configMap", "name") == get(docs["ConfigMap"], "metadata", "name") {
			configVol = get(v, "name").(string)
		}
	}
	if secretVol == "" || configVol == "" || hubKeyVol == "" || storeVol == "" {
		t.Fatalf("Deployment: volumes for the Secrets %s and %s and the ConfigMap missing", secretName, hubKeyName)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(get(docs["ConfigMap"], "data", "tryst.yaml").(string)), &cfg); err != nil {
		t.Fatal(err)
	}
	if want := mounts[secretVol] + "/turn-secret"; cfg["turn-secret-file"] != want {
		t.Errorf("ConfigMap turn-secret-file %v, the Secret is mounted at %s", cfg["turn-secret-file"], want)
	}
	// The hub key comes from a Secret: a new pod (Recreate) has no state
	// directory of the old one, and recreates its rooms with that key.
	if want := mounts[hubKeyVol] + "/hub-key"; cfg["hub-key-file"] != want {
		t.Errorf("ConfigMap hub-key-file %v, the Secret %s is mounted at %s", cfg["hub-key-file"], hubKeyName, want)
	}
	// The rooms are in the Redis of redis.yaml, its password from the
	// Secret, mounted; Redis itself reads it from a file, never argv.
	redisSvc := docs["Service/tryst-redis"]
	if redisSvc == nil || docs["StatefulSet/tryst-redis"] == nil {
		t.Fatal("no Redis StatefulSet and Service named tryst-redis")
	}
	if want := "redis://tryst-redis:6379/0"; cfg["store"] != want {
		t.Errorf("ConfigMap store %v, want %s", cfg["store"], want)
	}
	if want := mounts[storeVol] + "/store-password"; cfg["store-password-file"] != want {
		t.Errorf("ConfigMap store-password-file %v, the Secret %s is mounted at %s", cfg["store-password-file"], storeName, want)
	}
	rs := get(docs["StatefulSet/tryst-redis"], "spec", "template", "spec")
	if get(rs, "volumes", 0, "secret", "secretName") != storeName {
		t.Errorf("Redis does not read the password from the Secret %s", storeName)
	}
	if a := fmt.Sprint(get(rs, "containers", 0, "args")); a != "[/conf/redis.conf]" {
		t.Errorf("Redis args %s: it must read its password from the written config file", a)
	}
	args, _ := get(ctr, "args").([]any)
	if want := []any{"--config", mounts[configVol] + "/tryst.yaml"}; !reflect.DeepEqual(args, want) {
		t.Errorf("container args %v, want %v", args, want)
	}
	ctrPorts := map[string]string{}
	for i := 0; get(ctr, "ports", i) != nil; i++ {
		p := get(ctr, "ports", i)
		ctrPorts[get(p, "name").(string)] = get(p, "protocol").(string)
	}

	svc := docs["Service"]
	protos := map[string]bool{}
	svcPorts := map[string]bool{}
	for i := 0; get(svc, "spec", "ports", i) != nil; i++ {
		p := get(svc, "spec", "ports", i)
		protos[get(p, "protocol").(string)] = true
		svcPorts[get(p, "name").(string)] = true
		if tp := get(p, "targetPort"); ctrPorts[tp.(string)] != get(p, "protocol") {
			t.Errorf("Service port %v: targetPort %v is not a container port of that protocol", get(p, "name"), tp)
		}
	}
	if !protos["UDP"] || !protos["TCP"] {
		t.Errorf("Service protocols %v, want UDP and TCP", protos)
	}

	sm := docs["ServiceMonitor"]
	if get(sm, "apiVersion") != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %v", get(sm, "apiVersion"))
	}
	if p := get(sm, "spec", "endpoints", 0, "port"); p != "metrics" || !svcPorts["metrics"] {
		t.Errorf("ServiceMonitor scrapes port %v; the Service needs a port named so", p)
	}
	svcLabels, _ := get(svc, "metadata", "labels").(map[string]any)
	sel, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if svcLabels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the Service has %v", k, v, svcLabels[k])
		}
	}
	// The job label comes from the Service label jobLabel names: the alerts
	// want job="tryst".
	if jl, _ := get(sm, "spec", "jobLabel").(string); svcLabels[jl] != "tryst" {
		t.Errorf("ServiceMonitor jobLabel %q gives job=%v, want tryst", jl, svcLabels[jl])
	}

	// The PrometheusRule holds alerts.yml's groups.
	var alerts map[string]any
	readYAML(t, "prometheus/alerts.yml", &alerts)
	if !reflect.DeepEqual(get(docs["PrometheusRule"], "spec", "groups"), alerts["groups"]) {
		t.Error("kubernetes/monitoring/prometheusrule.yaml differs from prometheus/alerts.yml: copy the groups over")
	}
}

// TestComposeCluster checks the two-node compose file: both nodes on the
// Redis service with the shared hub key and TURN secret, each its own relay
// ports, HAProxy's configuration valid (the real haproxy -c) and routing to
// both, Prometheus scraping both.
func TestComposeCluster(t *testing.T) {
	var c composeFile
	readYAML(t, "compose.cluster.yaml", &c)
	for _, s := range []string{"redis", "node-a", "node-b", "haproxy", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.cluster.yaml: no service %s", s)
		}
	}
	relays := map[string]bool{}
	for _, name := range []string{"node-a", "node-b"} {
		n := c.Services[name]
		flags := map[string]string{}
		for _, a := range n.Command {
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			flags[k] = v
		}
		if flags["store"] != "redis://redis:6379/0" {
			t.Errorf("%s: --store %q, want the redis service", name, flags["store"])
		}
		if flags["hub-key-file"] != "/run/secrets/hub-key" || !slices.Contains(n.Secrets, "hub-key") {
			t.Errorf("%s: the nodes must share the hub key secret", name)
		}
		if flags["turn-secret-file"] != "/run/secrets/turn-secret" || !slices.Contains(n.Secrets, "turn-secret") {
			t.Errorf("%s: the nodes must share the TURN secret", name)
		}
		// The balancer names each client in a PROXY protocol header, so
		// the per-address limits stay on and count clients.
		if flags["proxy-protocol-from"] != "172.28.0.10/32" {
			t.Errorf("%s: --proxy-protocol-from %q, want HAProxy's address", name, flags["proxy-protocol-from"])
		}
		r := flags["turn-relay-ports"]
		if r == "" || relays[r] || !slices.Contains(n.Ports, r+":"+r+"/udp") {
			t.Errorf("%s: relay ports %q not its own, or not published", name, r)
		}
		relays[r] = true
		for _, p := range n.Ports {
			if strings.HasPrefix(p, "8080") || strings.Contains(p, "9464") {
				t.Errorf("%s publishes %s: the hub goes through HAProxy, metrics stay inside", name, p)
			}
		}
	}
	if !slices.Contains(c.Services["haproxy"].Volumes, "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") {
		t.Error("haproxy does not mount ./haproxy/haproxy.cfg")
	}
	cfg, err := os.ReadFile("haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server node-a node-a:8080 check", "server node-b node-b:8080 check", "option httpchk GET /readyz",
		"timeout tunnel 1h", "send-proxy-v2 check-send-proxy"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	haproxy := testenv.Tool(t, "haproxy", "haproxy")
	run(t, haproxy, "-c", "-f", "haproxy/haproxy.cfg")
	promtool := testenv.Tool(t, "promtool", "prometheus")
	run(t, promtool, "check", "config", "prometheus/prometheus-cluster.yml")
	var pc promConfig
	readYAML(t, "prometheus/prometheus-cluster.yml", &pc)
	if len(pc.ScrapeConfigs) != 1 || pc.ScrapeConfigs[0].JobName != "tryst" ||
		!slices.Equal(pc.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"node-a:9464", "node-b:9464"}) {
		t.Errorf("prometheus-cluster.yml: %+v, want job tryst scraping both nodes", pc.ScrapeConfigs)
	}
	if !slices.Contains(c.Services["prometheus"].Command, "--config.file=/etc/prometheus/prometheus-cluster.yml") {
		t.Error("the cluster's Prometheus does not load prometheus-cluster.yml")
	}
}
