package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// The fast routes answer exactly as the mux would: same status, headers
// (Date aside) and body, for the routes they take and for paths they must
// leave to the mux (escapes, more segments, a trailing slash, other
// methods).
func TestFastRoutesAnswerAsTheMux(t *testing.T) {
	g := newLookupGateway(t, 3)
	s := New(Config{Region: "us-east", Store: g.store, Cache: g.cache, Logger: slog.New(slog.DiscardHandler), Now: g.clock})
	if got := len(s.fast.routes); got != len(fastPatterns) {
		t.Fatalf("%d fast routes, want %d", got, len(fastPatterns))
	}
	viaMux := s.withLimits(jsonMux{mux: s.mux, catchAll: true})
	for _, q := range []struct{ method, target string }{
		{"GET", "/v1/services/web"},
		{"HEAD", "/v1/services/web"},
		{"GET", "/v1/services/web?passing=true&tag=v2"},
		{"GET", "/v1/services/nosuch"},
		{"GET", "/v1/services/we%20b"},
		{"GET", "/v1/services/w%65b"},
		{"GET", "/v1/services/we%2Fb"},
		{"GET", "/v1/services/web/"},
		{"GET", "/v1/services/"},
		{"GET", "/v1/services/web/instances/web-0001"},
		{"POST", "/v1/services/web"},
		{"GET", "/v1/lookup/web"},
		{"GET", "/v1/lookup/web?limit=-1"},
		{"GET", "/v1/pick/web?lb=hash&key=k"},
		{"GET", "/v1/pick/"},
	} {
		answer := func(h http.Handler) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(q.method, q.target, nil))
			return rec
		}
		got, want := answer(s.Handler()), answer(viaMux)
		if got.Code != want.Code || got.Body.String() != want.Body.String() {
			t.Errorf("%s %s: HTTP %d %q, the mux answers HTTP %d %q", q.method, q.target, got.Code, got.Body, want.Code, want.Body)
		}
		gh, wh := got.Header().Clone(), want.Header().Clone()
		gh.Del("Date")
		wh.Del("Date")
		for k := range wh {
			if !slices.Equal(gh[k], wh[k]) {
				t.Errorf("%s %s: header %s %q, the mux's %q", q.method, q.target, k, gh[k], wh[k])
			}
		}
		if len(gh) != len(wh) {
			t.Errorf("%s %s: headers %v, the mux's %v", q.method, q.target, gh, wh)
		}
	}
}

// A route another pattern could take requests from (a literal segment
// after its prefix wins over the wildcard in the mux) is not taken.
func TestFastRoutesLeaveConflictsToTheMux(t *testing.T) {
	h := func(http.ResponseWriter, *http.Request) {}
	var f fastRoutes
	f.add("/v1/services/{service}", h)
	f.add("/v1/services/{service}/instances/{id}", h)
	f.add("/v1/lookup/{service}", h)
	f.add("/v1/lookup/special", h)
	f.seal()
	if len(f.routes) != 1 || f.routes[0].pattern != "/v1/services/{service}" || f.routes[0].name != "service" {
		t.Errorf("routes %+v, want only /v1/services/{service}", f.routes)
	}
}
