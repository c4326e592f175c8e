package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
)

// register PUTs an instance and returns the response.
func register(t *testing.T, a *Agent, svc, id, body string) response {
	t.Helper()
	return call(t, "PUT", fmt.Sprintf("%s/v1/services/%s/instances/%s", a.URL(), svc, id), body)
}

func wantEgressError(t *testing.T, r response, code int, field string) {
	t.Helper()
	r.want(t, code)
	if msg, _ := r.body["error"].(string); !strings.Contains(msg, "egress policy") {
		t.Fatalf("error %q does not name the egress policy", r.raw)
	}
	if field != "" && r.body["field"] != field {
		t.Fatalf("field %v, want %s; body %s", r.body["field"], field, r.raw)
	}
}

// TestEgressSSRFIntoStoreAndMetadata: registrations at the gateway's own
// store (miniredis, and a real redis-server), its own HTTP port and the
// cloud metadata address are refused with 403; a hostname that resolves to
// the store's port registers but the proxy refuses it with 502.
func TestEgressSSRFIntoStoreAndMetadata(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (*Agent, string) // agent, store host:port
	}{
		{"miniredis", func(t *testing.T) (*Agent, string) {
			a := startAgent(t, AgentConfig{})
			return a, a.mini.Addr()
		}},
		{"redis-server", func(t *testing.T) (*Agent, string) {
			srv := redistest.Start(t)
			a := startAgent(t, AgentConfig{RedisURL: srv.URL()})
			u, err := url.Parse(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			return a, u.Host
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, store := tc.start(t)
			host, port, _ := net.SplitHostPort(store)
			_, ownPort, _ := net.SplitHostPort(a.Addr())
			wantEgressError(t, register(t, a, "redis", "pwn", fmt.Sprintf(`{"address":%q,"port":%s}`, host, port)), 403, "address")
			wantEgressError(t, register(t, a, "meta", "m", `{"address":"169.254.169.254","port":80}`), 403, "address")
			wantEgressError(t, register(t, a, "meta", "m6", `{"address":"fd00:ec2::254","port":80}`), 403, "address")
			wantEgressError(t, register(t, a, "self", "s", fmt.Sprintf(`{"address":"127.0.0.1","port":%s}`, ownPort)), 403, "address")
			wantEgressError(t, register(t, a, "web", "w1", fmt.Sprintf(`{"address":"10.0.0.5","port":80,"check":{"tcp":%q}}`, store)), 403, "check.tcp")
			wantEgressError(t, register(t, a, "web", "w2", `{"address":"10.0.0.5","port":80,"check":{"http":"http://169.254.169.254/latest/meta-data/"}}`), 403, "check.http")
			// Nothing refused was written.
			for _, svc := range []string{"redis", "meta", "self", "web"} {
				if ids := instanceIDs(call(t, "GET", a.URL()+"/v1/services/"+svc, "")); len(ids) != 0 {
					t.Fatalf("%s has instances %v after refused registrations", svc, ids)
				}
			}
			// A hostname passes registration and is refused at dial time,
			// after resolution.
			register(t, a, "redis", "by-name", fmt.Sprintf(`{"address":"localhost","port":%s}`, port)).want(t, 200)
			r := call(t, "POST", a.URL()+"/v1/proxy/redis/x", "SET pwned 1\r\n")
			wantEgressError(t, r, 502, "")
			if strings.Contains(r.raw, "own listener or its store") == false {
				t.Fatalf("502 does not say which rule refused: %s", r.raw)
			}
			// Loopback backends stay reachable: this gateway listens on
			// loopback.
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			defer backend.Close()
			bport := backend.Listener.Addr().(*net.TCPAddr).Port
			register(t, a, "ok", "o1", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, bport)).want(t, 200)
			resp, err := http.Get(a.URL() + "/v1/proxy/ok/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("proxy to an allowed loopback backend: %d %s", resp.StatusCode, b)
			}
		})
	}
}

// countingBackend is an HTTP backend on 127.0.0.1 that counts accepted
// connections.
func countingBackend(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestEgressHostnameRefusedAtDial: with loopback denied, a backend
// registered by a hostname that resolves to loopback is never connected
// to: the proxy answers 502 naming the egress policy, and a TCP or HTTP
// check at it goes critical saying the egress policy refused it.
func TestEgressHostnameRefusedAtDial(t *testing.T) {
	a := startAgent(t, AgentConfig{EgressDeny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	backend, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") })
	port := backend.Listener.Addr().(*net.TCPAddr).Port

	wantEgressError(t, register(t, a, "web", "literal", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, port)), 403, "address")
	register(t, a, "web", "by-name", fmt.Sprintf(`{"address":"localhost","port":%d}`, port)).want(t, 200)
	for _, m := range []string{"GET", "POST"} {
		wantEgressError(t, call(t, m, a.URL()+"/v1/proxy/web/x", ""), 502, "")
	}
	register(t, a, "chk", "tcp", fmt.Sprintf(`{"address":"10.0.0.5","port":80,"check":{"tcp":"localhost:%d","interval":"1s"}}`, port)).want(t, 200)
	register(t, a, "chk", "http", fmt.Sprintf(`{"address":"10.0.0.5","port":80,"check":{"http":"http://localhost:%d/health","interval":"1s"}}`, port)).want(t, 200)
	for _, id := range []string{"tcp", "http"} {
		var out string
		waitFor(t, 5*time.Second, "the "+id+" check to report", func() bool {
			r := call(t, "GET", a.URL()+"/v1/services/chk/instances/"+id, "")
			out, _ = r.body["output"].(string)
			return out != ""
		})
		r := call(t, "GET", a.URL()+"/v1/services/chk/instances/"+id, "")
		if r.body["status"] != "critical" || !strings.HasSuffix(out, ": refused by egress policy") {
			t.Fatalf("%s check: status %v output %q, want critical refused by egress policy", id, r.body["status"], out)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the backend behind refused addresses accepted %d connections, want 0", n)
	}
	// The backend does count: reached directly, it sees a connection.
	resp, err := http.Get(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if conns.Load() != 1 {
		t.Fatalf("direct request: %d connections counted, want 1", conns.Load())
	}
}

// relay is a plain HTTP reverse proxy (not Meridian) in front of a
// gateway: every request it gets goes to /v1/proxy/loop/again on the
// gateway, so a "loop" instance registered at the relay leads back into
// the gateway's proxy. stripVia makes it drop the Via header, as a
// hostile hop would.
func relay(t *testing.T, gw *Agent, stripVia bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	target, _ := url.Parse(gw.URL())
	var hops atomic.Int32
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		hops.Add(1)
		pr.SetURL(target)
		pr.Out.URL.Path = "/v1/proxy/loop/again"
		if stripVia {
			pr.Out.Header.Del("Via")
		}
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv, &hops
}

// TestProxyLoop: a request that comes back to a Meridian proxy gets 508
// after one hop; when a hop strips Via, the in-flight cap still stops the
// chain after MaxInFlight hops with 503.
func TestProxyLoop(t *testing.T) {
	t.Run("via", func(t *testing.T) {
		a := startAgent(t, AgentConfig{})
		rl, hops := relay(t, a, false)
		register(t, a, "loop", "l1", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, rl.Listener.Addr().(*net.TCPAddr).Port)).want(t, 200)
		r := call(t, "GET", a.URL()+"/v1/proxy/loop/start", "").want(t, http.StatusLoopDetected)
		if msg, _ := r.body["error"].(string); !strings.Contains(msg, "loop") {
			t.Fatalf("508 body %s", r.raw)
		}
		if n := hops.Load(); n != 1 {
			t.Fatalf("the request went through the relay %d times, want 1", n)
		}
		// A request that says it passed a Meridian proxy is refused
		// outright; another proxy's Via entry is fine.
		req, _ := http.NewRequest("GET", a.URL()+"/v1/proxy/loop/x", nil)
		req.Header.Set("Via", "1.0 corp-proxy, 1.1 Meridian (eu-west)")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusLoopDetected || hops.Load() != 1 {
			t.Fatalf("Via naming meridian: %d after %d hops, want 508 and no hop", resp.StatusCode, hops.Load())
		}
	})
	t.Run("self by hostname", func(t *testing.T) {
		// The gateway's own port by name: refused at dial time, so the
		// request never comes back in.
		a := startAgent(t, AgentConfig{})
		_, own, _ := net.SplitHostPort(a.Addr())
		wantEgressError(t, register(t, a, "loop", "l0", `{"address":"127.0.0.1","port":`+own+`}`), 403, "address")
		register(t, a, "loop", "l1", `{"address":"localhost","port":`+own+`}`).want(t, 200)
		wantEgressError(t, call(t, "GET", a.URL()+"/v1/proxy/loop/v1/proxy/loop/x", ""), 502, "")
	})
	t.Run("via stripped", func(t *testing.T) {
		const limit = 4
		a := startAgent(t, AgentConfig{Proxy: ProxyConfig{MaxInFlight: limit}})
		rl, hops := relay(t, a, true)
		register(t, a, "loop", "l1", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, rl.Listener.Addr().(*net.TCPAddr).Port)).want(t, 200)
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(a.URL() + "/v1/proxy/loop/start")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a Via-stripping loop ended with %d, want 503 from the in-flight cap", resp.StatusCode)
		}
		if n := hops.Load(); n != limit {
			t.Fatalf("the chain made %d hops, want exactly %d (the in-flight cap)", n, limit)
		}
	})
}

// TestProxyMethodsAndHeaders: only standard methods are forwarded; the
// backend never sees X-Meridian-* headers (the token included) and sees
// Via with this proxy appended.
func TestProxyMethodsAndHeaders(t *testing.T) {
	// ACLs on allow, with a known token: an unknown X-Meridian-Token is
	// refused (401) before anything is proxied.
	a := startAgent(t, AgentConfig{ACL: ACLConfig{InitialToken: "s3cr3t-token"}})
	var mu sync.Mutex
	var seen []http.Header
	backend, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, r.Method)
	})
	register(t, a, "echo", "e1", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, backend.Listener.Addr().(*net.TCPAddr).Port)).want(t, 200)

	for _, m := range []string{"PROPFIND", "TRACE", "CONNECTX", "SET"} {
		r := call(t, m, a.URL()+"/v1/proxy/echo/x", "").want(t, 405)
		if allow := r.header.Get("Allow"); allow != "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" {
			t.Fatalf("%s: Allow %q", m, allow)
		}
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		req, _ := http.NewRequest(m, a.URL()+"/v1/proxy/echo/x", nil)
		req.Header.Set("X-Meridian-Token", "s3cr3t-token")
		req.Header.Set("X-Meridian-LB", "round_robin")
		req.Header["x-meridian-lowercase"] = []string{"1"} // not canonical
		req.Header.Set("X-Meridian-Forwarded", "us-east")
		req.Header.Set("Authorization", "Bearer backend-credential")
		req.Header.Set("Via", "1.0 corp-proxy")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", m, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 7 {
		t.Fatalf("backend saw %d requests, want 7 (none of the refused methods)", len(seen))
	}
	for _, h := range seen {
		for k, v := range h {
			if strings.HasPrefix(strings.ToLower(k), "x-meridian-") || strings.Contains(strings.Join(v, ","), "s3cr3t") {
				t.Fatalf("backend saw %s: %v", k, v)
			}
		}
		if via := h.Get("Via"); via != "1.0 corp-proxy, 1.1 meridian" {
			t.Fatalf("backend saw Via %q, want %q", via, "1.0 corp-proxy, 1.1 meridian")
		}
		if h.Get("Authorization") != "Bearer backend-credential" {
			t.Fatalf("Authorization not passed to the backend: %q", h.Get("Authorization"))
		}
	}
}

// TestProxyInFlightCap: with MaxInFlight requests held by a slow backend,
// one more is answered 503 with Retry-After at once.
func TestProxyInFlightCap(t *testing.T) {
	const limit = 3
	a := startAgent(t, AgentConfig{Proxy: ProxyConfig{MaxInFlight: limit}})
	release := make(chan struct{})
	var held atomic.Int32
	backend, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		<-release
		io.WriteString(w, "done")
	})
	register(t, a, "slow", "s1", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, backend.Listener.Addr().(*net.TCPAddr).Port)).want(t, 200)
	var wg sync.WaitGroup
	codes := make(chan int, limit)
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(a.URL() + "/v1/proxy/slow/x")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	waitFor(t, 5*time.Second, "the backend to hold the requests", func() bool { return held.Load() == limit })
	start := time.Now()
	r := call(t, "GET", a.URL()+"/v1/proxy/slow/x", "").want(t, 503)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the refusal took %s", took)
	}
	if r.header.Get("Retry-After") == "" || !strings.Contains(r.body["error"].(string), "in flight") {
		t.Fatalf("503 without Retry-After or reason: %v %s", r.header, r.raw)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a held request ended with %d", c)
		}
	}
	// The slots are given back.
	for range limit + 1 {
		resp, err := http.Get(a.URL() + "/v1/proxy/slow/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after the held requests ended: %d", resp.StatusCode)
		}
	}
}

// TestProxyAttemptsBounded: one request tries at most 1+MaxRetries
// endpoints (MaxRetries capped at maxProxyRetries), however many fail.
func TestProxyAttemptsBounded(t *testing.T) {
	for _, tc := range []struct {
		retries, want int
	}{{0, 3}, {100, 1 + maxProxyRetries}} {
		a := startAgent(t, AgentConfig{Proxy: ProxyConfig{MaxRetries: tc.retries, Consecutive: 1000}})
		var accepts atomic.Int32
		for i := range 12 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepts.Add(1)
					c.Close() // a connection error: retried on another endpoint
				}
			}()
			register(t, a, "flaky", fmt.Sprint("f", i), fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, ln.Addr().(*net.TCPAddr).Port)).want(t, 200)
		}
		call(t, "GET", a.URL()+"/v1/proxy/flaky/x", "").want(t, 502)
		time.Sleep(50 * time.Millisecond) // let the accept loops count
		if n := int(accepts.Load()); n != tc.want {
			t.Errorf("MaxRetries %d: %d endpoints tried, want %d", tc.retries, n, tc.want)
		}
	}
}
