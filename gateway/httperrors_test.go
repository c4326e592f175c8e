package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawExchange sends req as bytes on a new TCP connection to addr and reads
// one response.
func rawExchange(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Written from a goroutine: the server may answer (and hang up)
	// before it has read a big request.
	go io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		// A reset after the answer is expected when the server hangs up
		// on a request it did not read to the end.
		t.Fatalf("reading the body of the answer to %.60q: %v", req, err)
	}
	return resp, string(b)
}

// TestHTTPLayerErrorsAreJSON: what reaches a handler or the mux answers
// JSON {"error"}, the mux's own redirects, 404 and 400 included; over real
// HTTP with raw requests, as a hostile client would send them.
func TestHTTPLayerErrorsAreJSON(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	addr := a.Addr()
	cases := []struct {
		name, req string
		code      int
		header    map[string]string // headers the answer must carry
		inError   string            // substring of the error message
	}{
		{"path cleaning redirect", "GET //v1//services HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusTemporaryRedirect, map[string]string{"Location": "/v1/services"}, "not canonical"},
		{"dot segments redirect", "GET /v1/services/../health HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusTemporaryRedirect, map[string]string{"Location": "/v1/health"}, "not canonical"},
		{"redirect of a write", "PUT /v1//services/web/instances/w1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
			http.StatusTemporaryRedirect, map[string]string{"Location": "/v1/services/web/instances/w1"}, "not canonical"},
		{"subtree without trailing slash", "GET /v1/proxy/web HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusTemporaryRedirect, map[string]string{"Location": "/v1/proxy/web/"}, "not canonical"},
		{"unknown method on a route", "FOO /v1/services HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusMethodNotAllowed, map[string]string{"Allow": "GET"}, "method FOO not allowed"},
		{"unknown method on an instance", "FOO /v1/services/web/instances/w1 HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusMethodNotAllowed, map[string]string{"Allow": "GET, PUT, DELETE"}, "method FOO not allowed"},
		{"unknown method on /metrics", "FOO /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusMethodNotAllowed, map[string]string{"Allow": "GET"}, "method FOO not allowed"},
		{"target * with GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusBadRequest, nil, "request target"},
		{"unknown path", "GET /v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n",
			http.StatusNotFound, nil, "no such endpoint: /v2/nothing"},
		{"HTTP/1.0 unknown path", "GET /nope HTTP/1.0\r\n\r\n",
			http.StatusNotFound, nil, "no such endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, tc.req)
			if resp.StatusCode != tc.code {
				t.Fatalf("status: got %d, want %d; body %q", resp.StatusCode, tc.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json; body %q", ct, body)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("body is not JSON {\"error\"}: %q (%v)", body, err)
			}
			if !strings.Contains(e.Error, tc.inError) {
				t.Errorf("error: got %q, want it to contain %q", e.Error, tc.inError)
			}
			for k, v := range tc.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s: got %q, want %q", k, got, v)
				}
			}
		})
	}
	// The redirect still works for a client that follows it.
	resp, err := http.Get("http://" + addr + "//v1//health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/v1/health" {
		t.Errorf("following the redirect of //v1//health: got %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
}

// TestHTTPLayerErrorsGoAnswers pins the answers Go's net/http server writes
// itself, in plain text, before any handler runs: http.Server has no hook
// to change them (Go 1.26). The README's error section lists them. When a
// Go release lets us answer in JSON, this test fails: then make them JSON
// and update the README.
func TestHTTPLayerErrorsGoAnswers(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	addr := a.Addr()
	huge := "GET /v1/services HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes+8192) + "\r\n\r\n"
	cases := []struct {
		name, req string
		code      int
		body      string // exact body; Content-Type text/plain unless empty
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "400 Bad Request"},
		{"request line with too many parts", "GET / / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
		{"invalid method token", "G(T /v1/services HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
		{"unsupported HTTP version", "GET /v1/services HTTP/3.0\r\nHost: x\r\n\r\n", 505,
			"505 HTTP Version Not Supported: unsupported protocol version"},
		{"missing Host", "GET /v1/services HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"},
		{"malformed header line", "GET /v1/services HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "400 Bad Request"},
		{"header too large", huge, 431, "431 Request Header Fields Too Large"},
		{"unknown transfer encoding", "PUT /v1/services/web/instances/w1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 501,
			"Unsupported transfer encoding"},
		{"unknown expectation", "PUT /v1/services/web/instances/w1 HTTP/1.1\r\nHost: x\r\nExpect: bar\r\nContent-Length: 2\r\n\r\n{}", 417, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, tc.req)
			if resp.StatusCode != tc.code || body != tc.body {
				t.Fatalf("got %d %q, want %d %q: has Go's server changed what it answers itself? "+
					"If it now reaches our handlers, make it JSON and update the README's error section", resp.StatusCode, body, tc.code, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); tc.body != "" && !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type: got %q, want text/plain (Go's own answer)", ct)
			}
		})
	}
	// OPTIONS * is answered by the server too, and is not an error.
	resp, body := rawExchange(t, addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("OPTIONS *: got %d %q, want 200 with an empty body", resp.StatusCode, body)
	}
}

// TestJSONMuxMethodPatterns: routes registered with a method ("GET /x", as
// later routes may be) get the mux's 405, and paths no pattern matches its
// 404; both answer JSON through jsonMux.
func TestJSONMuxMethodPatterns(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	srv := httptest.NewServer(jsonMux{mux: mux})
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, tc := range []struct {
		req, allow string
		code       int
	}{
		{"DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n", "GET, HEAD", http.StatusMethodNotAllowed},
		{"GET /y HTTP/1.1\r\nHost: x\r\n\r\n", "", http.StatusNotFound},
	} {
		resp, body := rawExchange(t, addr, tc.req)
		var e struct {
			Error string `json:"error"`
		}
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%q: got %d %s Allow %q %q, want %d JSON {\"error\"} Allow %q", tc.req, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body, tc.code, tc.allow)
		}
	}
	if resp, body := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "x" {
		t.Errorf("GET /x: got %d %q, want 200 \"x\"", resp.StatusCode, body)
	}
}

func TestCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/v1/services": true, "/v1/services/": true, "/v1/services/web/instances/a.b": true,
		"": false, "v1": false, "//v1": false, "/v1//services": false, "/v1/./services": false,
		"/v1/../x": false, "/v1/.": false, "/v1/..": false, "/.hidden": true, "/a..b/": true,
	} {
		if got := cleanPath(p); got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", p, got, want)
		}
		if want && path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
			t.Errorf("%q: path.Clean says %q", p, path.Clean(p))
		}
	}
}
