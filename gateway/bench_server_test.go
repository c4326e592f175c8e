package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/meridian-sd/meridian/region"
)

// BenchmarkLookupServer measures read requests through a real HTTP server
// on loopback, set up as StartAgent sets up the gateway's (connection
// limits, read and write timeouts), next to "trivial": a server set up as
// internal/benchtarget serving the same bytes. One keep-alive connection
// sends one request at a time, so each op is one request's whole cost to
// the server (parsing, handler, response headers, the write) plus a small
// fixed cost of the client. Its CPU per op (e.g. instructions under
// `valgrind --tool=cachegrind`, which does not move with the machine's
// load as ns/op does) is what the pinned wrk comparison of scripts/bench.sh
// measures as a throughput ratio.
func BenchmarkLookupServer(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	store := region.NewMemStore(0)
	now := func() time.Time { return benchNow }
	cache := region.NewCache(store, region.CacheOptions{Logger: log, Now: now})
	if err := cache.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	// Traces off, as the agent runs without an exporter (a no-op provider).
	s := New(Config{Region: "us-east", Store: store, Cache: cache, Logger: log, Now: now,
		Telemetry: Telemetry{TracerProvider: tracenoop.NewTracerProvider()},
		Health:    region.NewHealthRunner(store, cache, region.HealthRunnerOptions{Logger: log, Now: now})})
	h := s.Handler()
	for i, tags := range []string{`["v1"]`, `["v2"]`, `["v2","canary"]`} {
		id := "web-" + strconv.Itoa(i+1)
		body := `{"address":"10.0.0.` + strconv.Itoa(5+i) + `","port":8080,"zone":"a","tags":` + tags + `}`
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/v1/services/web/instances/"+id, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("registering %s: HTTP %d; %s", id, rec.Code, rec.Body)
		}
	}
	lim := s.cfg.Limits
	gw := serve(b, s.limitListener(listen(b)), &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ReadTimeout: lim.ReadTimeout, WriteTimeout: lim.WriteTimeout})

	for _, target := range []string{"/v1/services/web", "/v1/services/web?passing=true", "/v1/services/web?region=us-east", "/v1/lookup/web"} {
		body := get(b, h, target)
		length := strconv.Itoa(len(body))
		trivial := serve(b, listen(b), &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", length)
			w.Write(body)
		}), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute})
		for _, srv := range []struct{ name, addr string }{{"gateway", gw}, {"trivial", trivial}} {
			b.Run(srv.name+target, func(b *testing.B) {
				b.ReportAllocs()
				c := dialKeepAlive(b, srv.addr, target)
				for b.Loop() {
					if n := c.roundTrip(b); n != len(body) {
						b.Fatalf("GET %s: %d bytes, want %d", target, n, len(body))
					}
				}
			})
		}
	}
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// serve runs srv on ln until the benchmark ends and returns its address.
func serve(b *testing.B, ln net.Listener, srv *http.Server) string {
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// keepAliveClient sends one GET at a time on one connection and reads the
// answer's body by its Content-Length: a client that costs little next to
// the server it measures.
type keepAliveClient struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

func dialKeepAlive(b *testing.B, addr, target string) *keepAliveClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &keepAliveClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10),
		req: []byte("GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: bench\r\n\r\n"), body: make([]byte, 1<<20)}
}

// roundTrip sends the request and returns the length of the 200 answer's
// body.
func (c *keepAliveClient) roundTrip(b *testing.B) int {
	if _, err := c.conn.Write(c.req); err != nil {
		b.Fatal(err)
	}
	length := -1
	for first := true; ; first = false {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			b.Fatalf("status line %q", line)
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 || length > len(c.body) {
		b.Fatalf("Content-Length %d", length)
	}
	if _, err := io.ReadFull(c.r, c.body[:length]); err != nil {
		b.Fatal(err)
	}
	return length
}
