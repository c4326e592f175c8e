package sim

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// memberDelays runs sc and returns, for every member event of the given
// status logged at or after since, how long after since it came, keyed by
// observer region ("us-east" for us-east-1).
func memberDelays(t *testing.T, sc *scenarios.Scenario, seed uint64, since time.Duration, status string) map[string][]time.Duration {
	t.Helper()
	var log bytes.Buffer
	if _, err := Run(sc, Options{Seed: seed, EventLog: &log}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out := map[string][]time.Duration{}
	for line := range strings.Lines(log.String()) {
		var ev struct {
			T        string `json:"t"`
			Kind     string `json:"kind"`
			Observer string `json:"observer"`
			Status   string `json:"status"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event log line %q: %v", line, err)
		}
		if ev.Kind != "member" || ev.Status != status {
			continue
		}
		at, err := time.ParseDuration(ev.T)
		if err != nil {
			t.Fatal(err)
		}
		if at < since {
			continue
		}
		r := ev.Observer[:strings.LastIndexByte(ev.Observer, '-')]
		out[r] = append(out[r], at-since)
	}
	for _, ds := range out {
		slices.Sort(ds)
	}
	return out
}

// wanRegions are six one-gateway regions: with six members the wan
// profile expects k = 4 confirmations (fewer than six members: none).
var wanRegions = []string{"us-east", "eu-west", "ap-south", "sa-east", "us-west", "eu-north"}

// wanWorld is the six regions on the wan profile.
func wanWorld(d time.Duration) *scenarios.Scenario {
	sc := threeRegions(d)
	sc.Topology.GossipProfile = gossip.WAN
	sc.Topology.Regions = nil
	for _, r := range wanRegions {
		sc.Topology.Regions = append(sc.Topology.Regions, scenarios.Region{Name: r})
	}
	sc.Traffic = nil
	return sc
}

// TestPartitionUsesDetectCut: a member cut off from everyone gets no
// confirmations of its suspicions, so it marks the others failed no
// sooner than SuspicionMax (wan, 6 members: 3m), while the majority,
// whose members confirm each other, sees it failed well before that.
// The crash model (DetectFailure) for every partition, as before, had the
// isolated side notice as fast as the majority.
func TestPartitionUsesDetectCut(t *testing.T) {
	prof, _ := gossip.ProfileByName(gossip.WAN)
	n := len(wanRegions)
	if prof.Confirmations(n) == 0 {
		t.Fatalf("wan with %d members expects no confirmations: the test needs a bigger pool", n)
	}
	cutAt := time.Minute
	for seed := uint64(1); seed <= 3; seed++ {
		sc := wanWorld(15 * time.Minute)
		sc.Timeline = []scenarios.Fault{{At: dur(cutAt), Kind: scenarios.FaultPartition,
			Groups: [][]string{{"ap-south"}, without(wanRegions, "ap-south")}, For: dur(10 * time.Minute)}}
		failed := memberDelays(t, sc, seed, cutAt, "failed")
		iso := failed["ap-south"]
		var major []time.Duration
		for _, r := range without(wanRegions, "ap-south") {
			major = append(major, failed[r]...)
		}
		if len(iso) != n-1 || len(major) != n-1 {
			t.Fatalf("seed %d: failed events: isolated %v, majority %v; want %d each", seed, iso, major, n-1)
		}
		if iso[0] < prof.SuspicionMax(n) {
			t.Errorf("seed %d: the isolated member saw the others failed after %v, before SuspicionMax %v (all: %v)",
				seed, iso[0], prof.SuspicionMax(n), iso)
		}
		slices.Sort(major)
		if major[len(major)-1] >= prof.SuspicionMax(n) {
			t.Errorf("seed %d: the majority saw the isolated failed only after %v (SuspicionMax %v)", seed, major, prof.SuspicionMax(n))
		}
		t.Logf("seed %d: isolated %v, majority %v", seed, iso, major)
	}
}

// TestRestartUsesRestart: a gateway that crashed and restarts refutes its
// death at once, so the others see it alive within a few gossip rounds
// (real Serf, wan: ~1s), not after a reconnect period as a healed cut
// (Rejoin: ~tens of seconds, as before).
func TestRestartUsesRestart(t *testing.T) {
	crashAt, down := time.Minute, 3*time.Minute
	var all []time.Duration
	for seed := uint64(1); seed <= 5; seed++ {
		sc := wanWorld(10 * time.Minute)
		sc.Timeline = []scenarios.Fault{{At: dur(crashAt), Kind: scenarios.FaultGatewayCrash, Gateway: "us-east-1", For: dur(down)}}
		alive := memberDelays(t, sc, seed, crashAt+down, "alive")
		var seen []time.Duration
		for r, ds := range alive {
			if r != "us-east" {
				seen = append(seen, ds...)
			}
		}
		if len(seen) != len(wanRegions)-1 {
			t.Fatalf("seed %d: alive events about the restarted gateway: %v, want %d", seed, seen, len(wanRegions)-1)
		}
		all = append(all, seen...)
	}
	slices.Sort(all)
	if med := all[len(all)/2]; med > 5*time.Second {
		t.Errorf("restarted gateway seen alive after a median %v, want ≤ 5s (all: %v)", med, all)
	}
	t.Logf("restart seen after %v", all)
}

// without returns names minus drop.
func without(names []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == drop })
}

// TestOneWayCutMembership: a one-way cut is a cut for membership when no
// third region relays (acks and refutations are lost: real Serf marks both
// sides failed, modelcheck_test.go), and nothing at all when one does
// (memberlist's indirect probes go around it).
func TestOneWayCutMembership(t *testing.T) {
	cutAt := time.Minute
	for _, tc := range []struct {
		regions []string
		failed  int // failed events, both directions
	}{
		{[]string{"us-east", "eu-west"}, 2},
		{[]string{"us-east", "eu-west", "ap-south"}, 0},
	} {
		sc := wanWorld(10 * time.Minute)
		sc.Topology.Regions = nil
		for _, r := range tc.regions {
			sc.Topology.Regions = append(sc.Topology.Regions, scenarios.Region{Name: r})
		}
		sc.Timeline = []scenarios.Fault{{At: dur(cutAt), Kind: scenarios.FaultCut, From: "us-east", To: "eu-west", For: dur(5 * time.Minute)}}
		failed := memberDelays(t, sc, 1, cutAt, "failed")
		got := 0
		for _, ds := range failed {
			got += len(ds)
		}
		if got != tc.failed {
			t.Errorf("%d regions, one-way cut us-east -> eu-west: %d failed events %v, want %d", len(tc.regions), got, failed, tc.failed)
		}
	}
}
