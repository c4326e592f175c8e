package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func prefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	// A production-like gateway: HTTP on 0.0.0.0:8700, Serf on
	// 10.0.0.7:7946, Redis at 10.0.0.9:6379 and on this host's 6380.
	prod := Config{
		Self:  []netip.AddrPort{ap("0.0.0.0:8700"), ap("10.0.0.7:7946")},
		Store: []netip.AddrPort{ap("10.0.0.9:6379"), ap("127.0.0.1:6380")},
		Local: []netip.Addr{netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fd12::7")},
	}
	// A one-machine setup (meridian dev): everything on 127.0.0.1.
	dev := Config{
		Self:          []netip.AddrPort{ap("127.0.0.1:8701"), ap("127.0.0.1:7801"), ap("127.0.0.1:8702")},
		Store:         []netip.AddrPort{ap("127.0.0.1:40000")},
		AllowLoopback: true,
	}
	withAllow := prod
	withAllow.Allow = prefixes(t, "169.254.169.254/32,127.0.0.0/8,10.0.0.7")
	withDeny := prod
	withDeny.Allow = prefixes(t, "10.0.0.0/8")
	withDeny.Deny = prefixes(t, "10.1.0.0/16,::ffff:192.0.2.0/120")

	for _, tc := range []struct {
		name string
		cfg  Config
		addr string
		want Rule // -1: allowed
	}{
		{"ordinary backend", prod, "10.0.0.20:8080", -1},
		{"public backend", prod, "203.0.113.5:443", -1},
		{"v6 backend", prod, "[2001:db8::1]:80", -1},
		{"metadata", prod, "169.254.169.254:80", RuleMetadata},
		{"link-local v4", prod, "169.254.1.1:8080", RuleMetadata},
		{"link-local v6", prod, "[fe80::1]:80", RuleMetadata},
		{"link-local v6 with zone", prod, "[fe80::1%eth0]:80", RuleMetadata},
		{"aws v6 metadata", prod, "[fd00:ec2::254]:80", RuleMetadata},
		{"aws v6 neighbour ok", prod, "[fd00:ec2::253]:80", -1},
		{"mapped metadata", prod, "[::ffff:169.254.169.254]:80", RuleMetadata},
		{"unspecified v4", prod, "0.0.0.0:8080", RuleUnspecified},
		{"unspecified v6", prod, "[::]:8080", RuleUnspecified},
		{"multicast", prod, "239.1.2.3:5000", RuleMulticast},
		{"broadcast", prod, "255.255.255.255:5000", RuleMulticast},
		{"v6 multicast", prod, "[ff02::1]:5000", RuleMulticast},
		{"loopback refused", prod, "127.0.0.1:8080", RuleLoopback},
		{"loopback range", prod, "127.8.9.10:8080", RuleLoopback},
		{"v6 loopback", prod, "[::1]:8080", RuleLoopback},
		{"mapped loopback", prod, "[::ffff:127.0.0.1]:8080", RuleLoopback},
		{"port zero", prod, "10.0.0.20:0", RulePortZero},
		{"own http on local address", prod, "10.0.0.7:8700", RuleReserved},
		{"own http on v6 local address", prod, "[fd12::7]:8700", RuleReserved},
		{"own http on loopback", prod, "127.0.0.1:8700", RuleReserved},
		{"own http on unspecified", prod, "0.0.0.0:8700", RuleReserved},
		{"own http port elsewhere ok", prod, "10.0.0.20:8700", -1},
		{"own serf", prod, "10.0.0.7:7946", RuleReserved},
		{"own serf mapped", prod, "[::ffff:10.0.0.7]:7946", RuleReserved},
		{"store", prod, "10.0.0.9:6379", RuleReserved},
		{"store host other port ok", prod, "10.0.0.9:6378", -1},
		{"local store on local address", prod, "10.0.0.7:6380", RuleReserved},
		{"dev: other loopback port ok", dev, "127.0.0.1:9001", -1},
		{"dev: other loopback address ok", dev, "127.0.0.3:9001", -1},
		{"dev: own port", dev, "127.0.0.1:8701", RuleReserved},
		{"dev: own port on another loopback address", dev, "127.0.0.2:8702", RuleReserved},
		{"dev: own port on v6 loopback", dev, "[::1]:7801", RuleReserved},
		{"dev: store", dev, "127.0.0.1:40000", RuleReserved},
		{"dev: metadata still refused", dev, "169.254.169.254:80", RuleMetadata},
		{"allow re-opens metadata", withAllow, "169.254.169.254:80", -1},
		{"allow is exact", withAllow, "169.254.169.253:80", RuleMetadata},
		{"allow re-opens loopback", withAllow, "127.0.0.1:9000", -1},
		{"allow never re-opens own port", withAllow, "127.0.0.1:8700", RuleReserved},
		{"allow never re-opens store", withAllow, "127.0.0.1:6380", RuleReserved},
		{"allow never re-opens serf", withAllow, "10.0.0.7:7946", RuleReserved},
		{"deny", withDeny, "10.1.2.3:80", RuleDeny},
		{"deny beats allow", withDeny, "10.1.0.1:80", RuleDeny},
		{"deny outside range", withDeny, "10.2.0.1:80", -1},
		{"deny with mapped prefix", withDeny, "192.0.2.77:80", RuleDeny},
		{"allow 10/8 never re-opens the store", withDeny, "10.0.0.9:6379", RuleReserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(ap(tc.addr))
			if tc.want < 0 {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tc.addr, err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
				t.Fatalf("Check(%s) = %v, want refused by %s", tc.addr, err, tc.want)
			}
			if re.Rule != tc.want {
				t.Fatalf("Check(%s) refused by %s (%v), want %s", tc.addr, re.Rule, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "egress policy: ") {
				t.Fatalf("message %q does not start with \"egress policy: \"", err)
			}
		})
	}
}

// A reserved address inside a deny range is reported as denied (deny is
// checked first); either way it is refused.
func TestDenyReportedFirst(t *testing.T) {
	p, err := New(Config{Store: []netip.AddrPort{ap("10.1.0.9:6379")}, Deny: prefixes(t, "10.1.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if err := p.Check(ap("10.1.0.9:6379")); !errors.As(err, &re) || re.Rule != RuleDeny {
		t.Fatalf("got %v, want the deny rule", err)
	}
}

func TestMessages(t *testing.T) {
	p, _ := New(Config{Store: []netip.AddrPort{ap("10.0.0.9:6379")}, Deny: prefixes(t, "10.9.0.0/16")})
	for addr, want := range map[string]string{
		"169.254.169.254:80": "egress policy: 169.254.169.254:80 is link-local/cloud metadata (169.254.0.0/16)",
		"10.0.0.9:6379":      "egress policy: 10.0.0.9:6379 is this gateway's own listener or its store, never dialled",
		"10.9.1.1:80":        "egress policy: 10.9.1.1:80 matches --egress-deny 10.9.0.0/16",
		"127.0.0.1:80":       "egress policy: 127.0.0.1:80 is loopback (127.0.0.0/8) and this gateway does not listen on loopback",
	} {
		if got := p.Check(ap(addr)); got == nil || got.Error() != want {
			t.Errorf("Check(%s) = %v\n want %s", addr, got, want)
		}
	}
}

func TestLiterals(t *testing.T) {
	p, _ := New(Config{Store: []netip.AddrPort{ap("10.0.0.9:6379")}})
	for _, tc := range []struct {
		name    string
		check   func() error
		refused bool
	}{
		{"address metadata", func() error { return p.CheckAddress("169.254.169.254", 80) }, true},
		{"address store", func() error { return p.CheckAddress("10.0.0.9", 6379) }, true},
		{"address v6 brackets", func() error { return p.CheckAddress("[fe80::1]", 80) }, true},
		{"address hostname passes", func() error { return p.CheckAddress("metadata.google.internal", 80) }, false},
		{"address ok", func() error { return p.CheckAddress("10.0.0.5", 8080) }, false},
		{"tcp store", func() error { return p.CheckHostPort("10.0.0.9:6379") }, true},
		{"tcp v6", func() error { return p.CheckHostPort("[::1]:22") }, true},
		{"tcp hostname", func() error { return p.CheckHostPort("redis:6379") }, false},
		{"tcp malformed", func() error { return p.CheckHostPort("10.0.0.9") }, false},
		{"url default port", func() error { return p.CheckURL("http://169.254.169.254/latest/meta-data") }, true},
		{"url https default port", func() error { return p.CheckURL("https://127.0.0.1/") }, true},
		{"url explicit port", func() error { return p.CheckURL("http://10.0.0.9:6379/") }, true},
		{"url ok", func() error { return p.CheckURL("http://10.0.0.5:8080/health") }, false},
		{"url hostname", func() error { return p.CheckURL("http://localhost:8080/health") }, false},
	} {
		err := tc.check()
		if (err != nil) != tc.refused || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s: got %v, want refused=%t", tc.name, err, tc.refused)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.0.0.0/8, 192.0.2.1 ,fd00::/8,,10.1.2.3/16")
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.0/8 192.0.2.1/32 fd00::/8 10.1.0.0/16"
	if sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.0/8,x"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

func sprint(ps []netip.Prefix) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func TestValidate(t *testing.T) {
	if _, err := New(Config{Allow: []netip.Prefix{{}}}); err == nil || !strings.Contains(err.Error(), "egress-allow") {
		t.Errorf("invalid allow prefix: %v", err)
	}
	if _, err := New(Config{Store: []netip.AddrPort{{}}}); err == nil || !strings.Contains(err.Error(), "store") {
		t.Errorf("invalid store: %v", err)
	}
}

// FuzzCheck: Check never panics, mapped and unmapped forms of an address
// get the same answer, and metadata, unspecified and reserved addresses
// are refused whatever the input.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"169.254.169.254:80", "[::ffff:127.0.0.1]:6379", "[fe80::1%eth0]:1", "10.0.0.1:8700", "[fd00:ec2::254]:80", "0.0.0.0:0"} {
		f.Add(s, "10.0.0.0/8")
	}
	f.Fuzz(func(t *testing.T, addr, allow string) {
		store := ap("10.0.0.9:6379")
		allowed, _ := ParsePrefixes(allow)
		p, err := New(Config{Self: []netip.AddrPort{ap("0.0.0.0:8700")}, Store: []netip.AddrPort{store}, Allow: allowed})
		if err != nil {
			return
		}
		_ = p.CheckHostPort(addr)
		_ = p.CheckURL("http://" + addr + "/")
		x, err := netip.ParseAddrPort(addr)
		if err != nil {
			return
		}
		got := p.Check(x)
		a := x.Addr().WithZone("")
		if a.Is4() {
			mapped := netip.AddrPortFrom(netip.AddrFrom16(a.As16()), x.Port())
			if g2 := p.Check(mapped); (g2 == nil) != (got == nil) {
				t.Fatalf("%s gives %v but its mapped form %s gives %v", x, got, mapped, g2)
			}
		}
		u := a.Unmap()
		if ((u.IsUnspecified() && len(allowed) == 0) || (x.Port() == 8700 && (u.IsLoopback() || u.IsUnspecified())) || netip.AddrPortFrom(u, x.Port()) == store) && got == nil {
			t.Fatalf("%s allowed", x)
		}
		if got != nil && !errors.Is(got, ErrRefused) {
			t.Fatalf("%s: error %v does not match ErrRefused", x, got)
		}
		if u.IsLinkLocalUnicast() && got == nil && len(allowed) == 0 {
			t.Fatalf("link-local %s allowed", x)
		}
	})
}
