package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// The availability oracle stays quiet on correct routing and fires when
// the router stops using a steady, healthy, reachable region it may use.
func TestLiveRegionOracle(t *testing.T) {
	sc := threeRegions(10 * time.Minute)
	sc.Traffic[0].Policy = failoverOrdered("eu-west", "ap-south")
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "us-east", Service: "web", Fraction: 1},
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Count: 3},
	}
	r := runHooked(t, sc, 1, testHooks{})
	wantQuiet(t, r, InvLiveRegion)

	// A router that sees ap-south's instances critical has nowhere good
	// to go (panic sends everything to us-east's dead instances).
	r = runHooked(t, sc, 1, testHooks{routerSees: func(gw string, v *failover.RegionView) {
		if v.Name != "ap-south" || !strings.HasPrefix(gw, "us-east") {
			return
		}
		ins := make([]region.Instance, len(v.Instances))
		copy(ins, v.Instances)
		for i := range ins {
			ins[i].Status = region.StatusCritical
		}
		v.Instances = ins
	}})
	wantFired(t, r, InvLiveRegion)
	v := r.Violations[len(r.Violations)-1]
	for _, x := range r.Violations {
		if x.Invariant == InvLiveRegion {
			v = x
		}
	}
	if !strings.Contains(v.Detail, "ap-south reachable with 4/4 instances serving") || v.Explanation == "" {
		t.Errorf("violation %+v: want it to name ap-south and carry the router's explanation", v)
	}
}
