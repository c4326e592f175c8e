package probe_test

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/egress"

	"github.com/meridian-sd/meridian/region/probe"

	"github.com/meridian-sd/meridian/region"
)

// countingListener accepts on 127.0.0.1 and runs serve on each connection,
// counting them.
func countingListener(t *testing.T, serve func(net.Conn)) (net.Listener, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln, &n
}

// rawHTTP answers any request with the given raw response bytes.
func rawHTTP(resp string) func(net.Conn) {
	return func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.Read(make([]byte, 4096))
		c.Write([]byte(resp))
	}
}

// TestProbeEgress: a refused target is critical with an output naming the
// egress policy, and the listener behind it never sees a connection:
// neither for an IP literal (checked before dialling) nor for a hostname
// that resolves to a refused address (checked by the dialer's control
// hook, after resolution).
func TestProbeEgress(t *testing.T) {
	ln, accepts := countingListener(t, rawHTTP("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	addr := ln.Addr().(*net.TCPAddr)
	port := addr.AddrPort().Port()
	noLoopback, err := egress.New(egress.Config{}) // loopback refused
	if err != nil {
		t.Fatal(err)
	}
	asStore, err := egress.New(egress.Config{AllowLoopback: true, Store: []netip.AddrPort{addr.AddrPort()}})
	if err != nil {
		t.Fatal(err)
	}
	localhost := "localhost:" + itoa(int(port))
	for _, tc := range []struct {
		name, kind, target string
		policy             *egress.Policy
	}{
		{"tcp literal, loopback refused", "tcp", ln.Addr().String(), noLoopback},
		{"tcp hostname, loopback refused", "tcp", localhost, noLoopback},
		{"http literal, loopback refused", "http", "http://" + ln.Addr().String() + "/health", noLoopback},
		{"http hostname, loopback refused", "http", "http://" + localhost + "/health", noLoopback},
		{"tcp into the store's port", "tcp", ln.Addr().String(), asStore},
		{"tcp hostname into the store's port", "tcp", localhost, asStore},
		{"http into the store's port", "http", "http://" + localhost + "/", asStore},
		{"metadata", "http", "http://169.254.169.254/latest/meta-data/", asStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := probe.Prober{Client: probe.NewEgressProbeClient(tc.policy), Egress: tc.policy}
			got := pr.Probe(context.Background(), tc.kind, tc.target, time.Second)
			if got.Status != region.StatusCritical || !strings.HasSuffix(got.Output, ": refused by egress policy") {
				t.Fatalf("got %+v, want critical, refused by egress policy", got)
			}
			if strings.Contains(got.Output, "store") || strings.Contains(got.Output, "loopback") {
				t.Fatalf("output %q says more than that the policy refused it", got.Output)
			}
		})
	}
	if n := accepts.Load(); n != 0 {
		t.Fatalf("the refused listener accepted %d connections, want 0", n)
	}
	// The same listener, allowed: the probe reaches it (so the counter
	// above could have counted).
	open, _ := egress.New(egress.Config{AllowLoopback: true})
	got := probe.Prober{Client: probe.NewEgressProbeClient(open), Egress: open}.Probe(context.Background(), "tcp", localhost, time.Second)
	if got.Status != region.StatusPassing {
		t.Fatalf("allowed: got %+v", got)
	}
	waitAccepts(t, accepts, 1)
}

func waitAccepts(t *testing.T, n *atomic.Int32, want int32) {
	t.Helper()
	for i := 0; n.Load() < want && i < 200; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n.Load() != want {
		t.Fatalf("accepted %d connections, want %d", n.Load(), want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestProbeOutputCarriesNoServiceBytes: the reason phrase, a malformed
// answer and a long target never put the service's bytes, or more than
// MaxProbeOutput bytes, into the output.
func TestProbeOutputCarriesNoServiceBytes(t *testing.T) {
	secret := "SECRET-" + strings.Repeat("x", 40)
	reason, _ := countingListener(t, rawHTTP("HTTP/1.1 200 "+secret+"\r\nContent-Length: 0\r\n\r\n"))
	garbage, _ := countingListener(t, rawHTTP(secret+" not http at all\r\n\r\n"))
	badCode, _ := countingListener(t, rawHTTP("HTTP/1.1 299 "+secret+"\r\nContent-Length: 0\r\n\r\n"))
	for _, tc := range []struct {
		target     string
		wantStatus region.Status
		wantSuffix string
	}{
		{"http://" + reason.Addr().String() + "/", region.StatusPassing, ": 200 OK"},
		{"http://" + garbage.Addr().String() + "/", region.StatusCritical, ": not a valid HTTP answer or connection error"},
		{"http://" + badCode.Addr().String() + "/", region.StatusPassing, ": 299"},
		{"http://" + reason.Addr().String() + "/" + strings.Repeat("é", 300), region.StatusPassing, ""},
	} {
		got := probe.Probe(context.Background(), nil, "http", tc.target, time.Second)
		if got.Status != tc.wantStatus || !strings.HasSuffix(got.Output, tc.wantSuffix) {
			t.Errorf("%.60s: got %+v, want %s ending %q", tc.target, got, tc.wantStatus, tc.wantSuffix)
		}
		if strings.Contains(got.Output, "SECRET") {
			t.Errorf("output carries the service's bytes: %q", got.Output)
		}
		if len(got.Output) > probe.MaxProbeOutput || !utf8Valid(got.Output) {
			t.Errorf("output is %d bytes (max %d) or cut inside a rune: %q", len(got.Output), probe.MaxProbeOutput, got.Output)
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
