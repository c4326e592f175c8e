package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// epochCatalog is a snapshot answer at v (instances i1..iv) in epoch.
func epochCatalog(v uint64, epoch, restoredFrom string) SyncResult {
	return SyncResult{Full: true, Version: v, Catalog: catalogAt(v), Epoch: epoch, RestoredFrom: restoredFrom}
}

// replicaIn returns a core whose replica of eu-west (two gateways, tags at
// tag) is the snapshot first.
func replicaIn(t *testing.T, tag uint64, first SyncResult) *Core {
	t.Helper()
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", tag)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-2", "eu-west", tag)})
	f := only(t, c.Tick(t0), EffectFetch)
	if err := c.FetchDone(t0, f, first); err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchAnswered runs the core's next fetch (due by at) and answers it.
func fetchAnswered(t *testing.T, c *Core, at time.Time, r SyncResult) error {
	t.Helper()
	for now := at; now.Before(at.Add(time.Minute)); now = now.Add(10 * time.Millisecond) {
		if fs := fetches(c.Tick(now)); len(fs) > 0 {
			return c.FetchDone(now, fs[0], r)
		}
	}
	t.Fatalf("no fetch within a minute of %v", at)
	return nil
}

// The bug: every tag below the replica is no proof that the region was
// reset. A gateway whose cache lags (it missed store notifications) answers
// from its cache while the store is down: an older snapshot, in the
// replica's epoch, while the tags (published a second after the catalog
// moves) are all below the replica too, for as long as it takes. The
// replica keeps its version, by pull and by watch.
func TestCoreLaggingSnapshotInSameEpochKept(t *testing.T) {
	c := replicaIn(t, 170, epochCatalog(173, "e1", ""))
	lagging := epochCatalog(172, "e1", "")
	now := t0
	for i := range 5 {
		now = now.Add(c.cfg.AntiEntropy)
		err := fetchAnswered(t, c, now, lagging)
		if v := c.Replica("eu-west").Version(); err == nil || v != 173 {
			t.Fatalf("pull %d, tags below for %v: lagging snapshot v172 in the replica's epoch: err %v, replica v%d, want refused and v173",
				i, now.Sub(t0), err, v)
		}
	}
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-2", "eu-west", 172)})
	w := oneWatch(t, c.Watches(now.Add(time.Minute)))
	if err := c.WatchDone(now.Add(time.Minute), w, lagging); err == nil || c.Replica("eu-west").Version() != 173 {
		t.Fatalf("watch: lagging snapshot v172 in the replica's epoch: err %v, replica v%d, want refused and v173",
			err, c.Replica("eu-west").Version())
	}
}

// A real reset is followed at once: the region's store lost its data and
// started over in a new epoch, and every alive gateway advertises below the
// replica. Not while a gateway still advertises the replica's version.
func TestCoreRegionResetInNewEpochFollowed(t *testing.T) {
	c := replicaIn(t, 90, epochCatalog(90, "e1", ""))
	reset := epochCatalog(3, "e2", "")
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
	now := t0.Add(c.cfg.AntiEntropy)
	if err := fetchAnswered(t, c, now, reset); err == nil || c.Replica("eu-west").Version() != 90 {
		t.Fatalf("new epoch while eu-2 still advertises v90: err %v, replica v%d, want refused", err, c.Replica("eu-west").Version())
	}
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-2", "eu-west", 3)})
	if err := fetchAnswered(t, c, now, reset); err != nil {
		t.Fatal(err)
	}
	rep := c.Replica("eu-west")
	if rep.Version() != 3 || rep.Epoch != "e2" {
		t.Fatalf("after the reset: replica v%d epoch %q, want v3 in e2", rep.Version(), rep.Epoch)
	}
	// A watch answered from the reset region is followed too.
	c2 := replicaIn(t, 90, epochCatalog(90, "e1", ""))
	c2.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
	c2.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-2", "eu-west", 3)})
	w := oneWatch(t, c2.Watches(t0.Add(time.Second)))
	if err := c2.WatchDone(t0.Add(time.Second), w, reset); err != nil || c2.Replica("eu-west").Version() != 3 {
		t.Fatalf("watch answered after the reset: err %v, replica v%d, want v3", err, c2.Replica("eu-west").Version())
	}
}

// A store restored from the memory of its gateways starts a new epoch
// above every version seen, restored from the old one: an answer of the old
// epoch (a gateway that has not seen the restore yet) is older, not a reset.
func TestCoreOlderSnapshotOfTheEpochRestoredFromKept(t *testing.T) {
	for _, tc := range []struct {
		name        string
		have, older SyncResult
	}{
		{"replica restored, answer from before", epochCatalog(273, "e2", "e1"), epochCatalog(172, "e1", "")},
		{"answer restored from the replica's", epochCatalog(173, "e1", ""), epochCatalog(150, "e2", "e1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replicaIn(t, 100, tc.have)
			err := fetchAnswered(t, c, t0.Add(10*c.cfg.AntiEntropy), tc.older)
			if v := c.Replica("eu-west").Version(); err == nil || v != tc.have.Version {
				t.Fatalf("err %v, replica v%d, want refused and v%d", err, v, tc.have.Version)
			}
		})
	}
}

// Without epochs (a gateway or a persisted replica from before them, a
// store never written since it lost its data), only time tells a reset from
// a lag: the tags must have stayed below the replica for AntiEntropy.
func TestCoreOlderSnapshotWithoutEpochNeedsTagsBelowForAntiEntropy(t *testing.T) {
	c := replicaIn(t, 9, epochCatalog(9, "e1", ""))
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 0)})
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-2", "eu-west", 0)})
	c.Tick(t0) // the tags went below at t0
	empty := SyncResult{Full: true, Catalog: region.NewCatalog()}
	f := Effect{Kind: EffectFetch, Region: "eu-west", Gateway: "eu-1", Seq: 99}
	if err := c.late(t0.Add(time.Millisecond), c.regions["eu-west"], f, empty); err == nil {
		t.Fatal("a late older snapshot was applied")
	}
	rs := c.regions["eu-west"]
	if c.regionReset(t0.Add(c.cfg.AntiEntropy-time.Millisecond), "eu-west", rs, empty) {
		t.Fatal("no epoch, tags below for less than AntiEntropy: taken as a reset")
	}
	if !c.regionReset(t0.Add(c.cfg.AntiEntropy), "eu-west", rs, empty) {
		t.Fatal("no epoch, tags below for AntiEntropy: not taken as a reset")
	}
	if err := fetchAnswered(t, c, t0.Add(c.cfg.AntiEntropy), empty); err != nil || c.Replica("eu-west").Version() != 0 {
		t.Fatalf("reset without epochs: err %v, replica v%d", err, c.Replica("eu-west").Version())
	}
}

// The replica learns its epoch from deltas when a snapshot did not say,
// and keeps it through the local store.
func TestCoreReplicaEpochLearnedAndPersisted(t *testing.T) {
	c := replicaIn(t, 2, SyncResult{Full: true, Version: 2, Catalog: catalogAt(2)})
	ch := put(3, "i3")
	ch.Epoch = "e1"
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
	if err := fetchAnswered(t, c, t0, SyncResult{Version: 3, Changes: []region.Change{ch}, Epoch: "e1"}); err != nil {
		t.Fatal(err)
	}
	snap := c.Replica("eu-west").Snapshot()
	if snap.Version != 3 || snap.Epoch != "e1" {
		t.Fatalf("persisted %+v, want v3 in e1", snap)
	}
	c2 := newTestCore(t)
	c2.Restore(t0, snap)
	if rep := c2.Replica("eu-west"); rep.Epoch != "e1" {
		t.Fatalf("restored replica epoch %q, want e1", rep.Epoch)
	}
}

// The sync endpoint says which life of the store its answer comes from,
// and the core refuses what a lagging cache serves while the store is
// down, end to end: store, cache, CatalogSource, answer, core.
func TestCatalogSourceEpochKeepsLaggingCacheFromMovingReplicaBack(t *testing.T) {
	ctx := context.Background()
	mem := region.NewMemStore(100)
	store := region.NewFaultyStore(mem)
	put := func(id string) uint64 {
		t.Helper()
		ch, err := mem.Put(ctx, region.Instance{ID: id, Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100, Status: region.StatusPassing}, region.Cond{})
		if err != nil {
			t.Fatal(err)
		}
		return ch.Version
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache := region.NewCache(store, region.CacheOptions{Logger: quiet})
	for i := range 5 {
		put(fmt.Sprint("i", i))
	}
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	v := put("late") // the cache missed its notification
	src := CatalogSource{Region: "eu-west", Store: store, Cache: cache}
	result := func(since uint64) SyncResult { return sourceResult(t, src, since) }
	c := replicaIn(t, 5, result(0))
	if rep := c.Replica("eu-west"); rep.Version() != v || rep.Epoch == "" {
		t.Fatalf("replica v%d epoch %q, want v%d from the store, with its epoch", rep.Version(), rep.Epoch, v)
	}
	store.Fail(errors.New("connection refused"))
	lagging := result(v)
	if !lagging.Full || lagging.Version != v-1 || lagging.Epoch != c.Replica("eu-west").Epoch {
		t.Fatalf("store down: answer full %v v%d epoch %q, want the cache's v%d in the store's epoch", lagging.Full, lagging.Version, lagging.Epoch, v-1)
	}
	if err := fetchAnswered(t, c, t0.Add(c.cfg.AntiEntropy), lagging); err == nil || c.Replica("eu-west").Version() != v {
		t.Fatalf("lagging cache's snapshot: err %v, replica v%d, want refused and v%d", err, c.Replica("eu-west").Version(), v)
	}
	// The store loses everything and a restarted gateway (nothing to write
	// back) loads it: the region starts over in a new epoch.
	store.Fail(nil)
	mem.Wipe()
	put("again")
	fresh := region.NewCache(store, region.CacheOptions{Logger: quiet})
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	store.Fail(errors.New("connection refused"))
	src.Cache = fresh
	reset := result(v)
	for _, g := range []string{"eu-1", "eu-2"} {
		c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw(g, "eu-west", 1)})
	}
	if err := fetchAnswered(t, c, t0.Add(2*c.cfg.AntiEntropy), reset); err != nil || c.Replica("eu-west").Version() != 1 {
		t.Fatalf("after the reset: err %v, replica v%d, want v1", err, c.Replica("eu-west").Version())
	}
}
