package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

// all: embeds the vendored library's _md.js and _u64.js too (a plain
// pattern skips names that start with _ or .).
//
//go:embed all:static
var static embed.FS

// csp allows only the page's own scripts, styles and connections: no inline
// script, no third party, no framing. script-src 'self' also covers the
// module worker that stores received files (worker-src falls back to
// script-src). 'wasm-unsafe-eval' lets that worker compile the vendored
// WebAssembly SHA-256 (hash-wasm); it allows no JavaScript eval. blob: is
// for received-file downloads and data: for the QR code image.
//
// The one inline element is index.html's import map, allowed by its hash
// (importMapHash; TestImportMapHash holds the two equal). The vendored
// @noble/curves imports @noble/hashes by bare specifier, which a browser
// resolves only through an import map, and Chromium takes import maps
// inline only (no src); rewriting the vendored files instead would break
// their pinned hashes. The map applies to the page's modules (cpace.js runs
// on the page); the store worker imports nothing of noble, and a worker
// would not see the page's map.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' '" + importMapHash + "'; style-src 'self'; " +
	"img-src 'self' data: blob:; connect-src 'self'; media-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// importMapHash is the CSP hash source of the import map's text in
// index.html.
const importMapHash = "sha256-vMVfCt21WntfegE0/MmKUYVwbYcgtgqVJ+rtcFUIqA8="

// Handler serves the browser client.
//
// Every file is served with Cache-Control: no-cache and an ETag (a hash of
// its content): a browser revalidates each load, so a new release's modules
// are never mixed with stale cached ones, and an unchanged file costs a 304.
// /favicon.ico, which browsers fetch by themselves, is served from
// favicon.ico.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The embedded tree is fixed at build time; this cannot happen.
		return http.NotFoundHandler()
	}
	etags := contentTags(sub)
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" || strings.HasSuffix(name, "/") {
			name += "index.html"
		}
		if tag, ok := etags[name]; ok {
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", tag)
			if strings.HasSuffix(name, ".ico") {
				// Not in Go's built-in MIME table; /etc/mime.types varies.
				h.Set("Content-Type", "image/x-icon")
			}
		}
		files.ServeHTTP(w, r)
	})
}

// contentTags returns a strong ETag for every embedded file, by its path.
func contentTags(fsys fs.FS) map[string]string {
	tags := make(map[string]string)
	fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(data)
		tags[path] = `"` + hex.EncodeToString(sum[:16]) + `"`
		return nil
	})
	return tags
}
