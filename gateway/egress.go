package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/meridian-sd/meridian/egress"
	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/region/redisstore"
)

// refuseEgress answers 403 when a registration's address or check target
// is an IP literal the egress policy refuses (a hostname is checked when
// it is dialled: 502 from the proxy, a critical check). It reports
// whether it answered.
func (s *Server) refuseEgress(w http.ResponseWriter, in region.Instance) bool {
	p := s.cfg.Egress
	if p == nil {
		return false
	}
	field, err := "address", p.CheckAddress(in.Address, in.Port)
	if err == nil && in.Check != nil {
		switch {
		case in.Check.HTTP != "":
			field, err = "check.http", p.CheckURL(in.Check.HTTP)
		case in.Check.TCP != "":
			field, err = "check.tcp", p.CheckHostPort(in.Check.TCP)
		}
	}
	if err == nil {
		return false
	}
	s.cfg.Logger.Warn("registration refused by the egress policy", "instance", in.Key().String(), "field", field, "err", err)
	writeError(w, http.StatusForbidden, field, err.Error())
	return true
}

// egressPolicy builds the agent's egress policy: its own HTTP listener and
// Serf addresses and its store's addresses are reserved; loopback is open
// when the HTTP API listens on loopback.
func (a *Agent) egressPolicy(redisURL string, httpAddr net.Addr, log *slog.Logger) (*egress.Policy, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := egress.Config{Allow: a.cfg.EgressAllow, Deny: a.cfg.EgressDeny}
	if ta, ok := httpAddr.(*net.TCPAddr); ok {
		hap := ta.AddrPort()
		cfg.Self = append(cfg.Self, hap)
		cfg.AllowLoopback = hap.Addr().Unmap().IsLoopback()
	}
	self := append([]string{}, a.cfg.EgressReserved...)
	if a.Members != nil {
		if b, ok := a.Members.(interface{ BindAddr() string }); ok {
			self = append(self, b.BindAddr())
		}
	}
	self = append(self, a.cfg.SerfBind, a.cfg.SerfAdvertise, a.cfg.DNS.Addr)
	for _, hp := range self {
		cfg.Self = append(cfg.Self, resolveHostPort(ctx, hp, log)...)
	}
	if uo, err := redisstore.ParseRedisURL(redisURL); err == nil {
		for _, hp := range uo.Addrs {
			cfg.Store = append(cfg.Store, resolveHostPort(ctx, hp, log)...)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range addrs {
			if n, ok := ia.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					cfg.Local = append(cfg.Local, ip.Unmap())
				}
			}
		}
	}
	return egress.New(cfg)
}

// resolveHostPort turns host:port into ip:port values: a literal as is, an
// empty host as the unspecified address, a hostname through DNS (a failure
// is logged: that address cannot then be reserved).
func resolveHostPort(ctx context.Context, hp string, log *slog.Logger) []netip.AddrPort {
	if hp == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return nil
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil || pn <= 0 || pn > 65535 {
		return nil
	}
	if host == "" {
		return []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(pn)), netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(pn))}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(pn))}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		log.Warn("egress policy: cannot resolve an address to reserve", "host", host, "err", err)
		return nil
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(pn)))
	}
	return out
}

// isEgressRefusal: err comes from the egress policy.
func isEgressRefusal(err error) bool { return errors.Is(err, egress.ErrRefused) }
