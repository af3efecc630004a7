package proto_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tryst-chat/tryst"

// deps lists what patterns import, transitively (tests' imports aside), each
// with whether it is in the standard library. The go command is the one
// running this test: go test puts its GOROOT/bin first on PATH.
func deps(t *testing.T, patterns ...string) map[string]bool {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	m := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		m[path] = std == "true"
	}
	return m
}

// TestClientDoesNotLinkTheServer keeps the seam that proto exists for: a
// client program never carries the hub, the relay or Prometheus.
func TestClientDoesNotLinkTheServer(t *testing.T) {
	t.Parallel()
	got := deps(t, module+"/client/...")
	if _, ok := got[module+"/proto"]; !ok {
		t.Fatal("client does not import proto; is the package list right?")
	}
	for path := range got {
		for _, banned := range []string{module + "/hub", module + "/metrics", module + "/turnserver", "github.com/prometheus/"} {
			if path == banned || strings.HasPrefix(path, strings.TrimSuffix(banned, "/")+"/") {
				t.Errorf("client depends on %s", path)
			}
		}
	}
}

// TestProtoIsStandardLibraryOnly: proto is what every client and the hub
// share, so it brings nothing with it; hubconn adds the WebSocket library and
// nothing else.
func TestProtoIsStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	for path, std := range deps(t, module+"/proto") {
		if !std && path != module+"/proto" {
			t.Errorf("proto depends on %s", path)
		}
	}
	for path, std := range deps(t, module+"/proto/hubconn") {
		switch {
		case std, path == module+"/proto", path == module+"/proto/hubconn":
		case path == "github.com/coder/websocket", strings.HasPrefix(path, "github.com/coder/websocket/"):
		default:
			t.Errorf("proto/hubconn depends on %s", path)
		}
	}
}
