package web

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client/e2e/specvectors"
	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBrowserCryptoSpecVectors runs the browser's crypto.js and cpace.js
// under Node's Web Crypto and the vendored noble (resolved by the page's
// import map) against every test vector of docs/PROTOCOL.md, the pake
// vector included, which the Node script reads out of the document itself.
func TestBrowserCryptoSpecVectors(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	const doc = "../docs/PROTOCOL.md"
	vs, err := specvectors.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, v := range vs {
		want = append(want, v.Name)
	}
	out, err := exec.Command(node, "--import", "./testdata/importmap.mjs", "testdata/spec_vectors.mjs", doc).CombinedOutput()
	if err != nil {
		t.Fatalf("crypto.js vs docs/PROTOCOL.md: %v\n%s", err, out)
	}
	var checked []string
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "checked "); ok {
			checked = append(checked, name)
		}
	}
	if len(want) == 0 || !slices.Equal(checked, want) || lines[len(lines)-1] != "ok" {
		t.Errorf("Node checked %v, the document has %v:\n%s", checked, want, out)
	}
}
