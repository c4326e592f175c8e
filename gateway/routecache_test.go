package gateway

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
)

func TestRouteFingerprintChangesWithEveryInput(t *testing.T) {
	base := []failover.RegionView{
		{Name: "us-east", Version: 7, Reachable: true},
		{Name: "eu-west", Version: 3, Reachable: true, Stale: true, Age: 10 * time.Second, RTT: 40 * time.Millisecond, HasRTT: true},
	}
	p := failover.Policy{Mode: failover.ModeLocal, StalenessBound: 30 * time.Second}
	stamps := []region.Stamp{{Gen: 1, Changed: 7}, {Gen: 2, Changed: 3}}
	fp := routeFingerprint(base, stamps, p)
	for name, st := range map[string][]region.Stamp{
		"local service changed":  {{Gen: 1, Changed: 8}, {Gen: 2, Changed: 3}},
		"remote service changed": {{Gen: 1, Changed: 7}, {Gen: 2, Changed: 4}},
		"remote catalog reload":  {{Gen: 1, Changed: 7}, {Gen: 5, Changed: 3}},
	} {
		if routeFingerprint(base, st, p) == fp {
			t.Errorf("%s: fingerprint did not change", name)
		}
	}
	other := append([]failover.RegionView(nil), base...)
	other[0].Version, other[1].Version = 99, 98 // writes to other services
	if routeFingerprint(other, stamps, p) != fp {
		t.Error("a write to another service changed the fingerprint")
	}
	change := map[string]func(v []failover.RegionView){
		"reachability":             func(v []failover.RegionView) { v[1].Reachable = false },
		"staleness":                func(v []failover.RegionView) { v[1].Stale = false },
		"age as the text shows it": func(v []failover.RegionView) { v[1].Age = 11 * time.Second },
		"rtt":                      func(v []failover.RegionView) { v[1].RTT++ },
		"rtt estimate gone":        func(v []failover.RegionView) { v[1].HasRTT = false },
		"age crosses the bound": func(v []failover.RegionView) {
			v[1].Age = 30*time.Second + 400*time.Millisecond // reads "30s", like 29.6s below
		},
	}
	for name, f := range change {
		v := append([]failover.RegionView(nil), base...)
		if name == "age crosses the bound" {
			base2 := append([]failover.RegionView(nil), base...)
			base2[1].Age = 29*time.Second + 600*time.Millisecond
			fp2 := routeFingerprint(base2, stamps, p)
			f(v)
			if routeFingerprint(v, stamps, p) == fp2 {
				t.Errorf("%s: fingerprint did not change", name)
			}
			continue
		}
		f(v)
		if routeFingerprint(v, stamps, p) == fp {
			t.Errorf("%s: fingerprint did not change", name)
		}
	}
	same := append([]failover.RegionView(nil), base...)
	same[1].Age += 200 * time.Millisecond // still reads 10s, still inside the bound
	if routeFingerprint(same, stamps, p) != fp {
		t.Error("an age change the explanation does not show changed the fingerprint")
	}
}

func TestRouteKeySeparatesRequests(t *testing.T) {
	yes := true
	base := failover.Request{Service: "web", FromZone: "a", Tags: []string{"v2"}, Policy: failover.Policy{Mode: failover.ModeLocal}, Limit: 3}
	variants := []func(r *failover.Request){
		func(r *failover.Request) { r.Service = "api" },
		func(r *failover.Request) { r.FromZone = "b" },
		func(r *failover.Request) { r.Tags = []string{"v3"} },
		func(r *failover.Request) { r.Tags = nil },
		func(r *failover.Request) { r.Policy.Mode = failover.ModeNearest },
		func(r *failover.Request) { r.Policy.Regions = []string{"eu-west"} },
		func(r *failover.Request) { r.Policy.NearestN = 2 },
		func(r *failover.Request) { r.Policy.Overprovisioning = 1.2 },
		func(r *failover.Request) { r.Policy.PanicThreshold = 0.3 },
		func(r *failover.Request) { r.Policy.StalenessBound = time.Minute },
		func(r *failover.Request) { r.Policy.ZonePreference = &yes },
		func(r *failover.Request) { r.Limit = 0 },
	}
	seen := map[string]int{routeKey(base): -1}
	for i, f := range variants {
		r := base
		r.Policy.Regions = append([]string(nil), base.Policy.Regions...)
		f(&r)
		k := routeKey(r)
		if j, dup := seen[k]; dup {
			t.Errorf("variant %d has the same key as %d", i, j)
		}
		seen[k] = i
	}
}
