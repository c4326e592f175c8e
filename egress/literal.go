package egress

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// CheckHostPort checks a "host:port" target whose host is an IP literal;
// a hostname passes (it is checked when it is resolved, at dial time).
// A malformed target passes too: validation reports it, not the policy.
func (p *Policy) CheckHostPort(hostport string) error {
	host, port, ok := splitHostPort(hostport)
	if !ok {
		return nil
	}
	return p.checkLiteral(host, port)
}

// CheckURL checks an http(s) URL whose host is an IP literal, with the
// scheme's default port when it names none.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return nil
		}
	}
	return p.checkLiteral(u.Hostname(), port)
}

// CheckAddress checks an instance's address and port when the address is
// an IP literal.
func (p *Policy) CheckAddress(address string, port int) error {
	return p.checkLiteral(strings.TrimSuffix(strings.TrimPrefix(address, "["), "]"), strconv.Itoa(port))
}

func (p *Policy) checkLiteral(host, port string) error {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a hostname
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	return p.Check(netip.AddrPortFrom(a, uint16(n)))
}

// splitHostPort is net.SplitHostPort for the forms a target takes:
// "host:port" and "[v6]:port".
func splitHostPort(hp string) (host, port string, ok bool) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = hp[:i], hp[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", "", false
	}
	return host, port, true
}
