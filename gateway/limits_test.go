package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// dialFrom opens a TCP connection to addr from a given loopback source IP
// (127.0.0.0/8 is all loopback on Linux), to act as several clients.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// servedFrom dials addr from src and reports whether one GET was answered;
// a connection refused or reset at once counts as not served.
func servedFrom(t *testing.T, src, addr string) bool {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return served(c)
}

// served sends one GET over c and reports whether an HTTP answer came back.
func served(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// TestConnectionCaps: one client IP cannot hold more than
// MaxConnectionsPerClient connections (the excess is closed at once), and
// other clients are still served while it holds them.
func TestConnectionCaps(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{MaxConnectionsPerClient: 5}})
	var held []net.Conn
	for range 5 {
		c := dialFrom(t, "127.0.0.2", a.Addr())
		if !served(c) {
			t.Fatal("a connection under the cap was not served")
		}
		held = append(held, c)
	}
	if servedFrom(t, "127.0.0.2", a.Addr()) {
		t.Fatal("the 6th connection of one client was served; want it closed at once")
	}
	if !servedFrom(t, "127.0.0.3", a.Addr()) {
		t.Fatal("another client was refused while the first one held its cap")
	}
	held[0].Close()
	time.Sleep(50 * time.Millisecond)
	if !servedFrom(t, "127.0.0.2", a.Addr()) {
		t.Fatal("a connection was refused after the client closed one of its own")
	}
}

// TestSlowBodyIsCut: a client sending its body one byte at a time is cut
// off after the read timeout instead of holding a connection for ever.
func TestSlowBodyIsCut(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{ReadTimeout: 500 * time.Millisecond}})
	c := dialFrom(t, "127.0.0.2", a.Addr())
	fmt.Fprintf(c, "PUT /v1/services/web/instances/w1 HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{")
	start := time.Now()
	var err error
	for i := 0; i < 60 && err == nil; i++ { // at most 6s
		time.Sleep(100 * time.Millisecond)
		_, err = c.Write([]byte(" "))
		if err == nil {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [512]byte
			if n, rerr := c.Read(b[:]); n > 0 || (rerr != nil && !isTimeout(rerr)) {
				err = fmt.Errorf("answered or closed: %q %v", b[:n], rerr)
			}
		}
	}
	if err == nil {
		t.Fatal("a 1-byte-per-100ms body kept its connection for 6s")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow body cut after %v, want about the 500ms read timeout", d)
	}
	if !servedFrom(t, "127.0.0.3", a.Addr()) {
		t.Fatal("another client not served")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestWriteRateLimit: past its write rate a client gets 429 with
// Retry-After; another client is not affected; made-up tokens do not buy a
// fresh allowance; a known token is counted apart from its IP; reads are
// not counted.
func TestWriteRateLimit(t *testing.T) {
	const secret = "0123456789-operator-secret"
	a := startAgent(t, AgentConfig{Limits: Limits{WriteRate: 1, WriteBurst: 5}, ACL: ACLConfig{InitialToken: secret}})
	u := a.URL()
	for i := range 5 {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/w%d", u, i), `{"address":"10.0.0.5","port":80}`).want(t, 200)
	}
	r := callWithHeader(t, "PUT", u+"/v1/services/web/instances/w9", `{"address":"10.0.0.5","port":80}`, "Authorization", "Bearer made-up-1").want(t, 429)
	if r.header.Get("Retry-After") == "" || !strings.Contains(r.raw, "--write-rate") || strings.Contains(r.raw, "made-up") {
		t.Fatalf("429: %v %s", r.header, r.raw)
	}
	call(t, "PUT", u+"/v1/services/web/instances/w9", `{"address":"10.0.0.5","port":80}`).want(t, 429)
	// A known token is its own client.
	callWithHeader(t, "PUT", u+"/v1/services/web/instances/w9", `{"address":"10.0.0.5","port":80}`, "X-Meridian-Token", secret).want(t, 200)
	for range 10 {
		call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	}
}

// TestBlockingQueryOutlivesWriteTimeout: the write deadline of a blocking
// query covers its wait.
func TestBlockingQueryOutlivesWriteTimeout(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{WriteTimeout: 300 * time.Millisecond}})
	u := a.URL()
	r := call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	start := time.Now()
	call(t, "GET", u+"/v1/services/web?index="+r.header.Get("X-Meridian-Index")+"&wait=1s", "").want(t, 200)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("blocking query returned after %v, want its 1s wait", d)
	}
}

// TestSlowReaderIsCut: a client that asks for a large answer and never
// reads it holds its connection (and the answer's memory) only until the
// write deadline, not for ever (200 such clients held 656 MB).
func TestSlowReaderIsCut(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{WriteTimeout: 500 * time.Millisecond, MaxConnectionsPerClient: 1}})
	// About 6 MB of answer: 200 instances with 60 meta values of 500 bytes.
	meta := map[string]string{}
	for i := range 60 {
		meta[fmt.Sprintf("k%02d", i)] = strings.Repeat("x", 500)
	}
	for i := range 200 {
		in := region.Instance{Service: "big", ID: fmt.Sprintf("b%03d", i), Address: "10.0.0.5", Port: 80,
			Weight: 100, Status: region.StatusPassing, Meta: meta}
		if _, err := a.Store.Put(context.Background(), in, region.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the cache to hold 200 instances", func() bool { return a.Cache.Version() >= 200 })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	c, err := d.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/services/big HTTP/1.1\r\nHost: x\r\n\r\n")
	// The one connection this client may hold is taken until the server
	// gives up writing to it.
	time.Sleep(100 * time.Millisecond)
	if servedFrom(t, "127.0.0.2", a.Addr()) {
		t.Fatal("a second connection was served while the first one held the cap")
	}
	waitFor(t, 5*time.Second, "the write deadline to free the slow reader's connection", func() bool {
		return servedFrom(t, "127.0.0.2", a.Addr())
	})
}
