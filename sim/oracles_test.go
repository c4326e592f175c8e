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

// Regression (sim fuzz seed 574): with ap-south cut off one way from
// eu-west and every us-east gateway crashed, both regions are unreachable
// to eu-west's router, which picks ap-south by name. us-east's instances
// are still up and its network path fine, but with no gateway running no
// design can see it reachable: no_unreachable_sent must not blame the
// router for not sending there.
func TestUnreachableNeedsAGatewayToSeeTheRegion(t *testing.T) {
	sc := threeRegions(8 * time.Minute)
	sc.Services[0].Regions = []string{"us-east", "ap-south"}
	sc.Traffic = []scenarios.Traffic{{From: "eu-west", Service: "web", Rate: 20}}
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultCut, From: "eu-west", To: "ap-south"},
		{At: dur(time.Minute), Kind: scenarios.FaultGatewayCrash, Region: "us-east"},
	}
	wantQuiet(t, runHooked(t, sc, 1, testHooks{}), InvUnreachable)
	// With one us-east gateway running, us-east is the place to go.
	sc.Timeline[1] = scenarios.Fault{At: dur(time.Minute), Kind: scenarios.FaultGatewayCrash, Gateway: "us-east-1"}
	r := runHooked(t, sc, 1, testHooks{})
	wantQuiet(t, r, InvUnreachable)
	// Until two fetches of ap-south time out (UnreachableAfter) the
	// one-way cut is invisible: about a minute of dead lookups in eight.
	if r.Metrics.Availability < 0.85 {
		t.Errorf("availability %.4f with us-east-2 up: eu-west should be served from us-east", r.Metrics.Availability)
	}
}
