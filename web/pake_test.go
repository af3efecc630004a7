package web

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBrowserPAKE runs crypto.js's PAKE under Node, with cpace.js on the
// vendored noble: every message kind at its exact length, and everything
// else (another length or kind, another prefix, base64url that is not
// canonical) malformed; exchanges with random scalars give both sides the
// same epoch with one password and a mismatch on the host with two, bound
// to the room, each exchange used once. The document's vector is
// TestBrowserCryptoSpecVectors'.
func TestBrowserPAKE(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "--import", "./testdata/importmap.mjs", "testdata/pake.mjs").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("pake.mjs: %v\n%s", err, out)
	}
}
