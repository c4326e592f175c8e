package gateway

import (
	"net/http"
	"strings"
)

// fastRoutes serves the hottest read routes without the ServeMux's match
// (about 2.5% of the gateway's CPU per GET /v1/services/web under load):
// a request whose clean path is one of these patterns' literal prefix
// followed by one segment goes straight to the route's handler, with the
// pattern and path value the mux would have set. The mux would hand it to
// the same handler: only single-wildcard patterns are taken, and only when
// no other pattern of the mux starts with the same prefix and a literal
// (which would win over the wildcard).
type fastRoutes struct {
	routes []fastRoute
	// patterns are every pattern registered through Server's route, to
	// check the above when the table is built.
	patterns []string
}

type fastRoute struct {
	prefix  string // "/v1/services/"
	name    string // "service"
	pattern string // "/v1/services/{service}"
	h       http.HandlerFunc
}

// pathValue is r.PathValue(name), also for a request a fast route took
// (its only wildcard, name, is the path's last segment). Handlers of the
// fast routes read their wildcard through it.
func pathValue(r *http.Request, name string) string {
	if v := r.PathValue(name); v != "" || !fastPatterns[r.Pattern] || r.Pattern[strings.LastIndexByte(r.Pattern, '{')+1:] != name+"}" {
		return v
	}
	return r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
}

// fastPatterns are the routes taken: the read answers.
var fastPatterns = map[string]bool{
	"/v1/services/{service}": true,
	"/v1/lookup/{service}":   true,
	"/v1/pick/{service}":     true,
}

// add records a route registered on the mux, keeping it when it is one
// of fastPatterns.
func (f *fastRoutes) add(pattern string, h http.HandlerFunc) {
	f.patterns = append(f.patterns, pattern)
	if !fastPatterns[pattern] {
		return
	}
	i := strings.LastIndexByte(pattern, '{')
	f.routes = append(f.routes, fastRoute{prefix: pattern[:i], name: pattern[i+1 : len(pattern)-1], pattern: pattern, h: h})
}

// seal drops the routes another pattern could take a request from.
func (f *fastRoutes) seal() {
	var keep []fastRoute
	for _, r := range f.routes {
		ok := true
		for _, p := range f.patterns {
			if rest, found := strings.CutPrefix(p, r.prefix); found && p != r.pattern && !strings.HasPrefix(rest, "{") {
				ok = false
			}
		}
		if ok {
			keep = append(keep, r)
		}
	}
	f.routes, f.patterns = keep, nil
}

// serve serves r if it is for one of the routes, a clean path (the caller
// checked) of a GET or HEAD.
func (f *fastRoutes) serve(w http.ResponseWriter, r *http.Request) bool {
	if f == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.URL.RawPath != "" {
		// Escapes the path does not show as they are (RawPath) are
		// unescaped per segment by the mux: leave them to it.
		return false
	}
	p := r.URL.Path
	for i := range f.routes {
		rt := &f.routes[i]
		if rest, ok := strings.CutPrefix(p, rt.prefix); ok && rest != "" && strings.IndexByte(rest, '/') < 0 {
			// The path value is read through pathValue: SetPathValue
			// on a request the mux did not route would allocate a map
			// (about 300 bytes a request, which the GC pays for).
			r.Pattern = rt.pattern
			rt.h(w, r)
			return true
		}
	}
	return false
}
