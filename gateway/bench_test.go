package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// benchNow is the fixed clock of the benchmarks, so every answer is the same
// bytes (age_ms and the registration times do not move).
var benchNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// newBenchServer returns the handler of a gateway over an in-memory store
// with three instances of "web" registered through the handler itself.
func newBenchServer(b *testing.B) http.Handler {
	b.Helper()
	return newBenchServerWith(b, Telemetry{})
}

// newBenchServerWith is newBenchServer with the given telemetry.
func newBenchServerWith(b *testing.B, tel Telemetry) http.Handler {
	b.Helper()
	return newBenchServerConfig(b, Config{Telemetry: tel}, "")
}

// newBenchServerConfig builds the bench gateway from cfg (its store, cache,
// health runner, clock and logger filled in) and registers the three web
// instances, sending token when it is not empty.
func newBenchServerConfig(b *testing.B, cfg Config, token string) http.Handler {
	b.Helper()
	now := func() time.Time { return benchNow }
	log := slog.New(slog.DiscardHandler)
	store := region.NewMemStore(0)
	cache := region.NewCache(store, region.CacheOptions{Logger: log, Now: now})
	if err := cache.Sync(context.Background()); err != nil {
		b.Fatalf("loading the cache: %v", err)
	}
	cfg.Region, cfg.Store, cfg.Cache, cfg.Logger, cfg.Now = "us-east", store, cache, log, now
	cfg.Health = region.NewHealthRunner(store, cache, region.HealthRunnerOptions{Logger: log, Now: now})
	h := New(cfg).Handler()
	for i, tags := range []string{`["v1"]`, `["v2"]`, `["v2","canary"]`} {
		id := "web-" + strconv.Itoa(i+1)
		body := `{"address":"10.0.0.` + strconv.Itoa(5+i) + `","port":8080,"zone":"a","tags":` + tags + `}`
		req := httptest.NewRequest(http.MethodPut, "/v1/services/web/instances/"+id, strings.NewReader(body))
		if token != "" {
			req.Header.Set(TokenHeader, token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("registering %s: got HTTP %d, want 200; body %s", id, rec.Code, rec.Body)
		}
	}
	return h
}

// get answers one GET of target from h, failing the benchmark unless it is
// a 200.
func get(b *testing.B, h http.Handler, target string) []byte {
	b.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: got HTTP %d, want 200; body %s", target, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// benchGet runs GET target against h serially and in parallel. The request
// is built once per goroutine (ServeMux writes the matched pattern into it,
// so goroutines must not share one); the recorder is new each time, as a
// server's response writer would be.
func benchGet(b *testing.B, h http.Handler, target string, wantLen int) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.Len() != wantLen {
				b.Fatalf("GET %s: got HTTP %d with %d bytes, want 200 with %d", target, rec.Code, rec.Body.Len(), wantLen)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for pb.Next() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Body.Len() != wantLen {
					b.Errorf("GET %s: got HTTP %d with %d bytes, want 200 with %d", target, rec.Code, rec.Body.Len(), wantLen)
					return
				}
			}
		})
	})
}

// BenchmarkLookup measures GET /v1/services/web through the gateway's whole
// handler: mux, metrics, query parsing, the cache's read lock, JSON.
func BenchmarkLookup(b *testing.B) {
	h := newBenchServer(b)
	const target = "/v1/services/web"
	body := get(b, h, target)
	if got := bytes.Count(body, []byte(`"id":`)); got != 3 {
		b.Fatalf("GET %s: %d instances, want 3; body %s", target, got, body)
	}
	benchGet(b, h, target, len(body))
}

// BenchmarkLookupPassingFilter is BenchmarkLookup with the filters a
// load balancer would use.
func BenchmarkLookupPassingFilter(b *testing.B) {
	h := newBenchServer(b)
	const target = "/v1/services/web?passing=true&tag=v2"
	body := get(b, h, target)
	if got := bytes.Count(body, []byte(`"id":`)); got != 2 {
		b.Fatalf("GET %s: %d instances, want 2 (web-2, web-3); body %s", target, got, body)
	}
	benchGet(b, h, target, len(body))
}

// BenchmarkTrivialHandler serves the bytes BenchmarkLookup answers from a
// handler that does nothing else: the floor the gateway is compared with.
func BenchmarkTrivialHandler(b *testing.B) {
	const target = "/v1/services/web"
	body := get(b, newBenchServer(b), target)
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
	benchGet(b, h, target, len(body))
}
