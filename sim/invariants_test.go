package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// testWorld builds the world of a scenario and seed without running it;
// its stores are closed when the test ends.
func testWorld(t *testing.T, sc *scenarios.Scenario, seed uint64) *world {
	t.Helper()
	cfg, err := prepare(sc, Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWorld(cfg, Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.closeStores)
	return w
}

// wantFaultParse parses base (a scenario ending in "timeline:") with each
// case's fault appended: want "" means it must parse, otherwise the error
// must mention want.
func wantFaultParse(t *testing.T, base string, cases []struct{ fault, want string }) {
	t.Helper()
	for _, tc := range cases {
		_, err := scenarios.Parse("x.yaml", []byte(base+"  - "+tc.fault+"\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.fault, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.fault, err, tc.want)
		}
	}
}

// runHooked runs a scenario with test hooks installed.
func runHooked(t *testing.T, sc *scenarios.Scenario, seed uint64, hooks testHooks) *Result {
	t.Helper()
	w := testWorld(t, sc, seed)
	w.hooks = hooks
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	return w.result()
}

func twoRegions(d time.Duration) *scenarios.Scenario {
	return &scenarios.Scenario{
		Name: "two-regions", Duration: dur(d),
		Topology: scenarios.Topology{Regions: []scenarios.Region{{Name: "us-east", Gateways: 2}, {Name: "eu-west", Gateways: 2}}},
		Services: []scenarios.Service{{Name: "web", Instances: 4, Interval: dur(5 * time.Second)}},
		Traffic:  []scenarios.Traffic{{From: "us-east", Service: "web", Rate: 20}, {From: "eu-west", Service: "web", Rate: 20}},
	}
}

func wantFired(t *testing.T, r *Result, inv string) {
	t.Helper()
	got := invariant(r, inv)
	if got.Count == 0 {
		t.Fatalf("%s did not fire", inv)
	}
	if r.Passed() {
		t.Fatalf("a run with %s violations passed", inv)
	}
	for _, v := range r.Violations {
		if v.Invariant == inv {
			t.Logf("%s: %d violations, first at %s: %s", inv, got.Count, v.At, v.Detail)
			return
		}
	}
	t.Fatalf("%s fired %d times but kept no example", inv, got.Count)
}

func wantQuiet(t *testing.T, r *Result, inv string) {
	t.Helper()
	if got := invariant(r, inv); got.Count != 0 {
		t.Fatalf("%s fired %d times without the injected bug", inv, got.Count)
	}
}

func TestVersionMonotonicFires(t *testing.T) {
	sc := twoRegions(3 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Count: 1}}
	wantQuiet(t, runHooked(t, sc, 1, testHooks{}), InvVersionMonotonic)
	seen := 0
	r := runHooked(t, sc, 1, testHooks{corruptVersion: func(gw, reg string, v uint64) uint64 {
		if gw == "us-east-1" && reg == "eu-west" {
			if seen++; seen == 4 {
				return 1 // a replica that went back
			}
		}
		return v
	}})
	wantFired(t, r, InvVersionMonotonic)
}

// Lookups from us-east can only go to eu-west, which is cut off and whose
// instances then die. us-east's replica of eu-west is marked stale, so
// serving it is allowed; a view that forgets to say so breaks the invariant.
func TestStalenessFires(t *testing.T) {
	sc := twoRegions(4 * time.Minute)
	sc.Services[0].Regions = []string{"eu-west"}
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}},
		{At: dur(90 * time.Second), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Fraction: 1},
	}
	wantQuiet(t, runHooked(t, sc, 2, testHooks{}), InvStaleness)
	no := false
	r := runHooked(t, sc, 2, testHooks{routeView: func(gw string, v *routeViewTweak) {
		if strings.HasPrefix(gw, "us-east") && v.Region == "eu-west" {
			v.Stale = &no
		}
	}})
	wantFired(t, r, InvStaleness)
}

// This one needs no injected bug: when most local instances fail during a
// partition, the router spills the rest of the traffic to the only other
// region even though it is unreachable (Route ranks unreachable regions
// last but still gives them the share the local region cannot take).
func TestUnreachableFires(t *testing.T) {
	sc := twoRegions(4 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "us-east", Service: "web", Count: 3},
	}
	wantQuiet(t, runHooked(t, sc, 3, testHooks{}), InvUnreachable)
	sc.Timeline = append(sc.Timeline, scenarios.Fault{At: dur(30 * time.Second), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}})
	// The router keeps the spillover inside reachable regions: with most of
	// us-east down and eu-west cut off, nothing goes to eu-west.
	wantQuiet(t, runHooked(t, sc, 3, testHooks{}), InvUnreachable)
	// A router that believes eu-west reachable spills into it.
	r := runHooked(t, sc, 3, testHooks{routerSees: func(gw string, v *failover.RegionView) {
		if v.Name == "eu-west" {
			v.Reachable = true
		}
	}})
	wantFired(t, r, InvUnreachable)
	if r.Metrics.UnreachableSent != int64(invariant(r, InvUnreachable).Count) {
		t.Errorf("unreachable_sent %d != violations %d", r.Metrics.UnreachableSent, invariant(r, InvUnreachable).Count)
	}
}

func TestLostAckFires(t *testing.T) {
	sc := twoRegions(4 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultRegisterStorm, Region: "eu-west", Service: "web", Count: 10, Over: dur(10 * time.Second)}}
	r := runHooked(t, sc, 4, testHooks{})
	wantQuiet(t, r, InvNoLostAck)
	if inv := invariant(r, InvNoLostAck); !inv.Checked {
		t.Fatalf("not checked: %s", inv.Note)
	}
	r = runHooked(t, sc, 4, testHooks{beforeFinalCheck: func(gw, reg string, cat *region.Catalog) {
		if gw == "us-east-2" && reg == "eu-west" {
			// The replica lost the first storm registration.
			cat.Apply(region.Change{Version: cat.Version() + 1, Op: region.OpDelete, Service: "web", ID: "web-eu-west-5"})
		}
	}})
	wantFired(t, r, InvNoLostAck)
}

// A run too short to settle after its last fault does not claim to have
// checked no_lost_ack.
func TestLostAckNeedsSettle(t *testing.T) {
	sc := twoRegions(3 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(2 * time.Minute), Kind: scenarios.FaultGatewayCrash, Region: "eu-west", For: dur(10 * time.Second)}}
	r := runHooked(t, sc, 5, testHooks{})
	inv := invariant(r, InvNoLostAck)
	if inv.Checked || !strings.Contains(inv.Note, "not checked") {
		t.Fatalf("no_lost_ack %+v: want not checked (the last fault ended 50s before the end, settle is 2m)", inv)
	}
}
