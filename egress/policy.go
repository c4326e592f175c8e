package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrRefused is what every refusal matches with errors.Is.
var ErrRefused = errors.New("refused by egress policy")

// Rule names the rule that refused an address.
type Rule int

// The rules, in the order Check applies them.
const (
	RuleInvalid     Rule = iota // not a valid ip:port
	RuleDeny                    // matches an --egress-deny range
	RuleReserved                // the gateway's own listener or its store
	RulePortZero                // port 0
	RuleMetadata                // link-local or cloud metadata
	RuleUnspecified             // 0.0.0.0 or ::
	RuleMulticast               // multicast or limited broadcast
	RuleLoopback                // loopback, and the gateway does not listen on it
)

func (r Rule) String() string {
	switch r {
	case RuleInvalid:
		return "invalid"
	case RuleDeny:
		return "deny"
	case RuleReserved:
		return "reserved"
	case RulePortZero:
		return "port-zero"
	case RuleMetadata:
		return "metadata"
	case RuleUnspecified:
		return "unspecified"
	case RuleMulticast:
		return "multicast"
	case RuleLoopback:
		return "loopback"
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

// RefusedError says which address was refused and by which rule. Its
// message never tells the gateway's own listeners from its store (both
// are "reserved"), so it can go into responses and check output.
type RefusedError struct {
	Addr   netip.AddrPort // the address checked, unmapped
	Rule   Rule
	Prefix netip.Prefix // the matching range, for RuleDeny and the built-in ranges
}

func (e *RefusedError) Error() string {
	var why string
	switch e.Rule {
	case RuleInvalid:
		return "egress policy: not a valid address"
	case RuleDeny:
		why = "matches --egress-deny " + e.Prefix.String()
	case RuleReserved:
		why = "is this gateway's own listener or its store, never dialled"
	case RulePortZero:
		why = "has port 0"
	case RuleMetadata:
		why = "is link-local/cloud metadata (" + e.Prefix.String() + ")"
	case RuleUnspecified:
		why = "is the unspecified address"
	case RuleMulticast:
		why = "is multicast/broadcast (" + e.Prefix.String() + ")"
	case RuleLoopback:
		why = "is loopback (" + e.Prefix.String() + ") and this gateway does not listen on loopback"
	default:
		why = "is refused"
	}
	return "egress policy: " + e.Addr.String() + " " + why
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Config is what a Policy is built from. The zero value refuses the
// built-in ranges and loopback and reserves nothing.
type Config struct {
	// Self are the gateway's own listen addresses: its HTTP API and its
	// Serf bind and advertise addresses. Never dialled.
	Self []netip.AddrPort
	// Store are the addresses of the gateway's registry store (Redis).
	// Never dialled.
	Store []netip.AddrPort
	// Local are the host's own interface addresses. A Self or Store entry
	// on an unspecified, loopback or Local address reserves its port on
	// all of them (a listener bound to 0.0.0.0 answers on each).
	Local []netip.Addr
	// AllowLoopback lets 127.0.0.0/8 and ::1 be dialled (their reserved
	// ports excepted). Set it when the gateway itself listens on loopback.
	AllowLoopback bool
	// Allow re-opens ranges that are refused by default (metadata,
	// loopback, multicast ...); never a reserved address.
	Allow []netip.Prefix
	// Deny refuses ranges; it beats everything else.
	Deny []netip.Prefix
}

// Validate checks the configuration, naming the field.
func (c Config) Validate() error {
	for _, a := range c.Self {
		if !a.IsValid() {
			return fmt.Errorf("self: %v is not a valid ip:port", a)
		}
	}
	for _, a := range c.Store {
		if !a.IsValid() {
			return fmt.Errorf("store: %v is not a valid ip:port", a)
		}
	}
	for _, a := range c.Local {
		if !a.IsValid() {
			return fmt.Errorf("local: %v is not a valid address", a)
		}
	}
	for _, p := range c.Allow {
		if !p.IsValid() {
			return fmt.Errorf("egress-allow: %v is not a valid CIDR", p)
		}
	}
	for _, p := range c.Deny {
		if !p.IsValid() {
			return fmt.Errorf("egress-deny: %v is not a valid CIDR", p)
		}
	}
	return nil
}

// Policy answers whether an address may be dialled. It is immutable and
// safe for concurrent use.
type Policy struct {
	exact     map[netip.AddrPort]bool // reserved ip:port
	anyLocal  map[uint16]bool         // reserved ports on every local address
	local     map[netip.Addr]bool     // the host's own addresses
	loopback  bool
	allow     []netip.Prefix
	deny      []netip.Prefix
	cfgString string
}

// builtin are the ranges refused unless allowed, with their rule.
var builtin = []struct {
	prefix netip.Prefix
	rule   Rule
}{
	{netip.MustParsePrefix("169.254.0.0/16"), RuleMetadata},
	{netip.MustParsePrefix("fe80::/10"), RuleMetadata},
	{netip.MustParsePrefix("fd00:ec2::254/128"), RuleMetadata},
	{netip.MustParsePrefix("0.0.0.0/32"), RuleUnspecified},
	{netip.MustParsePrefix("::/128"), RuleUnspecified},
	{netip.MustParsePrefix("224.0.0.0/4"), RuleMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), RuleMulticast},
	{netip.MustParsePrefix("ff00::/8"), RuleMulticast},
	{netip.MustParsePrefix("127.0.0.0/8"), RuleLoopback},
	{netip.MustParsePrefix("::1/128"), RuleLoopback},
}

// New builds a Policy.
func New(c Config) (*Policy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{exact: map[netip.AddrPort]bool{}, anyLocal: map[uint16]bool{}, local: map[netip.Addr]bool{},
		loopback: c.AllowLoopback}
	for _, a := range c.Local {
		p.local[a.Unmap().WithZone("")] = true
	}
	for _, list := range [][]netip.AddrPort{c.Self, c.Store} {
		for _, ap := range list {
			a := ap.Addr().Unmap().WithZone("")
			p.exact[netip.AddrPortFrom(a, ap.Port())] = true
			if a.IsUnspecified() || a.IsLoopback() || p.local[a] {
				p.anyLocal[ap.Port()] = true
			}
		}
	}
	for _, pr := range c.Allow {
		p.allow = append(p.allow, unmapPrefix(pr))
	}
	for _, pr := range c.Deny {
		p.deny = append(p.deny, unmapPrefix(pr))
	}
	p.cfgString = describe(c)
	return p, nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96), so that
// it matches the unmapped addresses Check looks at.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Check returns nil when ap may be dialled, else a *RefusedError naming the
// rule (errors.Is(err, ErrRefused)).
func (p *Policy) Check(ap netip.AddrPort) error {
	a := ap.Addr().Unmap().WithZone("")
	if !a.IsValid() {
		return &RefusedError{Addr: ap, Rule: RuleInvalid}
	}
	ap = netip.AddrPortFrom(a, ap.Port())
	for _, pr := range p.deny {
		if pr.Contains(a) {
			return &RefusedError{Addr: ap, Rule: RuleDeny, Prefix: pr}
		}
	}
	if p.reserved(ap) {
		return &RefusedError{Addr: ap, Rule: RuleReserved}
	}
	if ap.Port() == 0 {
		return &RefusedError{Addr: ap, Rule: RulePortZero}
	}
	for _, pr := range p.allow {
		if pr.Contains(a) {
			return nil
		}
	}
	for _, b := range builtin {
		if b.prefix.Contains(a) {
			if b.rule == RuleLoopback && p.loopback {
				return nil
			}
			return &RefusedError{Addr: ap, Rule: b.rule, Prefix: b.prefix}
		}
	}
	return nil
}

// reserved: ap is one of the gateway's own or store addresses.
func (p *Policy) reserved(ap netip.AddrPort) bool {
	if p.exact[ap] {
		return true
	}
	a := ap.Addr()
	return p.anyLocal[ap.Port()] && (a.IsUnspecified() || a.IsLoopback() || p.local[a])
}

// String describes the policy for the startup log.
func (p *Policy) String() string { return p.cfgString }

func describe(c Config) string {
	var b strings.Builder
	b.WriteString("reserved=")
	seen := map[netip.AddrPort]bool{}
	for _, list := range [][]netip.AddrPort{c.Self, c.Store} {
		for _, ap := range list {
			if seen[ap] {
				continue
			}
			if len(seen) > 0 {
				b.WriteByte(',')
			}
			seen[ap] = true
			b.WriteString(ap.String())
		}
	}
	fmt.Fprintf(&b, " loopback=%t allow=%v deny=%v", c.AllowLoopback, c.Allow, c.Deny)
	return b.String()
}

// ParsePrefixes parses a comma-separated list of CIDRs (a bare address is
// a /32 or /128), as --egress-allow and --egress-deny take them.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an IP address", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR: %w", f, err)
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}
