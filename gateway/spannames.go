package gateway

import "net/http"

// spanNames are a route's server span names, "METHOD pattern" (e.g. "GET
// /v1/lookup/{service}"), built once per method rather than concatenated
// on every traced request.
type spanNames struct {
	pattern string
	names   map[string]string // by spanMethod
}

func newSpanNames(pattern string) spanNames {
	n := spanNames{pattern: pattern, names: map[string]string{}}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "HTTP"} {
		n.names[m] = m + " " + pattern
	}
	return n
}

// of returns the span name of a request with method.
func (n spanNames) of(method string) string {
	return n.names[spanMethod(method)]
}
