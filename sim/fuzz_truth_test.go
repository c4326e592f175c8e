package sim

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// A replica that follows a region_reset is judged against the region's
// new life from then on (fuzz seeds 124, 537): the new life's v1 after
// the reset's v0 is no regression although the old life had reached v9,
// nor is the new life's v5 after the old life's v9 when the new life had
// climbed past v9 before the replica followed it; going back within the
// new life still is.
func TestVersionMonotonicRestartsFromFollowedReset(t *testing.T) {
	w := testWorld(t, twoRegions(3*time.Minute), 1)
	g, rs := w.gwByName["eu-west-1"], w.regionByName("us-east")
	reset := func() {
		w.mutfed().resets[rs.idx]++
		rs.commits = nil
	}
	commit := func(from, to uint64) {
		for v := from; v <= to; v++ {
			w.now += time.Millisecond
			rs.commits = append(rs.commits, commitRec{version: v, at: w.now})
		}
	}
	want := func(what string, n int) {
		t.Helper()
		if got := w.m.viol[InvVersionMonotonic].count; got != n {
			t.Fatalf("%s: %d version_monotonic violation(s), want %d", what, got, n)
		}
	}
	g.lastVer, g.lastAt = map[string]uint64{}, map[string]time.Duration{}
	w.checkVersion(g, "us-east", 9)
	reset()
	w.checkVersion(g, "us-east", 0) // the replica follows the reset
	commit(1, 9)
	w.checkVersion(g, "us-east", 1)
	w.checkVersion(g, "us-east", 9)
	want("following a reset, then its new life v1, v9", 0)
	reset()
	commit(1, 12) // the new life passes v9 before the replica follows it
	w.checkVersion(g, "us-east", 5)
	want("the old life's v9, then the new life's v5", 0)
	w.checkVersion(g, "us-east", 12)
	w.checkVersion(g, "us-east", 7)
	want("v12 back to v7 in the same life", 1)
}

// While store_flaky loses every write's reply, a write the store applied
// is the registry's truth although its caller never learns it (fuzz seed
// 156: a health write that set an instance passing again was applied with
// its reply lost; the world kept it critical and judged every lookup that
// returned it, from caches that had the store's passing, a staleness lie).
func TestStoreFlakyAppliedWriteIsTheTruth(t *testing.T) {
	w := testWorld(t, twoRegions(3*time.Minute), 1)
	rs := w.regionByName("us-east")
	in := rs.bySvc[0][0]
	w.applyFault(&scenarios.Fault{Kind: scenarios.FaultStoreFlaky, Region: "us-east"})
	// The first lost write is applied, the second is not.
	for i, st := range []region.Status{region.StatusCritical, region.StatusPassing} {
		if _, err := rs.store.Put(w.ctx, in.record(w, st), region.Cond{}); err == nil {
			t.Fatalf("write %d through a flaky store: no error", i)
		}
	}
	snap, err := rs.mem.Snapshot(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stored region.Status
	for _, x := range snap.Instances {
		if x.Key() == in.key {
			stored = x.Status
		}
	}
	if stored != region.StatusCritical || in.regStatus != stored {
		t.Fatalf("store holds %s, the world's registry truth %s; want both critical", stored, in.regStatus)
	}
	if n := len(rs.commits); n == 0 || rs.commits[n-1].version != snap.Version {
		t.Fatalf("commits end at %v, the store is at v%d", rs.commits, snap.Version)
	}
}

// Instances a region_reset lost count as deregistered from when their
// region's gateways are back, not from the reset (fuzz seed 94): until
// then the region is unreachable and other regions' replicas of it read
// stale; once a gateway is alive again (advertising v0, below the
// replica) the replica reads fresh until the first fetch tells its core
// otherwise, a round trip later, which is within any staleness bound of
// the return but not of the reset.
func TestRegionResetLostInstancesStaleFromReturn(t *testing.T) {
	sc, err := scenarios.Load("testdata/fuzz-94-reset-stale.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := runOK(t, sc, Options{Seed: 94})
	if inv := invariant(r, InvStaleness); inv.Count != 0 {
		t.Errorf("%d staleness_stated violation(s): %+v", inv.Count, r.Violations)
	}
}

// A gateway that restarts before the others saw it fail is a new
// incarnation all the same: its rejoin brings its new tags, whose version
// may be lower (fuzz seed 383: us-west was reset for 44s, less than the
// wan profile's failure detection; the other regions kept its old tags,
// dropped the new lower ones, never took the region as reset and kept
// their replicas of its old life for good: replicas_converged).
func TestQuickRestartRejoinsWithNewTags(t *testing.T) {
	sc, err := scenarios.Load("testdata/fuzz-383-quick-reset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := runOK(t, sc, Options{Seed: 383})
	for _, inv := range r.Invariants {
		if inv.Count != 0 {
			t.Errorf("%s: %d violation(s): %+v", inv.Name, inv.Count, r.Violations)
		}
	}
}
