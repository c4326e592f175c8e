package federation

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func gw(name, regionName string, v uint64) Member {
	return Member{Name: name, Region: regionName, HTTPAddr: name + ":8700", Version: v, Status: StatusAlive}
}

func put(v uint64, id string) region.Change {
	return region.Change{Version: v, Op: region.OpPut, Service: "web", ID: id,
		Instance: &region.Instance{ID: id, Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100, Status: region.StatusPassing}}
}

func newTestCore(t *testing.T) *Core {
	t.Helper()
	c, err := NewCore(LocalCoreConfig("us-east", "us-east-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("us-east-1", "us-east", 0)})
	return c
}

func only(t *testing.T, effs []Effect, kind EffectKind) Effect {
	t.Helper()
	var got []Effect
	for _, e := range effs {
		if e.Kind == kind {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %v effect, got %v", kind, effs)
	}
	return got[0]
}

func fetches(effs []Effect) []Effect {
	var out []Effect
	for _, e := range effs {
		if e.Kind == EffectFetch {
			out = append(out, e)
		}
	}
	return out
}

func TestCoreFirstSyncThenDeltas(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 2)})
	f := only(t, c.Tick(t0), EffectFetch)
	if f.Region != "eu-west" || f.Gateway != "eu-1" || f.Since != 0 {
		t.Fatalf("first fetch: %v, want eu-west from eu-1 since 0", f)
	}
	if len(fetches(c.Tick(t0.Add(time.Millisecond)))) != 0 {
		t.Fatal("a second fetch while one is in flight")
	}
	cat := region.NewCatalog()
	cat.Apply(put(1, "a"))
	cat.Apply(put(2, "b"))
	if err := c.SyncDone(t0.Add(10*time.Millisecond), "eu-west", "eu-1", SyncResult{Full: true, Version: 2, Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	v := c.View("eu-west")
	if v.Replica.Version() != 2 || v.Stale || !v.Reachable {
		t.Fatalf("after full sync: %+v", v)
	}
	// A gossiped version bump asks for the delta since the replica.
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
	if !c.View("eu-west").Stale {
		t.Fatal("replica behind the advertised version must read stale")
	}
	f = only(t, c.Tick(t0.Add(time.Second)), EffectFetch)
	if f.Since != 2 || !strings.Contains(f.Reason, "ahead") {
		t.Fatalf("delta fetch: %v", f)
	}
	c.SyncDone(t0.Add(time.Second), "eu-west", "eu-1", SyncResult{Version: 3, Changes: []region.Change{put(3, "c")}})
	if got := len(c.Replica("eu-west").Catalog.Instances("web", region.Filter{})); got != 3 {
		t.Fatalf("after delta: %d instances, want 3", got)
	}
	// Nothing new: no fetch until anti-entropy.
	if len(fetches(c.Tick(t0.Add(2*time.Second)))) != 0 {
		t.Fatal("fetch without a reason")
	}
	f = only(t, c.Tick(t0.Add(3*time.Second+time.Millisecond)), EffectFetch)
	if f.Reason != "anti-entropy" {
		t.Fatalf("anti-entropy fetch: %v", f)
	}
}

func TestCoreBackoffRotatesGateways(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 5)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-2", "eu-west", 5)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-3", "eu-west", 4)}) // behind: not asked
	now := t0
	var asked []string
	for i := range 4 {
		f := only(t, c.Tick(now), EffectFetch)
		asked = append(asked, f.Gateway)
		c.SyncFailed(now, "eu-west", f.Gateway, errors.New("connection refused"))
		if len(fetches(c.Tick(now.Add(50*time.Millisecond)))) != 0 {
			t.Fatalf("failure %d: retried before the backoff", i+1)
		}
		now = now.Add(c.cfg.BackoffMax * 2)
	}
	if fmt.Sprint(asked) != "[eu-1 eu-2 eu-1 eu-2]" {
		t.Fatalf("gateways asked: %v, want rotation over the up-to-date ones", asked)
	}
	if v := c.View("eu-west"); !strings.Contains(v.LastError, "connection refused") {
		t.Fatalf("last error: %q", v.LastError)
	}
}

func TestCoreFetchTimeout(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	only(t, c.Tick(t0), EffectFetch)
	c.Tick(t0.Add(c.cfg.FetchTimeout))
	if v := c.View("eu-west"); !strings.Contains(v.LastError, "timed out") {
		t.Fatalf("after the fetch timeout: %q", v.LastError)
	}
}

func TestCorePartitionKeepsReplicaUntilReap(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventFailed, Member: gw("eu-1", "eu-west", 1)})
	for _, d := range []time.Duration{time.Minute, time.Hour, 71 * time.Hour} {
		effs := c.Tick(t0.Add(d))
		v := c.View("eu-west")
		if v.Replica == nil || !v.Stale || v.Reachable || len(fetches(effs)) != 0 {
			t.Fatalf("%s into the partition: %+v %v; want the replica kept, stale, unreachable, no fetch", d, v, effs)
		}
	}
	drop := only(t, c.Tick(t0.Add(time.Second+72*time.Hour)), EffectDrop)
	if drop.Region != "eu-west" || c.Replica("eu-west") != nil {
		t.Fatalf("after ReapAfter: %v, replica %v", drop, c.Replica("eu-west"))
	}
}

func TestCoreHealAfterPartition(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventFailed, Member: gw("eu-1", "eu-west", 1)})
	c.Member(t0.Add(time.Minute), MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 4)})
	f := only(t, c.Tick(t0.Add(time.Minute)), EffectFetch)
	if f.Since != 1 {
		t.Fatalf("after healing: %v, want a delta since 1", f)
	}
}

func TestCoreRejectsOlderSnapshotUnlessRegionReset(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 5)})
	cat := region.NewCatalog()
	for v := uint64(1); v <= 5; v++ {
		cat.Apply(put(v, fmt.Sprint("i", v)))
	}
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Full: true, Catalog: cat})
	old := region.NewCatalog()
	old.Apply(put(1, "x"))
	if err := c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Full: true, Catalog: old}); err == nil || c.Replica("eu-west").Version() != 5 {
		t.Fatalf("older snapshot from a lagging gateway replaced v5: err %v", err)
	}
	// The region itself went back to v1 (its Redis lost data): accept.
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 1)})
	if err := c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Full: true, Catalog: old}); err != nil || c.Replica("eu-west").Version() != 1 {
		t.Fatalf("region reset: err %v, version %d", err, c.Replica("eu-west").Version())
	}
}

func TestCoreGapAsksForSnapshot(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 9)})
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	if err := c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 9, Changes: []region.Change{put(9, "z")}}); err == nil {
		t.Fatal("a delta with a gap must fail")
	}
	f := only(t, c.Tick(t0.Add(time.Minute)), EffectFetch)
	if f.Since != 0 {
		t.Fatalf("after a gap: %v, want a full fetch (since 0)", f)
	}
}

func TestCoreRestoreAndPersist(t *testing.T) {
	c := newTestCore(t)
	c.Restore(t0, ReplicaSnapshot{Region: "eu-west", Version: 7, LastSync: t0.Add(-time.Hour), Source: "eu-1",
		Instances: []region.Instance{*put(7, "a").Instance}})
	v := c.View("eu-west")
	if v.Replica == nil || v.Replica.Version() != 7 || !v.Stale || v.Reachable {
		t.Fatalf("restored: %+v, want v7, stale, unreachable", v)
	}
	if len(c.Tick(t0)) != 0 {
		t.Fatal("a restored replica of an unseen region needs nothing yet")
	}
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 7)})
	f := only(t, c.Tick(t0), EffectFetch)
	if f.Since != 7 || !strings.Contains(f.Reason, "restored") {
		t.Fatalf("restored replica, region back: %v", f)
	}
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 7, Changes: nil})
	if c.View("eu-west").Stale {
		t.Fatal("stale after a successful sync")
	}
	p := only(t, c.Tick(t0.Add(2*time.Second)), EffectPersist)
	if p.Region != "eu-west" {
		t.Fatalf("persist: %v", p)
	}
	if len(c.Tick(t0.Add(3*time.Second))) != 0 {
		t.Fatal("persisted twice without a change")
	}
}

func TestCoreForget(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	c.Member(t0, MemberEvent{Kind: EventFailed, Member: gw("eu-1", "eu-west", 1)})
	drop := only(t, c.Forget("eu-west"), EffectDrop)
	if drop.Region != "eu-west" || c.Replica("eu-west") != nil {
		t.Fatalf("forget: %v", drop)
	}
	for _, v := range c.Regions() {
		if v.Name == "eu-west" {
			t.Fatalf("forgotten region still listed: %+v", v)
		}
	}
	if c.Forget("us-east") != nil {
		t.Fatal("the local region cannot be forgotten")
	}
}

func TestOwnerRendezvous(t *testing.T) {
	gws := []string{"g1", "g2", "g3"}
	counts := map[string]int{}
	moved := 0
	for i := range 3000 {
		k := fmt.Sprintf("web/i-%d", i)
		o := Owner(k, gws)
		counts[o]++
		if o2 := Owner(k, []string{"g3", "g1", "g2"}); o2 != o {
			t.Fatalf("owner depends on order: %s vs %s", o, o2)
		}
		// g2 dies: only its keys move.
		after := Owner(k, []string{"g1", "g3"})
		if o != "g2" && after != o {
			t.Fatalf("key %s moved from %s to %s though %s is alive", k, o, after, o)
		}
		if o == "g2" {
			moved++
		}
	}
	for _, g := range gws {
		if counts[g] < 800 || counts[g] > 1200 {
			t.Fatalf("uneven spread: %v", counts)
		}
	}
	if Owner("x", nil) != "" {
		t.Fatal("no gateways: want no owner")
	}
}
