package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestVectorsWithWebCrypto recomputes the test vectors with Node's Web
// Crypto, the same API the browser client uses: an independent
// implementation must agree with this package byte for byte.
func TestVectorsWithWebCrypto(t *testing.T) {
	t.Parallel()
	node := testenv.Tool(t, "node", "nodejs")
	out, err := exec.Command(node, "testdata/webcrypto_vectors.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := map[string]string{
		"salt": tvSalt, "master": tvMaster, "signal": tvSignalBlob,
		"confirm_host": tvConfirmHost, "confirm_guest": tvConfirmGuest,
		"frame0": tvFrame0, "frame1": tvFrame1,
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: Web Crypto %q, Go %q", k, got[k], w)
		}
	}
}
