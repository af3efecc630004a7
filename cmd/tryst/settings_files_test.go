package main

// The example and Kubernetes configs in deploy/ go through the real settings
// loader. The static checks of the artefacts live in deploy/deploy_test.go,
// the live ones (promtool, Prometheus) in integration/.

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tryst-chat/tryst/internal/settings"
)

const deployDir = "../../deploy"

func TestExampleConfigHasEverySettingAtItsDefault(t *testing.T) {
	path := filepath.Join(deployDir, "tryst.example.yaml")
	file, err := settings.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range file {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var want []string
	for _, n := range settings.Names(serveFlags(newServeOptions())) {
		if n != "config" { // names the file; not allowed inside it
			want = append(want, n)
		}
	}
	if !slices.Equal(keys, want) {
		for _, n := range want {
			if _, ok := file[n]; !ok {
				t.Errorf("%s: setting %q missing", path, n)
			}
		}
		for _, k := range keys {
			if !slices.Contains(want, k) {
				t.Errorf("%s: %q is not a setting", path, k)
			}
		}
	}

	got, err := parseServe([]string{"--config", path}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	def, err := parseServe(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got.configFile = ""
	if !reflect.DeepEqual(got, def) {
		t.Errorf("%s does not state the defaults:\n file     %+v\n defaults %+v", path, *got, *def)
	}
	cfg, err := got.config(env(map[string]string{"TRYST_TURN_SECRET": "example-test-secret-0123456789"}), io.Discard)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Errorf("build from %s: %v", path, err)
	}
}

func TestKubernetesConfigMapLoads(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	cfg, ok := cm.Data["tryst.yaml"]
	if !ok {
		t.Fatal("configmap.yaml: no data key tryst.yaml")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tryst.yaml")
	secret := filepath.Join(dir, "turn-secret")
	hubKey := filepath.Join(dir, "hub-key")
	if err := os.WriteFile(hubKey, []byte("k8s-test-hub-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	storePassword := filepath.Join(dir, "store-password")
	if err := os.WriteFile(storePassword, []byte("k8s-test-redis-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("k8s-test-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The secrets' paths are the Secret volumes'; the flags (which win over
	// the file) point them at local copies.
	c, err := parseServe([]string{"--config", path, "--turn-secret-file", secret, "--hub-key-file", hubKey,
		"--store-password-file", storePassword}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("load the ConfigMap's tryst.yaml: %v", err)
	}
	sc, err := c.config(env(nil), io.Discard)
	if err == nil {
		err = sc.Validate()
	}
	if err != nil {
		t.Fatalf("build from the ConfigMap's tryst.yaml: %v", err)
	}
	if host, _, _ := net.SplitHostPort(c.MetricsListen); host == "127.0.0.1" {
		t.Errorf("metrics-listen %s: Prometheus could not scrape it", c.MetricsListen)
	}
}
