package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestHandlerServesFiles checks every file the page loads by itself: the
// page, its style, its modules, and both icons (a browser asks for
// /favicon.ico on its own; a 404 there shows in every console).
func TestHandlerServesFiles(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ path, ctype string }{
		{"/", "text/html"},
		{"/style.css", "text/css"},
		{"/app.js", "text/javascript"},
		{"/favicon.svg", "image/svg+xml"},
		{"/favicon.ico", "image/x-icon"},
		{"/vendor/hash-wasm-4.13.0/sha256.umd.min.js", "text/javascript"},
	} {
		rec := get(t, h, http.MethodGet, c.path, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if rec.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", c.path)
		}
		// Revalidated on every load, so a release never mixes new and
		// stale modules.
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", c.path, cc)
		}
		if rec.Header().Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", c.path)
		}
	}
	ico := get(t, h, http.MethodGet, "/favicon.ico", nil).Body.Bytes()
	if len(ico) < 6 || string(ico[:4]) != "\x00\x00\x01\x00" {
		t.Errorf("favicon.ico is not an icon file: % x", ico[:min(len(ico), 8)])
	}
	if rec := get(t, h, http.MethodGet, "/no-such-file.js", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /no-such-file.js: %d, want 404", rec.Code)
	}
}

// TestHandlerRevalidates checks that an unchanged file costs a 304 and that
// the ETag follows the content.
func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/app.js", nil)
	tag := first.Header().Get("ETag")
	if rec := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {tag}}); rec.Code != http.StatusNotModified {
		t.Errorf("GET /app.js If-None-Match %s: %d, want 304", tag, rec.Code)
	}
	if rec := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {`"stale"`}}); rec.Code != http.StatusOK {
		t.Errorf("GET /app.js with a stale ETag: %d, want 200", rec.Code)
	}
	if other := get(t, h, http.MethodGet, "/style.css", nil).Header().Get("ETag"); other == tag {
		t.Errorf("app.js and style.css share the ETag %s", tag)
	}
	// The page itself, asked for as / or by name.
	if a, b := get(t, h, http.MethodGet, "/", nil).Header().Get("ETag"), contentTags(mustSub(t))["index.html"]; a != b {
		t.Errorf("ETag of /: %s, want index.html's %s", a, b)
	}
}

// TestHandlerHeaders checks the security headers and the CSP on every kind
// of answer, and that only GET and HEAD are served.
func TestHandlerHeaders(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/app.js", "/favicon.ico", "/missing"} {
		rec := get(t, h, http.MethodGet, path, nil)
		hd := rec.Header()
		if hd.Get("Content-Security-Policy") != csp {
			t.Errorf("%s: CSP %q", path, hd.Get("Content-Security-Policy"))
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if hd.Get(k) != v {
				t.Errorf("%s: %s %q, want %q", path, k, hd.Get(k), v)
			}
		}
	}
	// The policy stays strict: nothing inline but the import map (by its
	// hash, TestImportMapHash), no JavaScript evaluated from strings,
	// nothing from elsewhere. Scripts (and so the store worker, which falls
	// back to script-src) come only from this origin; the one allowance is
	// compiling WebAssembly ('wasm-unsafe-eval', which permits no
	// JavaScript eval), for the vendored SHA-256.
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:", "worker-src", "'nonce-", "'strict-dynamic'"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP contains %q: %s", bad, csp)
		}
	}
	if want := "script-src 'self' 'wasm-unsafe-eval' '" + importMapHash + "';"; !strings.Contains(csp, want) || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP lost %s or default-src 'none': %s", want, csp)
	}
	if strings.Count(csp, "'sha") != 1 {
		t.Errorf("CSP allows another inline script than the import map: %s", csp)
	}
	rec := get(t, h, http.MethodPost, "/", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := get(t, h, http.MethodHead, "/favicon.svg", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD /favicon.svg: %d", rec.Code)
	}
}

func mustSub(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestImportMapHash: index.html's one inline script is its import map,
// whose SHA-256 is the hash web.go's CSP allows (a browser ignores a map
// whose hash the CSP lacks, and then every module that needs it fails to
// load), and each address the map gives is a folder of the vendored files.
func TestImportMapHash(t *testing.T) {
	page, err := fs.ReadFile(mustSub(t), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	var maps []string
	for _, m := range scriptRE.FindAllStringSubmatch(string(page), -1) {
		attrs, body := m[1], m[2]
		switch {
		case attrs == ` type="importmap"`:
			maps = append(maps, body)
		case !strings.Contains(attrs, " src=") || strings.TrimSpace(body) != "":
			t.Errorf("index.html has an inline script: <script%s>%s", attrs, body)
		}
	}
	if len(maps) != 1 {
		t.Fatalf("index.html has %d import maps, want 1", len(maps))
	}
	sum := sha256.Sum256([]byte(maps[0]))
	if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); got != importMapHash {
		t.Errorf("the import map's hash is %s; web.go's importMapHash is %s", got, importMapHash)
	}
	var im struct {
		Imports map[string]string `json:"imports"`
	}
	if err := json.Unmarshal([]byte(maps[0]), &im); err != nil || len(im.Imports) == 0 {
		t.Fatalf("import map %s: %v", maps[0], err)
	}
	for spec, addr := range im.Imports {
		dir, ok := strings.CutPrefix(addr, "./vendor/")
		if !ok || !strings.HasSuffix(spec, "/") || !strings.HasSuffix(dir, "/") {
			t.Errorf("import map: %q -> %q, want a prefix mapped to a folder under ./vendor/", spec, addr)
			continue
		}
		if st, err := fs.Stat(mustSub(t), "vendor/"+strings.TrimSuffix(dir, "/")); err != nil || !st.IsDir() {
			t.Errorf("import map: %q -> %q: no such folder (%v)", spec, addr, err)
		}
	}
}

// scriptRE matches a script element: its attributes and its text.
var scriptRE = regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)
