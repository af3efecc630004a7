package web

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBrowserPeerVersions runs peer.js under Node on sealed offers and
// answers of each protocol version: a version 1 peer's is refused with the
// sentence both clients say, a later version's is taken, a mismatch stays
// a mismatch.
func TestBrowserPeerVersions(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "testdata/versions.mjs").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("versions.mjs: %v\n%s", err, out)
	}
}
