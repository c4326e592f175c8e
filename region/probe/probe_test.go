package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region/probe"

	"github.com/meridian-sd/meridian/region"
)

func TestProbeHTTP(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/created":
			w.WriteHeader(http.StatusCreated)
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/fail":
			http.Error(w, strings.Repeat("database down ", 100), http.StatusInternalServerError)
		case "/unavailable":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/here":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client := probe.NewProbeClient()
	tests := []struct {
		path       string
		timeout    time.Duration
		wantStatus region.Status
		wantOutput string // exact, or a prefix when it ends in "..."
	}{
		{"/ok", time.Second, region.StatusPassing, "HTTP GET %s: 200 OK"},
		{"/created", time.Second, region.StatusPassing, "HTTP GET %s: 201 Created"},
		{"/busy", time.Second, region.StatusWarning, "HTTP GET %s: 429 Too Many Requests"},
		{"/fail", time.Second, region.StatusCritical, "HTTP GET %s: 500 Internal Server Error"},
		{"/unavailable", time.Second, region.StatusCritical, "HTTP GET %s: 503 Service Unavailable"},
		{"/missing", time.Second, region.StatusCritical, "HTTP GET %s: 404 Not Found"},
		{"/slow", 100 * time.Millisecond, region.StatusCritical, "HTTP GET %s: timed out after 100ms"},
		{"/here", time.Second, region.StatusPassing, "HTTP GET %s: 200 OK"},
		{"/elsewhere", time.Second, region.StatusCritical, "HTTP GET %s: 302 Found"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			target := srv.URL + tc.path
			start := time.Now()
			got := probe.Probe(context.Background(), client, "http", target, tc.timeout)
			if took := time.Since(start); took > tc.timeout+2*time.Second {
				t.Errorf("took %s with a %s timeout", took, tc.timeout)
			}
			want := region.ProbeResult{Status: tc.wantStatus, Output: strings.ReplaceAll(tc.wantOutput, "%s", target)}
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range agents {
		if a != probe.ProbeUserAgent {
			t.Errorf("User-Agent got %q, want %q", a, probe.ProbeUserAgent)
		}
	}
}

func TestProbeHTTPNilClientAndBadTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if got := probe.Probe(context.Background(), nil, "http", srv.URL, time.Second); got.Status != region.StatusPassing {
		t.Errorf("nil client: got %+v, want passing", got)
	}
	got := probe.Probe(context.Background(), nil, "http", "http://[::1", time.Second)
	if got.Status != region.StatusCritical || !strings.HasPrefix(got.Output, "HTTP GET http://[::1: ") {
		t.Errorf("bad URL: got %+v, want critical naming the URL", got)
	}
}

func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name       string
		kind       string
		target     string
		wantStatus region.Status
		wantPrefix string
	}{
		{"listening", "tcp", ln.Addr().String(), region.StatusPassing, "TCP connect " + ln.Addr().String() + ": ok"},
		{"closed", "tcp", closedAddr, region.StatusCritical, "TCP connect " + closedAddr + ": "},
		{"unknown kind", "udp", closedAddr, region.StatusCritical, `unknown check kind "udp"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := probe.Probe(context.Background(), nil, tc.kind, tc.target, time.Second)
			if got.Status != tc.wantStatus || !strings.HasPrefix(got.Output, tc.wantPrefix) {
				t.Errorf("got  %+v\nwant status %s, output starting %q", got, tc.wantStatus, tc.wantPrefix)
			}
			t.Logf("output: %s", got.Output)
		})
	}
}
