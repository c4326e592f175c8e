package gateway

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/miekg/dns"
)

// query sends one question over net ("udp" or "tcp") with the given EDNS0
// size (0: no EDNS0), as a real resolver would.
func query(t *testing.T, addr, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, dns.TypeToString[qtype], name, err)
	}
	return r
}

// answers renders a reply's answer section compactly and sorted:
// "A 127.0.0.1", "SRV 0 100 9001 web-1.web.instance.us-east.meridian.".
func answers(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, "A "+v.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+v.AAAA.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("SRV %d %d %d %s", v.Priority, v.Weight, v.Port, v.Target))
		case *dns.CNAME:
			out = append(out, "CNAME "+v.Target)
		case *dns.SOA:
			out = append(out, "SOA "+v.Ns)
		case *dns.NS:
			out = append(out, "NS "+v.Ns)
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// wireLen is a reply's size on the wire (compressed, as sent).
func wireLen(r *dns.Msg) int {
	c := r.Copy()
	c.Compress = true
	return c.Len()
}

func dnsRegister(t *testing.T, a *Agent, service, id, body string) {
	t.Helper()
	call(t, "PUT", a.URL()+"/v1/services/"+service+"/instances/"+id, body).want(t, 200)
}

func TestDNSEndToEnd(t *testing.T) {
	withDNS := func(c *AgentConfig) { c.DNS = DNSConfig{Addr: "127.0.0.1:0"} }
	use := startFedNodeWith(t, withDNS, "us-east", "use-1", "")
	eu := startFedNodeWith(t, withDNS, "eu-west", "eu-1", "", use.serfAddr())
	addr := use.DNS.Addr()

	dnsRegister(t, use.Agent, "web", "web-1", `{"address":"127.0.0.1","port":9001,"tags":["v1"]}`)
	dnsRegister(t, use.Agent, "web", "web-2", `{"address":"127.0.0.2","port":9002,"tags":["v2"],"weight":5}`)
	dnsRegister(t, use.Agent, "web", "web-6", `{"address":"::1","port":9006}`)
	dnsRegister(t, use.Agent, "web", "Web.Odd", `{"address":"127.0.0.9","port":9009,"status":"critical"}`)
	dnsRegister(t, eu.Agent, "api", "api-1", `{"address":"127.0.0.3","port":8080}`)
	// pan: 1 of 4 healthy, below the panic threshold (50%): health is
	// ignored, all four answer.
	dnsRegister(t, use.Agent, "pan", "pan-1", `{"address":"127.0.1.1","port":80}`)
	for i := 2; i <= 4; i++ {
		dnsRegister(t, use.Agent, "pan", fmt.Sprintf("pan-%d", i), fmt.Sprintf(`{"address":"127.0.1.%d","port":80,"status":"critical"}`, i))
	}
	waitFor(t, 20*time.Second, "eu-west's api to replicate to us-east", func() bool {
		r := query(t, addr, "udp", "api.service.meridian.", dns.TypeA, 0)
		return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
	})

	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		// Passing only: the critical Web.Odd is left out (3 of 4 healthy
		// is above the panic threshold).
		{"web.service.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1", "A 127.0.0.2"}},
		{"WEB.Service.Meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1", "A 127.0.0.2"}},
		{"web.service.meridian.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA ::1"}},
		{"web.service.meridian.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"SRV 0 100 9001 web-1.web.instance.us-east.meridian.", "SRV 0 100 9006 web-6.web.instance.us-east.meridian.",
			"SRV 0 5 9002 web-2.web.instance.us-east.meridian."}},
		{"v2.web.service.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.2"}},
		{"_web._v1.service.meridian.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 100 9001 web-1.web.instance.us-east.meridian."}},
		{"_web._tcp.service.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1", "A 127.0.0.2"}},
		{"web.service.us-east.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1", "A 127.0.0.2"}},
		{"v3.web.service.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"pan.service.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.1.1", "A 127.0.1.2", "A 127.0.1.3", "A 127.0.1.4"}},
		// Failover: api has no instance here, so eu-west's answers.
		{"api.service.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.3"}},
		{"api.service.meridian.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 100 8080 api-1.api.instance.eu-west.meridian."}},
		{"api.service.eu-west.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.3"}},
		{"api.service.us-east.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"web.service.nowhere.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		// Instances by id, whatever their health; an odd id by its address.
		{"web-1.web.instance.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}},
		{"web.odd.web.instance.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"api-1.api.instance.eu-west.meridian.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 100 8080 api-1.api.instance.eu-west.meridian."}},
		{"7f000009.addr.us-east.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.9"}},
		// Unknown names, the zone itself, other zones.
		{"nope.service.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"Bad_Name.service.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"foo.meridian.", dns.TypeA, dns.RcodeNameError, []string{"SOA ns.meridian."}},
		{"meridian.", dns.TypeSOA, dns.RcodeSuccess, []string{"SOA ns.meridian."}},
		{"meridian.", dns.TypeNS, dns.RcodeSuccess, []string{"NS ns.meridian."}},
		{"ns.meridian.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}},
		{"example.com.", dns.TypeA, dns.RcodeRefused, nil},
		{"web.service.consul.", dns.TypeA, dns.RcodeRefused, nil},
	} {
		for _, network := range []string{"udp", "tcp"} {
			r := query(t, addr, network, tc.name, tc.qtype, 0)
			got := answers(r.Answer)
			if tc.rcode != dns.RcodeSuccess {
				got = answers(r.Ns)
			}
			if r.Rcode != tc.rcode || !slices.Equal(got, tc.want) {
				t.Errorf("%s %s %s: got %s %v, want %s %v", network, dns.TypeToString[tc.qtype], tc.name,
					dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.rcode], tc.want)
			}
			if r.RecursionAvailable || (tc.rcode != dns.RcodeRefused && !r.Authoritative) {
				t.Errorf("%s %s: RA %v AA %v, want no recursion and authoritative", network, tc.name, r.RecursionAvailable, r.Authoritative)
			}
		}
	}
	// DNS lookups count in meridian_lookups_total, failovers marked.
	m := call(t, "GET", use.URL()+"/metrics", "").want(t, 200)
	for _, want := range []string{`api="dns",failover="true"`, `api="dns",failover="false"`} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("/metrics has no meridian_lookups_total with %s", want)
		}
	}
	// SRV carries the targets' addresses in the additional section; TTLs
	// are --dns-ttl.
	r := query(t, addr, "udp", "web.service.meridian.", dns.TypeSRV, 0)
	if got := answers(r.Extra); !slices.Equal(got, []string{"A 127.0.0.1", "A 127.0.0.2", "AAAA ::1"}) {
		t.Errorf("SRV additional section: got %v", got)
	}
	for _, rr := range append(r.Answer, r.Extra...) {
		if rr.Header().Ttl != 5 {
			t.Errorf("TTL of %s: got %d, want 5", rr, rr.Header().Ttl)
		}
	}
	if r.Extra[0].Header().Name != "web-1.web.instance.us-east.meridian." && r.Extra[0].Header().Name != "web-2.web.instance.us-east.meridian." &&
		r.Extra[0].Header().Name != "web-6.web.instance.us-east.meridian." {
		t.Errorf("additional record named %s, want an SRV target", r.Extra[0].Header().Name)
	}
}

func TestDNSTruncationAndEDNS(t *testing.T) {
	a := startAgent(t, AgentConfig{DNS: DNSConfig{Addr: "127.0.0.1:0", TTL: 30 * time.Second, Domain: "sd.example"}})
	for i := range 60 {
		dnsRegister(t, a, "big", fmt.Sprintf("big-%d", i), fmt.Sprintf(`{"address":"10.1.%d.%d","port":80}`, i/250, i%250+1))
	}
	addr := a.DNS.Addr()
	// UDP without EDNS0: 512 bytes, truncated with TC; the client retries
	// over TCP and gets all of them.
	r := query(t, addr, "udp", "big.service.sd.example.", dns.TypeA, 0)
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 60 {
		t.Errorf("UDP without EDNS0: TC %v with %d answers, want TC and some", r.Truncated, len(r.Answer))
	}
	if n := wireLen(r); n > 512 {
		t.Errorf("UDP without EDNS0: %d bytes, want at most 512", n)
	}
	r = query(t, addr, "tcp", "big.service.sd.example.", dns.TypeA, 0)
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("TCP: TC %v with %d answers, want all 60", r.Truncated, len(r.Answer))
	}
	// EDNS0: the client's size, bounded by 4096.
	r = query(t, addr, "udp", "big.service.sd.example.", dns.TypeA, 4096)
	if r.Truncated || len(r.Answer) != 60 || r.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0 4096: TC %v with %d answers (OPT %v), want all 60", r.Truncated, len(r.Answer), r.IsEdns0() != nil)
	}
	r = query(t, addr, "udp", "big.service.sd.example.", dns.TypeSRV, 1232)
	if !r.Truncated || wireLen(r) > 1232 {
		t.Errorf("UDP SRV with EDNS0 1232: TC %v, %d bytes, want TC within 1232", r.Truncated, wireLen(r))
	}
	if r.Answer[0].Header().Ttl != 30 {
		t.Errorf("TTL: got %d, want 30 (--dns-ttl)", r.Answer[0].Header().Ttl)
	}
	// Another domain, and the default one is not served.
	if r := query(t, addr, "udp", "big.service.meridian.", dns.TypeA, 0); r.Rcode != dns.RcodeRefused {
		t.Errorf("the default domain on a gateway serving sd.example: got %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// Two questions, a non-query opcode.
	m := new(dns.Msg)
	m.SetQuestion("big.service.sd.example.", dns.TypeA)
	m.Question = append(m.Question, m.Question[0])
	if r, _, err := (&dns.Client{}).Exchange(m, addr); err != nil || r.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: got %v (err %v), want FORMERR", r, err)
	}
	m = new(dns.Msg)
	m.SetNotify("sd.example.")
	if r, _, err := (&dns.Client{}).Exchange(m, addr); err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: got %v (err %v), want NOTIMP", r, err)
	}
}

func TestDNSACL(t *testing.T) {
	mr := miniredis.RunT(t)
	rurl := "redis://" + mr.Addr() + "/0"
	deny := ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}
	a := startAgent(t, AgentConfig{RedisURL: rurl, ACL: deny, DNS: DNSConfig{Addr: "127.0.0.1:0"}})
	reader := createToken(t, a.URL(), rootSecret, `{"rules":[{"service":"web","access":"read"}]}`)
	for _, svc := range []string{"web", "db"} {
		callTok(t, "PUT", a.URL()+"/v1/services/"+svc+"/instances/"+svc+"-1", `{"address":"127.0.0.1","port":80}`, rootSecret).want(t, 200)
	}
	// The anonymous token under deny reads nothing: NXDOMAIN, not leaked.
	for _, name := range []string{"web.service.meridian.", "db.service.meridian.", "web-1.web.instance.meridian."} {
		if r := query(t, a.DNS.Addr(), "udp", name, dns.TypeA, 0); r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("anonymous %s: got %s %v, want NXDOMAIN", name, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	// A gateway whose DNS token may read web answers web only.
	b := startAgent(t, AgentConfig{RedisURL: rurl, ACL: deny, DNS: DNSConfig{Addr: "127.0.0.1:0", Token: reader.secret}})
	waitFor(t, 5*time.Second, "the second gateway to load the tokens", func() bool {
		return callTok(t, "GET", b.URL()+"/v1/acl/token/self", "", reader.secret).code == 200
	})
	if r := query(t, b.DNS.Addr(), "udp", "web.service.meridian.", dns.TypeA, 0); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("web with a web reader's token: got %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if r := query(t, b.DNS.Addr(), "tcp", "db.service.meridian.", dns.TypeA, 0); r.Rcode != dns.RcodeNameError {
		t.Errorf("db with a web reader's token: got %s %v, want NXDOMAIN", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

func TestDNSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  DNSConfig
		want string
	}{
		{DNSConfig{Addr: "8600"}, "dns:"},
		{DNSConfig{Addr: "127.0.0.1:0", TTL: -time.Second}, "dns-ttl:"},
		{DNSConfig{Addr: "127.0.0.1:0", Domain: "bad..name"}, "dns-domain:"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	// A taken port names the flag.
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = StartAgent(AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", Logger: quietLogger(), DNS: DNSConfig{Addr: l.LocalAddr().String()}})
	if err == nil || !strings.Contains(err.Error(), "dns: listening on") {
		t.Fatalf("DNS on a taken port: got %v, want an error naming --dns", err)
	}
}
