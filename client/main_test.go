package client

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pion's mDNS and ICE internals may take a moment to stop after Close;
		// these are library timers, not goroutines the client owns.
		goleak.IgnoreTopFunction("github.com/pion/ice/v4.(*Agent).startOnConnectionStateChangeRoutine.func1"),
	)
}
