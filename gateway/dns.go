package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// DNSConfig configures the DNS interface (meridian agent --dns*). It
// answers, for the domain (default "meridian."):
//
//	web.service.meridian.          A/AAAA/SRV: routed as /v1/lookup/web
//	v2.web.service.meridian.       the same, instances tagged v2
//	_web._v2.service.meridian.     RFC 2782 form (_tcp/_udp: no tag)
//	web.service.R.meridian.        region R's instances (its replica)
//	ID.web.instance[.R].meridian.  one instance, whatever its health
//	HEX.addr[.R].meridian.         an IP address (SRV targets of IDs that
//	                               are no DNS label)
//
// SOA and NS for the domain itself, NXDOMAIN for an unknown name or a
// service with nothing to route to, REFUSED outside the domain (it never
// recurses). UDP answers fit the client's EDNS0 size (512 without, at most
// 4096) and set TC when records were dropped, so the client retries over
// TCP.
type DNSConfig struct {
	// Addr is host:port for UDP and TCP; "" turns DNS off.
	Addr string
	// TTL of answers (and of negative answers, in the SOA). Default 5s.
	TTL time.Duration
	// Domain is the zone served. Default "meridian.".
	Domain string
	// Token is the ACL token whose read rules DNS answers follow (Consul's
	// default token); empty: the anonymous token (the default policy).
	Token string
}

// DNS defaults and bounds.
const (
	DefaultDNSTTL    = 5 * time.Second
	DefaultDNSDomain = "meridian."
	// maxDNSUDPSize bounds the EDNS0 size a client may ask for.
	maxDNSUDPSize = 4096
	// maxDNSRecords bounds the endpoints put in one answer.
	maxDNSRecords = 256
	// maxDNSInFlight bounds queries answered at once; past it a query
	// gets SERVFAIL at once.
	maxDNSInFlight = 512
	// maxDNSConns bounds open TCP connections.
	maxDNSConns = 256
)

// Validate checks the configuration, naming the flag.
func (c *DNSConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("dns: %q is not host:port: %w", c.Addr, err)
	}
	if c.TTL < 0 || c.TTL > 24*time.Hour {
		return fmt.Errorf("dns-ttl: must be 0 to 24h, got %s", c.TTL)
	}
	if c.Domain != "" {
		d := dns.Fqdn(strings.ToLower(c.Domain))
		if _, ok := dns.IsDomainName(d); !ok || d == "." {
			return fmt.Errorf("dns-domain: %q is not a domain name", c.Domain)
		}
	}
	return nil
}

// DNSServer answers DNS queries from a Server's routing over UDP and TCP.
type DNSServer struct {
	s        *Server
	domain   string // lowercase, fully qualified
	ttl      uint32
	token    string
	log      *slog.Logger
	inflight chan struct{}
	udp, tcp *dns.Server
	addr     string
	nsIP     net.IP // the address NS answers glue to; nil when unspecified
	wg       sync.WaitGroup
}

// StartDNS listens on cfg.Addr (UDP and TCP, the same port; port 0 picks
// one) and serves s's catalog.
func StartDNS(s *Server, cfg DNSConfig, log *slog.Logger) (*DNSServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	d := &DNSServer{s: s, domain: dns.Fqdn(strings.ToLower(cfg.Domain)), ttl: uint32(cfg.TTL / time.Second),
		token: cfg.Token, log: log, inflight: make(chan struct{}, maxDNSInFlight)}
	if cfg.Domain == "" {
		d.domain = DefaultDNSDomain
	}
	if cfg.TTL == 0 {
		d.ttl = uint32(DefaultDNSTTL / time.Second)
	}
	pc, ln, err := listenUDPAndTCP(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns: listening on %s: %w", cfg.Addr, err)
	}
	d.addr = pc.LocalAddr().String()
	if ap, err := netip.ParseAddrPort(d.addr); err == nil && !ap.Addr().IsUnspecified() {
		d.nsIP = net.IP(ap.Addr().Unmap().AsSlice())
	}
	idle := func() time.Duration { return 8 * time.Second }
	d.udp = &dns.Server{PacketConn: pc, Handler: d, UDPSize: maxDNSUDPSize, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	d.tcp = &dns.Server{Listener: netutil.LimitListener(ln, maxDNSConns), Handler: d, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, IdleTimeout: idle, MaxTCPQueries: 128}
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				log.Error("dns server stopped", "err", err)
			}
		}()
		<-started
	}
	log.Info("dns serving", "addr", d.addr, "domain", d.domain, "ttl", time.Duration(d.ttl)*time.Second)
	return d, nil
}

// listenUDPAndTCP opens UDP and TCP on one port.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 10 { // port 0: the TCP port may be taken; try another
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr is the UDP and TCP address DNS listens on.
func (d *DNSServer) Addr() string { return d.addr }

// Shutdown stops both listeners and waits for the servers.
func (d *DNSServer) Shutdown(ctx context.Context) error {
	err := errors.Join(d.udp.ShutdownContext(ctx), d.tcp.ShutdownContext(ctx))
	d.wg.Wait()
	return err
}

// ServeDNS implements dns.Handler.
func (d *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	select {
	case d.inflight <- struct{}{}:
		defer func() { <-d.inflight }()
	default:
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	}
	m := d.answer(req)
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	size := dns.MaxMsgSize
	if udp {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(max(dns.MinMsgSize, min(opt.UDPSize(), maxDNSUDPSize)))
		}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(maxDNSUDPSize, false)
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		d.log.Debug("dns: writing an answer", "err", err)
	}
}

// answer builds the reply to req.
func (d *DNSServer) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false
	if req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) || !dns.IsSubDomain(d.domain, name) {
		m.SetRcode(req, dns.RcodeRefused)
		return m
	}
	m.Authoritative = true
	labels := dns.SplitDomainName(strings.TrimSuffix(name, d.domain))
	if len(labels) > 8 {
		return d.nxdomain(m)
	}
	switch {
	case len(labels) == 0:
		return d.apex(m, q)
	case len(labels) == 1 && labels[0] == "ns":
		if d.nsIP != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
			if rr := d.addrRR(q.Name, d.nsIP, q.Qtype); rr != nil {
				m.Answer = append(m.Answer, rr)
				return m
			}
		}
		return d.nodata(m)
	}
	if !d.s.cfg.Cache.Loaded() {
		m.SetRcode(req, dns.RcodeServerFailure)
		return m
	}
	for i, l := range labels {
		rest := labels[i+1:]
		if len(rest) > 1 {
			continue
		}
		regionName := ""
		if len(rest) == 1 {
			regionName = rest[0]
		}
		switch l {
		case "service":
			return d.service(m, q, labels[:i], regionName)
		case "instance":
			if i == 2 {
				return d.instance(m, q, labels[1], labels[0], regionName)
			}
		case "addr":
			if i == 1 {
				return d.addrName(m, q, labels[0], regionName)
			}
		}
	}
	return d.nxdomain(m)
}

func (d *DNSServer) soa() *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: d.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: d.ttl},
		Ns: "ns." + d.domain, Mbox: "hostmaster." + d.domain, Serial: uint32(d.s.cfg.Cache.Version()),
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: d.ttl}
}

func (d *DNSServer) ns() *dns.NS {
	return &dns.NS{Hdr: dns.RR_Header{Name: d.domain, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: d.ttl}, Ns: "ns." + d.domain}
}

func (d *DNSServer) apex(m *dns.Msg, q dns.Question) *dns.Msg {
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = append(m.Answer, d.soa())
	case dns.TypeNS:
		m.Answer = append(m.Answer, d.ns())
		if d.nsIP != nil {
			m.Extra = append(m.Extra, d.addrRR("ns."+d.domain, d.nsIP, dns.TypeANY))
		}
	case dns.TypeANY:
		m.Answer = append(m.Answer, d.soa(), d.ns())
	default:
		return d.nodata(m)
	}
	return m
}

// nxdomain: the name does not exist (with the SOA, for negative caching).
func (d *DNSServer) nxdomain(m *dns.Msg) *dns.Msg {
	m.Rcode = dns.RcodeNameError
	m.Answer, m.Extra = nil, nil
	m.Ns = []dns.RR{d.soa()}
	return m
}

// nodata: the name exists, not with this type.
func (d *DNSServer) nodata(m *dns.Msg) *dns.Msg {
	m.Answer, m.Extra = nil, nil
	m.Ns = []dns.RR{d.soa()}
	return m
}

// mayRead applies the DNS token's (or the anonymous token's) read rules.
func (d *DNSServer) mayRead(service string) bool {
	a := d.s.cfg.ACL
	if a == nil {
		return true
	}
	if d.token == "" {
		return a.DefaultAllow()
	}
	e := a.lookup(d.token)
	return e != nil && e.Authz.Allowed(acl.ServiceRead(service), a.DefaultAllow())
}

// knownRegion reports whether name is this region or one federation knows.
func (d *DNSServer) knownRegion(name string) bool {
	if name == d.s.cfg.Region {
		return true
	}
	if d.s.cfg.Fed == nil {
		return false
	}
	known := false
	d.s.cfg.Fed.Read(func(c *federation.Core) { _, _, known = c.Lookup(name) })
	return known
}

// service answers [tag.]NAME.service[.REGION] and _NAME._TAG.service.
func (d *DNSServer) service(m *dns.Msg, q dns.Question, pre []string, regionName string) *dns.Msg {
	var svc, tag string
	switch {
	case len(pre) == 1:
		svc = pre[0]
	case len(pre) == 2 && strings.HasPrefix(pre[0], "_") && strings.HasPrefix(pre[1], "_"):
		svc, tag = pre[0][1:], pre[1][1:]
		if tag == "tcp" || tag == "udp" {
			tag = ""
		}
	case len(pre) == 2:
		tag, svc = pre[0], pre[1]
	default:
		return d.nxdomain(m)
	}
	if region.ValidateService(svc) != nil || !d.mayRead(svc) {
		return d.nxdomain(m)
	}
	if regionName != "" && !d.knownRegion(regionName) {
		return d.nxdomain(m)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	start := time.Now()
	eps, err := d.route(svc, tags, regionName)
	failedOver := false
	for i := range eps {
		failedOver = failedOver || eps[i].Region != d.s.cfg.Region
	}
	result := "ok"
	switch {
	case err != nil:
		result = "error"
	case len(eps) == 0:
		result = "empty"
	}
	d.s.metrics.lookup(context.Background(), "dns", result, failedOver, time.Since(start))
	if result != "ok" {
		return d.nxdomain(m)
	}
	return d.records(m, q, eps)
}

// route is /v1/lookup's decision for svc: from this region (locality,
// failover, panic), or within regionName only.
func (d *DNSServer) route(svc string, tags []string, regionName string) ([]failover.Endpoint, error) {
	s := d.s
	p, err := s.policyFor(svc, nil)
	if err != nil {
		return nil, err
	}
	var dec failover.Decision
	if regionName == "" || regionName == s.cfg.Region {
		if regionName == "" {
			dec = s.decide(failover.Request{Service: svc, FromRegion: s.cfg.Region, Tags: tags, Policy: p}).d
		} else {
			p.Mode, p.Regions = failover.ModeOrdered, []string{s.cfg.Region}
			views, _ := s.views(svc, true)
			dec = failover.Route(views, failover.Request{Service: svc, FromRegion: s.cfg.Region, Tags: tags, Policy: p})
		}
	} else {
		p.Mode, p.Regions = failover.ModeOrdered, []string{regionName}
		views, _ := s.views(svc, true)
		dec = failover.Route(views, failover.Request{Service: svc, FromRegion: regionName, Tags: tags, Policy: p})
	}
	eps := dec.Endpoints
	if len(eps) > maxDNSRecords {
		eps = eps[:maxDNSRecords]
	}
	// Spread clients that take the first address over the most preferred
	// level: shuffle within each priority (the decision is shared; copy).
	eps = append([]failover.Endpoint(nil), eps...)
	for i := 0; i < len(eps); {
		j := i
		for j < len(eps) && eps[j].Priority == eps[i].Priority {
			j++
		}
		lvl := eps[i:j]
		rand.Shuffle(len(lvl), func(a, b int) { lvl[a], lvl[b] = lvl[b], lvl[a] })
		i = j
	}
	return eps, nil
}

// records answers A/AAAA/ANY with the endpoints' addresses and SRV with
// their ports, targets and the targets' addresses in the additional
// section, as Consul does.
func (d *DNSServer) records(m *dns.Msg, q dns.Question, eps []failover.Endpoint) *dns.Msg {
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		host := ""
		for i := range eps {
			if ip := net.ParseIP(eps[i].Address); ip != nil {
				if rr := d.addrRR(q.Name, ip, q.Qtype); rr != nil {
					m.Answer = append(m.Answer, rr)
				}
			} else if host == "" {
				host = eps[i].Address
			}
		}
		if len(m.Answer) == 0 && host != "" && !hasIP(eps) {
			// Only hostnames: one CNAME (a CNAME stands alone), as Consul.
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: d.hdr(q.Name, dns.TypeCNAME), Target: dns.Fqdn(host)})
		}
	case dns.TypeSRV:
		for i := range eps {
			ep := &eps[i]
			target := d.target(ep)
			m.Answer = append(m.Answer, &dns.SRV{Hdr: d.hdr(q.Name, dns.TypeSRV), Priority: uint16(min(ep.Priority, 65535)),
				Weight: uint16(max(1, min(ep.Weight, 65535))), Port: uint16(ep.Port), Target: target})
			if ip := net.ParseIP(ep.Address); ip != nil {
				m.Extra = append(m.Extra, d.addrRR(target, ip, dns.TypeANY))
			}
		}
	default:
		return d.nodata(m)
	}
	if len(m.Answer) == 0 {
		return d.nodata(m)
	}
	return m
}

func (d *DNSServer) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: d.ttl}
}

// addrRR is an A (IPv4) or AAAA (IPv6) record for ip, or nil when qtype
// asks for the other family.
func (d *DNSServer) addrRR(name string, ip net.IP, qtype uint16) dns.RR {
	if v4 := ip.To4(); v4 != nil {
		if qtype == dns.TypeAAAA {
			return nil
		}
		return &dns.A{Hdr: d.hdr(name, dns.TypeA), A: v4}
	}
	if qtype == dns.TypeA {
		return nil
	}
	return &dns.AAAA{Hdr: d.hdr(name, dns.TypeAAAA), AAAA: ip}
}

// isLabel: a lowercase LDH label, so the id names itself in DNS.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// target names an endpoint for SRV: ID.SERVICE.instance.REGION.DOMAIN
// when its id is a DNS label, else HEX.addr.REGION.DOMAIN for an IP, else
// its hostname.
func (d *DNSServer) target(ep *failover.Endpoint) string {
	if id := strings.ToLower(ep.ID); isLabel(id) {
		return id + "." + ep.Service + ".instance." + ep.Region + "." + d.domain
	}
	if ip := net.ParseIP(ep.Address); ip != nil {
		b := ip.To4()
		if b == nil {
			b = ip.To16()
		}
		return hex.EncodeToString(b) + ".addr." + ep.Region + "." + d.domain
	}
	return dns.Fqdn(ep.Address)
}

// instance answers ID.SERVICE.instance[.REGION]: the instance's address
// whatever its health (as Consul's node names), SRV with its port.
func (d *DNSServer) instance(m *dns.Msg, q dns.Question, svc, id, regionName string) *dns.Msg {
	if region.ValidateService(svc) != nil || !d.mayRead(svc) {
		return d.nxdomain(m)
	}
	if regionName == "" {
		regionName = d.s.cfg.Region
	}
	find := func(c *region.Catalog) (region.Instance, bool) {
		if in, ok := c.Get(region.Key{Service: svc, ID: id}); ok {
			return in, true
		}
		for _, in := range c.Instances(svc, region.Filter{}) { // DNS names are case-insensitive
			if strings.EqualFold(in.ID, id) {
				return in, true
			}
		}
		return region.Instance{}, false
	}
	var in region.Instance
	var ok bool
	if regionName == d.s.cfg.Region {
		d.s.cfg.Cache.Read(func(c *region.Catalog) { in, ok = find(c) })
	} else if d.s.cfg.Fed != nil {
		d.s.cfg.Fed.Read(func(c *federation.Core) {
			if rep, _, _ := c.Lookup(regionName); rep != nil {
				in, ok = find(rep.Catalog)
			}
		})
	}
	if !ok {
		return d.nxdomain(m)
	}
	return d.records(m, q, []failover.Endpoint{{Instance: in, Region: regionName}})
}

// addrName answers HEX.addr[.REGION]: the IP address the hex spells.
func (d *DNSServer) addrName(m *dns.Msg, q dns.Question, h, regionName string) *dns.Msg {
	if regionName != "" && !d.knownRegion(regionName) {
		return d.nxdomain(m)
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return d.nxdomain(m)
	}
	if rr := d.addrRR(q.Name, net.IP(b), q.Qtype); rr != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, rr)
		return m
	}
	return d.nodata(m)
}

func hasIP(eps []failover.Endpoint) bool {
	for i := range eps {
		if net.ParseIP(eps[i].Address) != nil {
			return true
		}
	}
	return false
}
