package gateway

import (
	"net/url"
	"testing"

	"github.com/meridian-sd/meridian/failover"
)

// A lookup without a query gets the default policy resolved once; a query's
// overrides and a service's own policy never leak into it, and an invalid
// default is refused every time.
func TestPolicyForPlainDefault(t *testing.T) {
	s := &Server{cfg: Config{Routing: RoutingConfig{
		Default:  failover.Policy{Mode: failover.Mode("ordered"), Regions: []string{"eu-west", "us-east"}},
		Services: map[string]failover.Policy{"db": {Mode: failover.Mode("nearest")}},
	}}}
	want := s.cfg.Routing.Default.WithDefaults()
	for i, c := range []struct {
		service string
		q       url.Values
		mode    string
	}{
		{"web", nil, "ordered"},
		{"web", url.Values{"policy": {"local"}}, "local"},
		{"web", url.Values{}, "ordered"},
		{"db", nil, "nearest"},
		{"web", nil, "ordered"},
		{"web", url.Values{"panic_threshold": {"0.2"}}, "ordered"},
		{"web", nil, "ordered"},
	} {
		p, err := s.policyFor(c.service, c.q)
		if err != nil {
			t.Fatalf("%d: policyFor(%s, %v): %v", i, c.service, c.q, err)
		}
		if string(p.Mode) != c.mode {
			t.Errorf("%d: policyFor(%s, %v) mode %q, want %q", i, c.service, c.q, p.Mode, c.mode)
		}
		if c.service == "web" && len(c.q) == 0 && (p.PanicThreshold != want.PanicThreshold || p.NearestN != want.NearestN ||
			p.StalenessBound != want.StalenessBound || !*p.ZonePreference || len(p.Regions) != 2) {
			t.Errorf("%d: the plain default policy %+v, want %+v", i, p, want)
		}
	}
	bad := &Server{cfg: Config{Routing: RoutingConfig{Default: failover.Policy{Mode: failover.Mode("sideways")}}}}
	for i := range 2 {
		if _, err := bad.policyFor("web", nil); err == nil {
			t.Fatalf("%d: an invalid default policy was accepted", i)
		}
	}
}
