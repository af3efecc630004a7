package web

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client"
	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestBrowserNameRulesMatchGo runs protocol.js's nameProblem under Node on the
// names the Go client's rules are tested with: both clients refuse the same
// offered names, for the same stated rule (docs/PROTOCOL.md, "Receiving
// safely").
func TestBrowserNameRulesMatchGo(t *testing.T) {
	node := testenv.Tool(t, "node", "nodejs")
	names := []string{
		"report.pdf", "a b (1).txt", "日本語.txt", "émoji 🎉.png", ".hidden", "..a", "a..b",
		"", ".", "..", strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("é", 127) + "a",
		strings.Repeat("é", 128), "a/b", `a\b`, "C:evil", "c:\\x", "bell\a.txt", "esc\x1b[2J.txt", "tab\t.txt",
		"c1\u0085.txt", "del\x7f.txt", "invoice\u202efdp.exe", "zw\u200b.txt", "bom\ufeff.txt", "lrm\u200e.txt",
		"shy\u00ad.txt", "tag\U000e0041.txt", "ls\u2028.txt", "bad\ufffd.txt",
		"CON", "con.txt", "Aux.tar.gz", "nul ", "com1", "COM9.log", "lpt3.x", "com0", "COM10", "console", "a.exe.", "a ",
		"connect.txt", "prn2", ". a",
	}
	want := map[string]string{}
	for _, n := range names {
		want[n] = ""
		if err := client.ValidateFileName(n); err != nil {
			rule := strings.TrimPrefix(err.Error(), "file name ")
			if rule == err.Error() {
				t.Fatalf("%q: unexpected error text %q", n, err)
			}
			want[n] = rule
		}
	}
	in, _ := json.Marshal(names)
	script := `import { nameProblem } from "./static/protocol.js";
const names = JSON.parse(process.argv[1]);
console.log(JSON.stringify(Object.fromEntries(names.map((n) => [n, nameProblem(n)]))));`
	out, err := exec.Command(node, "--input-type=module", "-e", script, string(in)).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%q: browser %q, Go %q", n, got[n], want[n])
		}
	}
}
