package sim

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// A replica that followed a region_reset back to v0 is judged against the
// region's new life from then on (fuzz seed 124): the new life's v1, which
// a watch delivered while the store had committed v9 already, is no
// regression although the old life had reached v9 too; going back within
// the new life still is.
func TestVersionMonotonicRestartsFromFollowedReset(t *testing.T) {
	w := testWorld(t, twoRegions(3*time.Minute), 1)
	g, rs := w.gwByName["eu-west-1"], w.regionByName("us-east")
	g.lastVer = map[string]uint64{}
	w.checkVersion(g, "us-east", 9)
	w.mutfed().resets[rs.idx]++ // the reset: nothing committed since
	rs.commits = nil
	w.checkVersion(g, "us-east", 0) // the replica follows it
	for v := uint64(1); v <= 9; v++ {
		rs.commits = append(rs.commits, commitRec{version: v, at: w.now})
	}
	w.checkVersion(g, "us-east", 1)
	w.checkVersion(g, "us-east", 9)
	if n := w.m.viol[InvVersionMonotonic].count; n != 0 {
		t.Fatalf("following a reset, then its new life v1, v9: %d version_monotonic violation(s), want 0", n)
	}
	w.checkVersion(g, "us-east", 5)
	if n := w.m.viol[InvVersionMonotonic].count; n != 1 {
		t.Fatalf("v9 back to v5 in the same life: %d violation(s), want 1", n)
	}
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
