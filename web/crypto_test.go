package web

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// The test vectors of docs/PROTOCOL.md, as client/e2e checks them.
var vectors = map[string]string{
	"salt":          "e97e997a968ec2a9dd073341edbe580b93fdc30f0c22617ec9b55512361d2de4",
	"master":        "a2635e54813d4a5f3d35ef24e9eef24dcf083e354f25cbe313b1c0f40cfe744b",
	"signal":        "v1.AAECAwQFBgcICQoLntoSlGuriVkCIC0kaGv-32VYANQ6A4zAtf8miEo",
	"confirm_host":  "e18fb76cce5f4cf148b862e237c6658c8b8bbddb0272835501ea75b1dbeebf5c",
	"confirm_guest": "3c3b0fc7a5c86f89d016768722dbe07cada448db4349fa55d077a411881f8c54",
	"frame0":        "010200000000000000006138fb1eb1d23a823a9dd7cea5c157e4911c99cbc1",
	"frame1":        "010200000000000000017e05e80722d7b3218c3007dd7d2099cb569d6ec5ac",
}

// TestBrowserCryptoVectors runs the browser's crypto module under Node's
// Web Crypto against the protocol's test vectors.
func TestBrowserCryptoVectors(t *testing.T) {
	node := testenv.Tool(t, "node", "nodejs")
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range vectors {
		if !strings.Contains(string(doc), v) {
			t.Errorf("vector %s not in docs/PROTOCOL.md", name)
		}
	}
	arg, _ := json.Marshal(vectors)
	out, err := exec.Command(node, "testdata/vectors.mjs", string(arg)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("crypto.js vs vectors: %v\n%s", err, out)
	}
}
