package gateway

import (
	"net/http"
	"strconv"
	"strings"
)

// proxyMethods are the methods /v1/proxy forwards; others get 405.
var proxyMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// viaName is the received-by name a Meridian proxy puts in Via.
const viaName = "meridian"

// admit lets a request into the proxy, or answers it: 405 for a method
// that is not forwarded, 508 for a request that already passed a Meridian
// proxy (a loop, or a chain through one), 503 when MaxInFlight requests
// are already being proxied. When it returns true the caller holds an
// in-flight slot and must release it (<-p.inFlight).
func (p *proxy) admit(w http.ResponseWriter, r *http.Request) bool {
	ok := false
	for _, m := range proxyMethods {
		ok = ok || r.Method == m
	}
	if !ok {
		allow := strings.Join(proxyMethods, ", ")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "", "method "+strconv.Quote(r.Method)+" is not proxied; use "+allow)
		return false
	}
	if passedMeridian(r.Header) {
		writeError(w, http.StatusLoopDetected, "", "proxy loop: this request already passed a Meridian gateway's proxy (Via: 1.1 "+viaName+"); a proxied request is never proxied again")
		return false
	}
	select {
	case p.inFlight <- struct{}{}:
		return true
	default:
		writeError(w, http.StatusServiceUnavailable, "", "too many proxied requests in flight on this gateway (at most "+strconv.Itoa(cap(p.inFlight))+"); retry later")
		return false
	}
}

// passedMeridian: a Via entry names a Meridian proxy ("1.1 meridian").
func passedMeridian(h http.Header) bool {
	for _, v := range h.Values("Via") {
		for _, entry := range strings.Split(v, ",") {
			f := strings.Fields(entry)
			if len(f) >= 2 && strings.EqualFold(f[1], viaName) {
				return true
			}
		}
	}
	return false
}

// addVia appends this proxy to the request's Via (RFC 9110 7.6.3).
func addVia(h http.Header) {
	prev := h.Values("Via")
	if len(prev) == 0 {
		h.Set("Via", "1.1 "+viaName)
		return
	}
	h.Set("Via", strings.Join(prev, ", ")+", 1.1 "+viaName)
}

// stripControlHeaders drops the X-Meridian-* headers (routing knobs, the
// ACL token in X-Meridian-Token, internal markers): they are for the
// gateway, never for a backend. Authorization is the backend's and passes
// through; the proxy's caller sends its Meridian token as
// X-Meridian-Token. Hop-by-hop headers are dropped by httputil.
func stripControlHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len("X-Meridian-") && strings.EqualFold(k[:len("X-Meridian-")], "X-Meridian-") {
			delete(h, k)
		}
	}
}
