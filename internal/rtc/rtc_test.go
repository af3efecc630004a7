package rtc_test

import (
	"testing"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/tryst-chat/tryst/internal/rtc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNewAPI: the caller's SettingEngine hook runs, and a connection that has
// selected no candidate pair yet reports its path as unknown.
func TestNewAPI(t *testing.T) {
	called := false
	api := rtc.NewAPI(rtc.Options{LoopbackOnly: true, SettingEngine: func(*webrtc.SettingEngine) { called = true }})
	if !called {
		t.Error("SettingEngine hook not called")
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := rtc.SelectedPath(pc); got != "unknown" {
		t.Errorf("path before connecting = %q, want unknown", got)
	}
	if rtc.LowWater >= rtc.HighWater {
		t.Errorf("LowWater %d not below HighWater %d", rtc.LowWater, rtc.HighWater)
	}
}
