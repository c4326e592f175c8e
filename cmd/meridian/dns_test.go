package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAgentDNSFlags: meridian agent --dns --dns-ttl --dns-domain serves a
// service registered through the Consul-compatible API, over UDP and TCP.
func TestAgentDNSFlags(t *testing.T) {
	bin := buildBinary(t)
	addr, dnsAddr := freeAddr(t), freeAddr(t)
	startAgentProc(t, bin, addr, nil, "--region", "us-east", "--dns", dnsAddr, "--dns-ttl", "7s", "--dns-domain", "sd.test")
	req, err := http.NewRequest("PUT", "http://"+addr+"/v1/agent/service/register",
		strings.NewReader(`{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":9001}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("register through the Consul API: HTTP %d", resp.StatusCode)
	}
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("web.service.sd.test.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" || r.Answer[0].Header().Ttl != 7 {
			t.Fatalf("%s web.service.sd.test A: got %v, want 127.0.0.1 with TTL 7", network, r.Answer)
		}
	}
}
