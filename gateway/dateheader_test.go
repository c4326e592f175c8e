package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The read answers carry the Date header the gateway sets from its own
// clock reading (net/http would set one otherwise): a valid HTTP date of
// the time the answer was made, after a blocking query's wait, not before.
func TestAnswersCarryTheCurrentDate(t *testing.T) {
	g := newLookupGateway(t, 3)
	srv := httptest.NewServer(g.h)
	defer srv.Close()
	date := func(target string) (time.Time, time.Time, time.Time) {
		t.Helper()
		before := time.Now().Truncate(time.Second)
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		after := time.Now()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d", target, resp.StatusCode)
		}
		if n := len(resp.Header.Values("Date")); n != 1 {
			t.Fatalf("GET %s: %d Date headers, want 1", target, n)
		}
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("GET %s: Date %q: %v", target, resp.Header.Get("Date"), err)
		}
		return before, d, after
	}
	for _, target := range []string{"/v1/services/web", "/v1/services/web?passing=true", "/v1/lookup/web"} {
		if before, d, after := date(target); d.Before(before) || d.After(after) {
			t.Errorf("GET %s: Date %v, want between %v and %v", target, d, before, after)
		}
	}
	// A blocking query that times out after 1.5s: dated when it answers.
	start := time.Now()
	_, d, after := date("/v1/services/web?index=999999&wait=1500ms")
	if min := start.Add(1500 * time.Millisecond).Truncate(time.Second); d.Before(min) || d.After(after) {
		t.Errorf("blocking query: Date %v, want between %v and %v", d, min, after)
	}
}
