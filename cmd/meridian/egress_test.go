package main

import (
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/meridian-sd/meridian/internal/redistest"
)

// TestAgentEgressFlags: a real agent process on a real redis-server
// refuses registrations at its store, its Serf port, the metadata address
// and --egress-deny ranges (403 through the CLI), and --egress-allow
// (here from the environment) re-opens one metadata address only.
func TestAgentEgressFlags(t *testing.T) {
	srv := redistest.Start(t)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	_, redisPort, _ := net.SplitHostPort(u.Host)
	bin := buildBinary(t)
	addr, serf := freeAddr(t), freeAddr(t)
	_, serfPort, _ := net.SplitHostPort(serf)
	startAgentProc(t, bin, addr, []string{"MERIDIAN_EGRESS_ALLOW=169.254.169.254/32"},
		"--region", "us-east", "--redis", srv.URL(), "--serf-bind", serf, "--egress-deny", "10.20.0.0/16, 192.0.2.7")
	for _, tc := range []struct {
		address, port string
		want          string // "" for success
	}{
		{"127.0.0.1", redisPort, "own listener or its store"},
		{"127.0.0.1", serfPort, "own listener or its store"},
		{"10.20.3.4", "80", "matches --egress-deny 10.20.0.0/16"},
		{"192.0.2.7", "80", "matches --egress-deny 192.0.2.7/32"},
		{"169.254.169.253", "80", "link-local/cloud metadata"},
		{"169.254.169.254", "80", ""},
		{"10.21.0.1", "80", ""},
	} {
		out, err := exec.Command(bin, "register", "web", "w-"+strings.ReplaceAll(tc.address, ".", "-")+"-"+tc.port,
			"--address", tc.address, "--port", tc.port, "--addr", addr).CombinedOutput()
		if tc.want == "" {
			if err != nil {
				t.Errorf("register at %s:%s: %v\n%s", tc.address, tc.port, err, out)
			}
			continue
		}
		if err == nil || !strings.Contains(string(out), "HTTP 403") || !strings.Contains(string(out), tc.want) {
			t.Errorf("register at %s:%s: %v\n%s\nwant HTTP 403 naming %q", tc.address, tc.port, err, out, tc.want)
		}
	}
	out, err := exec.Command(bin, "agent", "--region", "us-east", "--http", freeAddr(t), "--serf-bind", "", "--egress-deny", "10.0.0.0/33").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--egress-deny") {
		t.Fatalf("agent with a bad --egress-deny: %v\n%s", err, out)
	}
}
