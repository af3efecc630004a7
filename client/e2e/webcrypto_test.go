package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestSpecVectorsWithWebCrypto recomputes the test vectors of
// docs/PROTOCOL.md with Node's Web Crypto, the API the browser client
// uses, in an implementation written from the document alone: it must
// agree with the document, and so with this package, byte for byte.
func TestSpecVectorsWithWebCrypto(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "testdata/webcrypto_vectors.mjs", specPath).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	checkNodeOutput(t, string(out))
}

// checkNodeOutput checks that a Node script of testdata/specvectors.mjs
// checked every vector block the Go test knows, and finished.
func checkNodeOutput(t *testing.T, out string) {
	t.Helper()
	var checked []string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "checked "); ok {
			checked = append(checked, name)
		}
	}
	if !slices.Equal(checked, specNames) || lines[len(lines)-1] != "ok" {
		t.Errorf("Node checked %v, want %v:\n%s", checked, specNames, out)
	}
}
