// Package deps pins the project's dependencies in go.mod while the packages
// that use them are being written; it is removed once they all import them.
package deps

import (
	_ "github.com/coder/websocket"
	_ "github.com/pion/logging"
	_ "github.com/pion/stun/v3"
	_ "github.com/pion/transport/v4/vnet"
	_ "github.com/pion/turn/v4"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/time/rate"
)
