package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// importRE finds the imports of the page's modules (static ones, the
// dynamic import("./…") of cpace.js, and the worker's URL) as they are
// written in web/static.
var importRE = regexp.MustCompile(`(?m)(?:^import[^"'\n]*|^export[^"'\n]*from |new URL\(|import\()["'](\./[^"']+)["']`)

// moduleGraph is every file the page loads as a module, from app.js,
// following imports transitively.
func moduleGraph(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, m := range importRE.FindAllStringSubmatch(string(src), -1) {
			walk(path.Join(path.Dir(p), m[1]))
		}
	}
	walk("app.js")
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	return out
}

// TestStaticModulesServed: every module the page and its store worker
// import is served by Handler, as JavaScript. (A plain go:embed pattern
// leaves out names that begin with "_" or "."; web.go embeds all:static so
// that a vendored package with such a file still works.)
func TestStaticModulesServed(t *testing.T) {
	files := moduleGraph(t, os.DirFS("static"))
	for _, want := range []string{"protocol.js", "crypto.js", "cpace.js", "hub.js", "peer.js", "transfer.js", "store-worker.js",
		"storage.js", "ui.js", "vendor/hash-wasm-4.13.0/sha256.umd.min.js", "vendor/noble-curves-2.4.0/ed25519.js"} {
		found := false
		for _, f := range files {
			found = found || f == want
		}
		if !found {
			t.Errorf("%s is not in the module graph %v", want, files)
		}
	}
	h := Handler()
	for _, f := range files {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+f, nil))
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
			t.Errorf("GET /%s: %d %s", f, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
