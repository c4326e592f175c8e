package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// runHookedLog is runHooked with the event log kept.
func runHookedLog(t *testing.T, sc *scenarios.Scenario, seed uint64, hooks testHooks) (*Result, string) {
	t.Helper()
	var log bytes.Buffer
	opts := Options{Seed: seed, EventLog: &log}
	cfg, err := prepare(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWorld(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	w.hooks = hooks
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	return w.result(), log.String()
}

// wantAllLogged checks that every violation of inv is in the event log
// with the router's explanation, not only the examples the Result keeps.
func wantAllLogged(t *testing.T, r *Result, log, inv string) {
	t.Helper()
	n := strings.Count(log, `"invariant":"`+inv+`"`)
	if got := invariant(r, inv).Count; n != got {
		t.Errorf("%s: %d violations, %d in the event log", inv, got, n)
	}
	if strings.Count(log, `"explanation":`) < n {
		t.Errorf("%s: violations logged without the router's explanation", inv)
	}
	marks := 0
	for _, v := range r.Timeline.Violations {
		if v.Invariant == inv {
			marks++
		}
	}
	if marks != n {
		t.Errorf("%s: %d timeline marks for %d violations", inv, marks, n)
	}
	for _, v := range r.Violations {
		if v.Invariant == inv && v.Explanation == "" {
			t.Errorf("%s example without explanation: %s", inv, v.Detail)
		}
	}
}

// A core that believes a cut-off region reachable spills traffic into it.
// The gateway's own view says reachable too, so only the network's truth
// can catch it.
func TestUnreachableJudgedByNetwork(t *testing.T) {
	sc := twoRegions(6 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(30 * time.Second), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}},
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "us-east", Service: "web", Count: 3},
	}
	r := runHooked(t, sc, 3, testHooks{})
	wantQuiet(t, r, InvUnreachable)
	yes := true
	r, log := runHookedLog(t, sc, 3, testHooks{routeView: func(gw string, v *routeViewTweak) {
		if strings.HasPrefix(gw, "us-east") && v.Region == "eu-west" {
			v.Reachable = &yes
		}
	}})
	wantFired(t, r, InvUnreachable)
	wantAllLogged(t, r, log, InvUnreachable)
	first := r.Violations[0]
	for _, v := range r.Violations {
		if v.Invariant == InvUnreachable {
			first = v
			break
		}
	}
	// Not before the cut has lasted the detection bound.
	if d := detectionBound(mustProfile(t, "lan"), 4); first.At < 30*time.Second+d {
		t.Errorf("first violation at %s, before the cut (30s) + detection bound %s", first.At, d)
	}
	if !strings.Contains(first.Detail, "cut off from us-east") {
		t.Errorf("detail %q", first.Detail)
	}
}

// An ordered policy that leaves out a healthy reachable region: with its
// only listed region cut off and its own instances dead, the router sends
// lookups to the cut-off region, and that is not a violation.
func TestOrderedPolicyOmitsRegion(t *testing.T) {
	sc, err := scenarios.Builtin("ordered-omits-region")
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		r, sum := runOK(t, sc, Options{Seed: seed})
		if !r.Passed() || r.Metrics.UnreachableSent != 0 {
			t.Fatalf("seed %d:\n%s", seed, sum)
		}
	}
	// The same world with a listed region that stays reachable (ap-south
	// after eu-west) must route there instead: the check still bites when
	// a router sends into the cut while an allowed region could serve.
	sc.Traffic[0].Policy.Regions = []string{"eu-west", "ap-south"}
	yes, no := true, false
	r := runHooked(t, sc, 1, testHooks{routeView: func(gw string, v *routeViewTweak) {
		if strings.HasPrefix(gw, "us-east") && v.Region == "eu-west" {
			v.Reachable, v.Stale = &yes, &no // the core never notices the cut
		}
	}})
	wantFired(t, r, InvUnreachable)
}

// A core that never says its replica is stale while it falls behind the
// region's store: registrations in a cut-off region, no instance dies, so
// only the committed versions show the lie.
func TestStalenessJudgedByStore(t *testing.T) {
	sc := twoRegions(5 * time.Minute)
	sc.Services[0].Regions = []string{"eu-west"}
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}, For: dur(2 * time.Minute)},
		{At: dur(70 * time.Second), Kind: scenarios.FaultRegisterStorm, Region: "eu-west", Service: "web", Count: 5, Over: dur(5 * time.Second)},
	}
	wantQuiet(t, runHooked(t, sc, 2, testHooks{}), InvStaleness)
	no := false
	r, log := runHookedLog(t, sc, 2, testHooks{routeView: func(gw string, v *routeViewTweak) {
		if strings.HasPrefix(gw, "us-east") && v.Region == "eu-west" {
			v.Stale = &no
		}
	}})
	wantFired(t, r, InvStaleness)
	wantAllLogged(t, r, log, InvStaleness)
	for _, v := range r.Violations {
		if v.Invariant == InvStaleness && !strings.Contains(v.Detail, "behind the store") {
			t.Fatalf("caught by something else than the store's version: %s", v.Detail)
		}
	}
}

func TestBehindSince(t *testing.T) {
	rs := &regionSim{commits: []commitRec{{1, 0}, {2, 5}, {4, 9}, {5, 12}}}
	for _, tc := range []struct {
		v      uint64
		since  time.Duration
		behind bool
	}{{0, 0, true}, {1, 5, true}, {2, 9, true}, {3, 9, true}, {4, 12, true}, {5, 0, false}, {9, 0, false}} {
		since, behind := rs.behindSince(tc.v)
		if since != tc.since || behind != tc.behind {
			t.Errorf("behindSince(%d) = %v, %v; want %v, %v", tc.v, since, behind, tc.since, tc.behind)
		}
	}
}

func mustProfile(t *testing.T, name string) gossip.Profile {
	t.Helper()
	p, err := gossip.ProfileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
