package web

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBrowserPeerVersions runs peer.js under Node on sealed offers and
// answers of each protocol version and epoch: an older peer's ("v1." blobs,
// or a payload below version 3) is refused with the sentence both clients
// say, a later version's is taken, a blob of the epoch that does not open
// is a mismatch, one of another epoch is not, and a malformed one is told
// apart from both.
func TestBrowserPeerVersions(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "testdata/versions.mjs").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("versions.mjs: %v\n%s", err, out)
	}
}
