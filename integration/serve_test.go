package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
)

// TestServeProcess runs the real binary: it answers /healthz, /metrics and
// the hub protocol, keeps the secret out of argv and logs, and drains on
// SIGTERM as documented: unready and refusing new WebSockets for
// --drain-delay while members stay, then 1001 to members, then exit 0.
func TestServeProcess(t *testing.T) {
	bin := trystBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tryst v0.0.0-test ") {
		t.Fatalf("version: %q %v", out, err)
	}

	const secret = "a-secret-that-must-not-leak"
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--turn-listen", "127.0.0.1:0", "--log-format", "json", "--drain-timeout", "5s", "--drain-delay", "3s", "--ready-file", readyFile)
	cmd.Env = append(os.Environ(), "TRYST_TURN_SECRET="+secret)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var logs bytes.Buffer
	sc := bufio.NewScanner(stderr)
	var ready struct {
		Hub, Metrics, TurnUDP string
	}
	for sc.Scan() {
		logs.Write(sc.Bytes())
		logs.WriteByte('\n')
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "tryst serving" {
			ready.Hub, _ = line["hub"].(string)
			ready.Metrics, _ = line["metrics"].(string)
			ready.TurnUDP, _ = line["turn_udp"].(string)
			break
		}
	}
	if ready.Hub == "" {
		t.Fatalf("server did not start:\n%s", logs.String())
	}
	// The ready file is complete before "tryst serving" is logged, and
	// names the same addresses.
	data, err := os.ReadFile(readyFile)
	if err != nil {
		t.Fatalf("--ready-file: %v", err)
	}
	var fromFile struct {
		Hub     string `json:"hub"`
		Metrics string `json:"metrics"`
		TurnUDP string `json:"turn_udp"`
		TurnTCP string `json:"turn_tcp"`
	}
	if err := json.Unmarshal(data, &fromFile); err != nil {
		t.Fatalf("--ready-file holds %q: %v", data, err)
	}
	if fromFile.Hub != ready.Hub || fromFile.Metrics != ready.Metrics || fromFile.TurnUDP != ready.TurnUDP || fromFile.TurnTCP == "" {
		t.Errorf("--ready-file %+v, log %+v", fromFile, ready)
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		for sc.Scan() {
			logs.Write(sc.Bytes())
			logs.WriteByte('\n')
		}
	}()

	get := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return string(b)
	}
	if got := get(ready.Hub + "/healthz"); got != "ok\n" {
		t.Errorf("healthz %q", got)
	}
	var ice proto.ICEConfig
	json.Unmarshal([]byte(get(ready.Hub+"/v1/ice")), &ice)
	_, turnPort, _ := strings.Cut(ready.TurnUDP, "127.0.0.1:")
	if len(ice.Servers) != 2 || !strings.Contains(strings.Join(ice.Servers[1].URLs, " "), "turn:127.0.0.1:"+turnPort+"?transport=udp") || ice.Servers[1].Username == "" {
		t.Errorf("ICE servers %+v do not point at the TURN port %s", ice, turnPort)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ready.Hub, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"create","version":3}`))
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"type":"created"`) {
		t.Fatalf("create: %s %v", b, err)
	}

	m := get(ready.Metrics)
	for _, want := range []string{`tryst_build_info{goversion="go`, `version="v0.0.0-test"} 1`, "tryst_hub_connections 1",
		"tryst_hub_rooms 1", "tryst_turn_allocations 0", "process_resident_memory_bytes", "go_goroutines",
		`tryst_hub_messages_total{type="create"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// SIGTERM: first unready (a load balancer's health check sees it
	// within the delay) while the member stays connected...
	cmd.Process.Signal(syscall.SIGTERM)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for readyz(ready.Hub) != http.StatusServiceUnavailable {
		select {
		case <-ctx.Done():
			t.Fatal("/readyz never answered 503 after SIGTERM")
		case <-tick.C:
		}
	}
	// ...a new WebSocket is refused with 503 draining...
	if c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ready.Hub, "http")+"/v1/ws", nil); err == nil {
		c.CloseNow()
		t.Error("a new WebSocket was accepted while draining")
	} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new WebSocket while draining: %v, want HTTP 503", err)
	}
	// ...then the member is told to reconnect, and the process exits 0.
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("client saw %v on shutdown, want 1001", err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Errorf("exit after SIGTERM: %v", err)
	}
	<-logsDone
	if strings.Contains(logs.String(), secret) {
		t.Error("the TURN secret appears in the logs")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", logs.String())
	}
}

// readyz is the status of GET /readyz, or 0 if the request failed.
func readyz(base string) int {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
