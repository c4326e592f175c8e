package gateway

import (
	"net/http"
	"reflect"
	"strings"
)

// Errors of the HTTP layer. Go's net/http server answers some malformed
// requests itself, in plain text, before any handler runs, and nothing in
// http.Server lets a program change those answers (Go 1.26): a malformed
// request line or header, an invalid method token, a missing or bad Host
// header (400), a header over MaxHeaderBytes (431), an HTTP version other
// than 1.x (505), an unknown Transfer-Encoding (501), an Expect other than
// 100-continue (417, no body). httperrors_test.go pins these, so a Go that
// lets us answer them shows up there. Everything that reaches a handler,
// the ServeMux's own answers included, is JSON {"error": ...}: jsonMux
// below turns the mux's redirects (path cleaning, a missing trailing slash),
// 404, 405 and its 400 for a request target "*" into JSON. (OPTIONS * is
// answered by the server itself: 200 with an empty body, not an error.)

// jsonMux serves mux, answering in JSON where the mux itself would answer
// in text or HTML. Only requests the mux would not hand to a route (no
// pattern, or a redirect) take the slower path.
type jsonMux struct {
	mux *http.ServeMux
	// catchAll: mux has a "/" route answering JSON and no method patterns
	// (the gateway's own mux), so a clean path skips the lookup.
	catchAll bool
	// fast, when set, serves the hottest read routes of a clean path
	// without the mux's match (fastroutes.go).
	fast *fastRoutes
}

// redirectType is the type of the handler ServeMux returns for its
// redirects (a path to clean, a subtree without its trailing slash): it
// returns the pattern the new path would match with it, so the pattern
// alone does not tell a redirect from a route.
var redirectType = reflect.TypeOf(http.RedirectHandler("/", http.StatusTemporaryRedirect))

func (j jsonMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.RequestURI == "*" {
		// A method other than OPTIONS with target *: the mux answers 400
		// without a body.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "", "request target \"*\" is not supported; name a path such as /v1/services")
		return
	}
	if p := r.URL.Path; j.catchAll && r.Method != http.MethodConnect && p != "/metrics" && cleanPath(p) && !strings.HasPrefix(p, "/v1/proxy/") {
		// The mux hands every clean path to a route (there is a catch-all
		// "/" answering 404 in JSON); only an unclean path, a subtree
		// pattern without its trailing slash (/v1/proxy/S), CONNECT and
		// /metrics' methods need the lookup below.
		if j.fast.serve(w, r) {
			return
		}
		j.mux.ServeHTTP(w, r)
		return
	}
	h, pattern := j.mux.Handler(r)
	if pattern == "/metrics" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		methods(w, r, http.MethodGet)
		return
	}
	if pattern != "" && reflect.TypeOf(h) != redirectType {
		j.mux.ServeHTTP(w, r)
		return
	}
	// The mux's own answer: run it against a recorder for its status and
	// headers, then answer the same in JSON.
	rec := headerRecorder{h: http.Header{}}
	h.ServeHTTP(&rec, r)
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	loc, allow := rec.h.Get("Location"), rec.h.Get("Allow")
	msg := http.StatusText(code)
	switch {
	case loc != "":
		w.Header().Set("Location", loc)
		msg = "the path " + r.URL.Path + " is not canonical; repeat the request at " + loc
	case code == http.StatusNotFound:
		msg = "no such endpoint: " + r.URL.Path
	case code == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", allow)
		msg = "method " + r.Method + " not allowed; use " + allow
	}
	if code < 400 && loc == "" {
		// Not an answer we know how to translate: pass the mux's on.
		j.mux.ServeHTTP(w, r)
		return
	}
	writeError(w, code, "", msg)
}

// headerRecorder keeps a response's status and headers and drops its body.
type headerRecorder struct {
	h    http.Header
	code int
}

func (r *headerRecorder) Header() http.Header { return r.h }

func (r *headerRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *headerRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}

// cleanPath reports whether ServeMux would leave p as it is: it starts with
// "/" and has no empty, "." or ".." element (a trailing "/" is fine).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		// p[start:i] is the element that ends here.
		start := strings.LastIndexByte(p[:i], '/') + 1
		switch p[start:i] {
		case "":
			if i != len(p) {
				return false // "//"
			}
		case ".", "..":
			return false
		}
	}
	return true
}
