package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tryst-chat/tryst/proto"
)

// TestRoomLimitsReachTheHub: --rooms-per-ip and --idle-rooms-per-ip
// (Config.RoomsPerIP, IdleRoomsPerIP) are what the hub enforces, over a
// real socket, and -1 turns each off.
func TestRoomLimitsReachTheHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// create opens a connection, asks for a room and returns the hub's
	// answer with the connection, which the test closes.
	create := func(t *testing.T, s *Server) (proto.Frame, *websocket.Conn) {
		t.Helper()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.Addrs().Hub, "http")+"/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"create","version":3}`)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := proto.DecodeFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		return f, ws
	}
	refused := func(t *testing.T, f proto.Frame, reason string) {
		t.Helper()
		if f.Type != proto.TypeError || f.Code != proto.CodeRateLimited || f.RetryAfter <= 0 {
			t.Errorf("create answered %+v, want rate_limited with retry_after (%s)", f, reason)
		}
	}
	rejections := func(t *testing.T, s *Server, reason string) string {
		t.Helper()
		for _, line := range strings.Split(get(t, s.Addrs().Metrics), "\n") {
			if v, ok := strings.CutPrefix(line, `tryst_hub_rejections_total{reason="`+reason+`"} `); ok {
				return v
			}
		}
		return "0"
	}

	t.Run("rooms-per-ip", func(t *testing.T) {
		cfg := testConfig()
		cfg.RoomsPerIP, cfg.IdleRoomsPerIP = 2, -1
		s := start(t, cfg)
		// The hosts stay connected: no room is idle, only the burst counts.
		for range 2 {
			if f, _ := create(t, s); f.Type != proto.TypeCreated {
				t.Fatalf("create within the burst: %+v", f)
			}
		}
		f, _ := create(t, s)
		refused(t, f, "room_rate")
		if n := rejections(t, s, "room_rate"); n != "1" {
			t.Errorf("room_rate rejections %s, want 1", n)
		}
	})

	t.Run("idle-rooms-per-ip", func(t *testing.T) {
		cfg := testConfig()
		cfg.RoomsPerIP, cfg.IdleRoomsPerIP = -1, 1
		s := start(t, cfg)
		f, host := create(t, s)
		if f.Type != proto.TypeCreated {
			t.Fatalf("first create: %+v", f)
		}
		host.CloseNow()
		// The room is idle once the hub has let go of its host, which it
		// does before it counts the connection gone.
		waitMetric(ctx, t, s, "tryst_hub_connections 0")
		f, _ = create(t, s)
		refused(t, f, "idle_rooms")
		if n := rejections(t, s, "idle_rooms"); n != "1" {
			t.Errorf("idle_rooms rejections %s, want 1", n)
		}
	})

	t.Run("unlimited", func(t *testing.T) {
		cfg := testConfig()
		cfg.RoomsPerIP, cfg.IdleRoomsPerIP = -1, -1
		s := start(t, cfg)
		// More than the default burst (20) and idle cap (16), each host
		// gone at once; fewer than the credential budget (30) and the
		// connection cap (32), which stay on.
		for i := range 25 {
			f, ws := create(t, s)
			if f.Type != proto.TypeCreated {
				t.Fatalf("create %d: %+v", i+1, f)
			}
			ws.CloseNow()
		}
		for _, reason := range []string{"room_rate", "idle_rooms"} {
			if n := rejections(t, s, reason); n != "0" {
				t.Errorf("%s rejections %s, want none", reason, n)
			}
		}
	})
}

// waitMetric reads s's metrics until one line is want. Each try is a
// scrape, which the server answers only after its own work: no sleep.
func waitMetric(ctx context.Context, t *testing.T, s *Server, want string) {
	t.Helper()
	for ctx.Err() == nil {
		for _, line := range strings.Split(get(t, s.Addrs().Metrics), "\n") {
			if line == want {
				return
			}
		}
	}
	t.Fatalf("metrics never showed %q", want)
}
