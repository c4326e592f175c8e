package gateway

import (
	"net/url"

	"github.com/meridian-sd/meridian/failover"
	"testing"
)

// A routed lookup answered from the route cache costs no more garbage
// than a plain service list: key, fingerprint, views and policy are built
// without allocating on a hit.
func TestLookupAllocsNoMoreThanServices(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items at random)")
	}
	g := newLookupGateway(t, 3)
	services, _ := lookupAllocs(t, g.h, "/v1/services/web")
	lookup, n := lookupAllocs(t, g.h, "/v1/lookup/web")
	t.Logf("GET /v1/services/web %v allocs, GET /v1/lookup/web %v allocs (%d bytes)", services, lookup, n)
	if lookup > services {
		t.Errorf("GET /v1/lookup/web: %v allocations, more than GET /v1/services/web's %v", lookup, services)
	}
}

// policyFor shares its ZonePreference pointers between requests; a query
// turning the preference off must not turn it off for the next request.
func TestPolicyForZonePreferenceShared(t *testing.T) {
	s := &Server{}
	off, err := s.policyFor("web", url.Values{"zone_preference": {"false"}})
	if err != nil || *off.ZonePreference {
		t.Fatalf("zone_preference=false: %+v %v", off, err)
	}
	def, err := s.policyFor("web", nil)
	if err != nil || !*def.ZonePreference {
		t.Fatalf("default after zone_preference=false: zone preference %v %v", *def.ZonePreference, err)
	}
	req := func(p failover.Policy) failover.Request { return failover.Request{Service: "web", Policy: p} }
	if key := routeKey(req(def)); key == routeKey(req(off)) {
		t.Fatalf("the route key does not tell zone preference on from off: %q", key)
	}
}
