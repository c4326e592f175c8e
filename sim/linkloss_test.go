package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// lossyLink is regions (one gateway each) on the local profile with the
// us-east <-> eu-west link losing loss of its packets from 5m for 30m, in
// a 40m run.
func lossyLink(regions []string, loss float64) *scenarios.Scenario {
	sc := threeRegions(40 * time.Minute)
	sc.Topology.GossipProfile = gossip.Local
	sc.Topology.Regions = nil
	for _, r := range regions {
		sc.Topology.Regions = append(sc.Topology.Regions, scenarios.Region{Name: r})
	}
	sc.Traffic = nil
	sc.Timeline = []scenarios.Fault{{At: dur(5 * time.Minute), Kind: scenarios.FaultDegrade,
		From: "us-east", To: "eu-west", Loss: loss, For: dur(30 * time.Minute)}}
	return sc
}

// TestLinkLossReachesMembership: loss on a link that no third region
// bridges makes the two ends mark each other failed now and then, and see
// each other alive again, as real Serf does (gossip.LossSpells; measured
// on real Serf, local, 60%: 165 to 177 false failures an hour, both ends,
// down about 7s each); nothing before the loss starts or after it ends
// (but for spells still running); and with a third region to relay
// indirect probes, none at all (real Serf: none in 20m at 30%,
// gossip.TestLossyLinkSerf).
func TestLinkLossReachesMembership(t *testing.T) {
	start, end := 5*time.Minute, 35*time.Minute
	for _, seed := range []uint64{1, 2} {
		failed := memberDelays(t, lossyLink([]string{"us-east", "eu-west"}, 0.6), seed, 0, "failed")
		alive := memberDelays(t, lossyLink([]string{"us-east", "eu-west"}, 0.6), seed, start, "alive")
		var n int
		for _, r := range []string{"us-east", "eu-west"} {
			for _, at := range failed[r] {
				if at < start || at >= end {
					t.Errorf("seed %d: %s saw a failure at %v, outside the loss (%v to %v)", seed, r, at, start, end)
				}
			}
			n += len(failed[r])
		}
		// Real Serf: 165-177 an hour, so 82-89 in 30m; the model (within
		// a factor 2 of real, TestLossModelMatchesSerf) gives about 128.
		if n < 40 || n > 225 {
			t.Errorf("seed %d: %d false failures in 30m of 60%% loss (both ends), want 40 to 225 (real Serf: about 85)", seed, n)
		}
		t.Logf("seed %d: %d false failures in 30m of 60%% loss", seed, n)
		var back int
		for _, r := range []string{"us-east", "eu-west"} {
			back += len(alive[r])
		}
		if back < n-2 {
			t.Errorf("seed %d: %d false failures but only %d seen alive again", seed, n, back)
		}
	}
	relayed := memberDelays(t, lossyLink([]string{"us-east", "eu-west", "ap-south"}, 0.6), 1, 0, "failed")
	if len(relayed) != 0 {
		t.Errorf("with a third region to relay: false failures %v, want none", relayed)
	}
}

// TestLinkLossDeterministic: the loss spells come from per-pair seeded
// streams, so a run replays byte for byte.
func TestLinkLossDeterministic(t *testing.T) {
	var logs [2]bytes.Buffer
	for i := range logs {
		runOK(t, lossyLink([]string{"us-east", "eu-west"}, 0.3), Options{Seed: 3, EventLog: &logs[i]})
	}
	if !bytes.Equal(logs[0].Bytes(), logs[1].Bytes()) {
		t.Errorf("two runs of a lossy link with seed 3 wrote different event logs")
	}
	if !bytes.Contains(logs[0].Bytes(), []byte(`"status":"failed"`)) {
		t.Errorf("30%% loss for 30m between two regions on the local profile: no false failure in the log")
	}
}
