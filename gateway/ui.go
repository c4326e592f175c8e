package gateway

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// The status page: one HTML page, a script and a style sheet, embedded in
// the binary (no build step, nothing fetched from elsewhere, works
// offline). The page holds no data: it reads the JSON API with the token
// the user types (kept in the browser's sessionStorage, sent as
// X-Meridian-Token), so the API's ACL rules decide what it shows.
//
//go:embed ui/index.html ui/ui.js ui/ui.css ui/favicon.svg
var uiFiles embed.FS

// uiCSP is the status page's Content-Security-Policy: only this gateway's
// own script, style, images and API; no inline script or style, no
// frames, no forms posting elsewhere, and Trusted Types required, so
// that an HTML sink (innerHTML and the like) cannot even be used by the
// page's script.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

type uiAsset struct {
	body        []byte
	contentType string
	etag        string
}

// uiAssets maps a path under /ui/ to its file; "" is the page.
var uiAssets = func() map[string]uiAsset {
	out := map[string]uiAsset{}
	for name, ct := range map[string]string{
		"index.html":  "text/html; charset=utf-8",
		"ui.js":       "text/javascript; charset=utf-8",
		"ui.css":      "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		b, err := uiFiles.ReadFile("ui/" + name)
		if err != nil {
			panic("gateway: embedded status page file missing: " + err.Error())
		}
		sum := sha256.Sum256(b)
		out[name] = uiAsset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	out[""] = out["index.html"]
	return out
}()

// uiRoutes adds the status page: GET / and /ui/ (the page), /ui/FILE.
// They are open: the page and its files hold no data.
func (s *Server) uiRoutes(route func(pattern, name string, acc access, h http.HandlerFunc)) {
	route("/{$}", "ui", openRoute, s.handleUI)
	route("/ui/", "ui", openRoute, s.handleUI)
}

func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if r.URL.Path == "/" {
		name = ""
	}
	a, ok := uiAssets[name]
	if !ok {
		writeError(w, http.StatusNotFound, "", "no such file of the status page: "+r.URL.Path)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(a.body)
	}
}
