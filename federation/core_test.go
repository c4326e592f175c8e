package federation

import (
	"errors"
	"fmt"
	"slices"
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
	f := only(t, c.Tick(t0), EffectFetch)
	if err := c.FetchDone(t0, f, SyncResult{Full: true, Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	old := region.NewCatalog()
	old.Apply(put(1, "x"))
	now := t0.Add(c.cfg.AntiEntropy)
	f = only(t, c.Tick(now), EffectFetch)
	if err := c.FetchDone(now, f, SyncResult{Full: true, Catalog: old}); err == nil || c.Replica("eu-west").Version() != 5 {
		t.Fatalf("older snapshot from a lagging gateway replaced v5: err %v", err)
	}
	// The region itself went back to v1 (its Redis lost data): accept.
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 1)})
	now = now.Add(2 * c.cfg.BackoffMax)
	f = only(t, c.Tick(now), EffectFetch)
	if err := c.FetchDone(now, f, SyncResult{Full: true, Catalog: old}); err != nil || c.Replica("eu-west").Version() != 1 {
		t.Fatalf("region reset: err %v, version %d", err, c.Replica("eu-west").Version())
	}
}

func TestCoreGapAsksForSnapshot(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 9)})
	f := only(t, c.Tick(t0), EffectFetch)
	c.FetchDone(t0, f, SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	f = only(t, c.Tick(t0), EffectFetch)
	if err := c.FetchDone(t0, f, SyncResult{Version: 9, Changes: []region.Change{put(9, "z")}}); err == nil {
		t.Fatal("a delta with a gap must fail")
	}
	f = only(t, c.Tick(t0.Add(time.Minute)), EffectFetch)
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

// drive runs the core like a driver with instant, successful fetches from
// a region whose store holds cat: every tick period for d, it ticks and
// answers each fetch (see answer). It returns the fetches issued.
func drive(t *testing.T, c *Core, from time.Time, d, period time.Duration, cat *region.Catalog) (effs []Effect, end time.Time) {
	t.Helper()
	return driveWith(t, c, from, d, period, func(f Effect) SyncResult { return answer(cat, f.Since, true) })
}

func driveWith(t *testing.T, c *Core, from time.Time, d, period time.Duration, ans func(Effect) SyncResult) (effs []Effect, end time.Time) {
	t.Helper()
	now := from
	for ; now.Before(from.Add(d)); now = now.Add(period) {
		for _, f := range fetches(c.Tick(now)) {
			effs = append(effs, f)
			if err := c.FetchDone(now, f, ans(f)); err != nil {
				t.Logf("%v: %v", now.Sub(from), err)
			}
		}
	}
	return effs, now
}

// answer is what a store holding cat answers a fetch since a version: the
// snapshot for 0, else the changes after since. A store that went back
// (since beyond its version) answers the snapshot when detectReset, else
// no changes.
func answer(cat *region.Catalog, since uint64, detectReset bool) SyncResult {
	if since == 0 || (since > cat.Version() && detectReset) {
		snap := region.NewCatalog()
		snap.Load(cat.Snapshot())
		return SyncResult{Full: true, Version: snap.Version(), Catalog: snap}
	}
	r := SyncResult{Version: max(since, cat.Version())}
	for _, in := range cat.All() {
		if in.ModifyIndex > since {
			r.Changes = append(r.Changes, put(in.ModifyIndex, in.ID))
		}
	}
	slices.SortFunc(r.Changes, func(a, b region.Change) int { return int(a.Version) - int(b.Version) })
	return r
}

func catalogAt(v uint64) *region.Catalog {
	cat := region.NewCatalog()
	for i := uint64(1); i <= v; i++ {
		cat.Apply(put(i, fmt.Sprint("i", i)))
	}
	return cat
}

// Bug 1: a replica ahead of the gossiped version (the tag lags) is current:
// no fetch until anti-entropy, instead of one on every tick.
func TestCoreReplicaAheadOfTagIsCurrent(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 5)})
	// The store is at v6 already; the tag still says v5.
	effs, now := drive(t, c, t0, 10*time.Millisecond, time.Millisecond, catalogAt(6))
	if len(effs) != 1 || c.Replica("eu-west").Version() != 6 {
		t.Fatalf("first sync: %v, replica v%d", effs, c.Replica("eu-west").Version())
	}
	if v := c.View("eu-west"); v.Stale {
		t.Fatalf("a replica ahead of the tag reads stale: %+v", v)
	}
	// The tag stays behind for less than the anti-entropy period: nothing
	// to fetch at all.
	effs, now = drive(t, c, now, c.cfg.AntiEntropy-20*time.Millisecond, time.Millisecond, catalogAt(6))
	if len(effs) != 0 {
		t.Fatalf("%d fetches while the tag lags the replica, want 0: first %v", len(effs), effs[0])
	}
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 6)})
	if effs, _ = drive(t, c, now, 10*time.Millisecond, time.Millisecond, catalogAt(6)); len(effs) != 0 {
		t.Fatalf("fetches once the tag caught up: %v", effs)
	}
}

// Bug 1: a region whose tag stays below the replica for longer than the
// anti-entropy period was reset: one full fetch, then normal scheduling.
// The region's store does not notice the fetches from beyond its version
// (it answers no changes), so only that full fetch repairs the replica.
func TestCoreRegionResetFetchesSnapshotOnce(t *testing.T) {
	for _, detect := range []bool{false, true} {
		t.Run(fmt.Sprintf("store detects reset %v", detect), func(t *testing.T) {
			c := newTestCore(t)
			c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 9)})
			_, now := drive(t, c, t0, 10*time.Millisecond, time.Millisecond, catalogAt(9))
			if c.Replica("eu-west").Version() != 9 {
				t.Fatalf("replica v%d, want v9", c.Replica("eu-west").Version())
			}
			// eu-west lost its data and is at v3 now; its tag says so for
			// 10 min.
			c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
			const d = 10 * time.Minute
			cat := catalogAt(3)
			effs, _ := driveWith(t, c, now, d, 10*time.Millisecond, func(f Effect) SyncResult { return answer(cat, f.Since, detect) })
			var full []Effect
			for _, f := range effs {
				if f.Since == 0 {
					full = append(full, f)
				}
			}
			if bound := int(d/c.cfg.AntiEntropy) + 2; len(effs) > bound || len(full) > 1 {
				t.Fatalf("%d fetches (%d full) in %v, want at most %d (one anti-entropy per %v) and at most one full",
					len(effs), len(full), d, bound, c.cfg.AntiEntropy)
			}
			if v := c.Replica("eu-west").Version(); v != 3 {
				t.Fatalf("after the reset: replica v%d, want the region's v3", v)
			}
			if !detect {
				if len(full) != 1 || !strings.Contains(full[0].Reason, "reset") {
					t.Fatalf("full fetches %v, want one for the reset", full)
				}
				// Due AntiEntropy after the tag went down, issued at the
				// first tick from then.
				if i := slices.IndexFunc(effs, func(f Effect) bool { return f.Seq == full[0].Seq }); i != 0 && i != 1 {
					t.Fatalf("the reset fetch is fetch %d after the reset: %v", i, effs[:i+1])
				}
			}
			if v := c.View("eu-west"); v.Stale || v.LastError != "" {
				t.Fatalf("after the reset: %+v", v)
			}
		})
	}
}

// Bug 2: a region that cannot be fetched (no alive gateway) schedules
// nothing in the past: the driver would wake every millisecond.
func TestCoreNextDeadlineNeverInThePast(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	if dl := c.NextDeadline(t0); !dl.Equal(t0) {
		t.Fatalf("a due fetch: deadline %v, want now (%v)", dl, t0)
	}
	only(t, c.Tick(t0), EffectFetch)
	if dl := c.NextDeadline(t0); !dl.Equal(t0.Add(c.cfg.FetchTimeout)) {
		t.Fatalf("a fetch in flight: deadline %v, want its timeout %v", dl, t0.Add(c.cfg.FetchTimeout))
	}
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventFailed, Member: gw("eu-1", "eu-west", 1)})
	// Tick like a driver; each wake-up at the deadline it was given.
	now, wakeups := t0.Add(time.Second), 0
	for end := now.Add(time.Hour); now.Before(end); wakeups++ {
		c.Tick(now)
		dl := c.NextDeadline(now)
		if dl.Before(now) {
			t.Fatalf("%v into the failure: deadline %v is in the past", now.Sub(t0), now.Sub(dl))
		}
		if dl.IsZero() || dl.Sub(now) > time.Second {
			dl = now.Add(time.Second) // the driver ticks at least every second
		}
		if next := now.Add(time.Millisecond); dl.Before(next) {
			dl = next
		}
		now = dl
	}
	if wakeups > 3700 {
		t.Fatalf("%d wake-ups in an hour with nothing to do, want about one a second", wakeups)
	}
}

// Bug 2: after a failed anti-entropy fetch, nothing is due at the end of
// the backoff (the replica is current): no deadline in the past either.
func TestCoreNextDeadlineAfterBackoff(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	only(t, c.Tick(t0), EffectFetch)
	c.SyncDone(t0, "eu-west", "eu-1", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
	now := t0.Add(c.cfg.AntiEntropy)
	f := only(t, c.Tick(now), EffectFetch)
	c.SyncFailed(now, "eu-west", f.Gateway, errors.New("connection reset"))
	for end := now.Add(time.Minute); now.Before(end); now = now.Add(100 * time.Millisecond) {
		c.Tick(now)
		if dl := c.NextDeadline(now); dl.Before(now) {
			t.Fatalf("%v after the failure: deadline %v in the past", now.Sub(t0), now.Sub(dl))
		}
	}
}

// Bug 3: a fetch that timed out counts once; its late failure does not
// count again, so the next fetch goes to the next gateway.
func TestCoreHungGatewayRotatedPast(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-2", "eu-west", 1)})
	now := t0
	var asked []string
	for range 4 {
		f := only(t, c.Tick(now), EffectFetch)
		asked = append(asked, f.Gateway)
		if f.Gateway == "eu-2" {
			c.SyncDone(now, "eu-west", "eu-2", SyncResult{Version: 1, Changes: []region.Change{put(1, "a")}})
			break
		}
		// eu-1 hangs: the core times the fetch out, then the driver's
		// own timeout reports the failure too.
		now = now.Add(c.cfg.FetchTimeout)
		c.Tick(now)
		c.SyncFailed(now, "eu-west", f.Gateway, errors.New("context deadline exceeded"))
		now = now.Add(2 * c.cfg.BackoffMax)
	}
	if fmt.Sprint(asked) != "[eu-1 eu-2]" {
		t.Fatalf("gateways asked: %v, want the hung eu-1 once, then eu-2", asked)
	}
}

// Bug 4: an anti-entropy sync that changes nothing does not make the
// replica be written again.
func TestCoreNoopSyncDoesNotPersist(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 3)})
	cat := catalogAt(3)
	persists := 0
	now := t0
	for end := t0.Add(10 * time.Minute); now.Before(end); now = now.Add(100 * time.Millisecond) {
		effs, _ := drive(t, c, now, time.Millisecond, time.Millisecond, cat)
		_ = effs
		for _, e := range c.Tick(now) {
			if e.Kind == EffectPersist {
				persists++
			}
		}
	}
	if persists != 1 {
		t.Fatalf("%d persists in 10 minutes of no-op syncs, want 1 (the first sync)", persists)
	}
	// A real change is persisted.
	cat.Apply(put(4, "d"))
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 4)})
	drive(t, c, now, time.Millisecond, time.Millisecond, cat)
	only(t, c.Tick(now.Add(c.cfg.PersistEvery)), EffectPersist)
}

// agree checks that View, Lookup and Regions tell the same story of every
// region named.
func agree(t *testing.T, c *Core, names ...string) {
	t.Helper()
	listed := map[string]RegionView{}
	for _, v := range c.Regions() {
		listed[v.Name] = v
	}
	for _, n := range names {
		rep, stale, known := c.Lookup(n)
		v, ok := listed[n]
		if ok != known {
			t.Fatalf("%s: listed by Regions %v, known to Lookup %v", n, ok, known)
		}
		if !ok {
			continue
		}
		if v2 := c.View(n); v2.Replica != v.Replica || v2.Stale != v.Stale || v2.Reachable != v.Reachable {
			t.Fatalf("%s: View %+v, Regions %+v", n, v2, v)
		}
		if rep != v.Replica || stale != v.Stale {
			t.Fatalf("%s: Lookup replica %p stale %v, View replica %p stale %v", n, rep, stale, v.Replica, v.Stale)
		}
	}
	agreeRemote(t, c) // core_remote_test.go
}

// Bug 5: forgetting a region whose gateways are alive is followed by a
// fresh full sync, and the views agree throughout.
func TestCoreForgetLiveRegionResyncs(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 3)})
	_, now := drive(t, c, t0, 10*time.Millisecond, time.Millisecond, catalogAt(3))
	agree(t, c, "eu-west", "us-east", "nowhere")
	only(t, c.Forget("eu-west"), EffectDrop)
	agree(t, c, "eu-west")
	f := only(t, c.Tick(now), EffectFetch)
	if f.Region != "eu-west" || f.Since != 0 {
		t.Fatalf("after forgetting a live region: %v, want a full fetch", f)
	}
	agree(t, c, "eu-west")
	cat := catalogAt(3)
	snap := region.NewCatalog()
	snap.Load(cat.Snapshot())
	if err := c.SyncDone(now, "eu-west", f.Gateway, SyncResult{Full: true, Version: 3, Catalog: snap}); err != nil {
		t.Fatal(err)
	}
	if v := c.View("eu-west"); v.Replica == nil || v.Replica.Version() != 3 || v.Stale {
		t.Fatalf("after the resync: %+v", v)
	}
	agree(t, c, "eu-west")
}

// Bug 5: after a reap, View, Lookup and Regions agree on the region.
func TestCoreReapViewsAgree(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	drive(t, c, t0, 10*time.Millisecond, time.Millisecond, catalogAt(1))
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventFailed, Member: gw("eu-1", "eu-west", 1)})
	agree(t, c, "eu-west")
	only(t, c.Tick(t0.Add(time.Second+c.cfg.ReapAfter)), EffectDrop)
	agree(t, c, "eu-west")
	// Serf reaps the failed member later: the region does not come back.
	c.Member(t0.Add(48*time.Hour+c.cfg.ReapAfter), MemberEvent{Kind: EventReap, Member: gw("eu-1", "eu-west", 1)})
	agree(t, c, "eu-west")
	if _, _, known := c.Lookup("eu-west"); known {
		t.Fatal("a reaped region is known again after serf reaped its gateway")
	}
	// The gateway comes back: so does the region, with a full sync.
	now := t0.Add(49*time.Hour + c.cfg.ReapAfter)
	c.Member(now, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 1)})
	if f := only(t, c.Tick(now), EffectFetch); f.Since != 0 {
		t.Fatalf("region back after a reap: %v, want a full fetch", f)
	}
	agree(t, c, "eu-west")
}

// Bug 3: each fetch has a Seq; outcomes of a fetch that is no longer the
// current one change nothing but a replica they move forward.
func TestCoreLateResults(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 2)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-2", "eu-west", 2)})
	first := only(t, c.Tick(t0), EffectFetch)
	if err := c.FetchDone(t0, first, answer(catalogAt(2), 0, true)); err != nil {
		t.Fatal(err)
	}
	// eu-1 hangs on the next fetch; it times out, once.
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 4)})
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-2", "eu-west", 4)})
	hung := only(t, c.Tick(t0), EffectFetch)
	if hung.Seq <= first.Seq || hung.Gateway != "eu-1" || hung.Since != 2 {
		t.Fatalf("second fetch %v after %v", hung, first)
	}
	now := t0.Add(c.cfg.FetchTimeout)
	c.Tick(now)
	// Its failure, reported late, is not counted again...
	c.FetchFailed(now, hung, errors.New("context deadline exceeded"))
	if rs := c.regions["eu-west"]; rs.failures != 1 || rs.rotate != 1 {
		t.Fatalf("a timed-out fetch counted %d times (rotate %d), want once", rs.failures, rs.rotate)
	}
	// ... and the retry goes to eu-2.
	now = now.Add(2 * c.cfg.BackoffMax)
	retry := only(t, c.Tick(now), EffectFetch)
	if retry.Gateway != "eu-2" || retry.Seq <= hung.Seq {
		t.Fatalf("retry %v, want eu-2 with a new Seq", retry)
	}
	// A late answer of the hung fetch that does not continue the replica
	// is dropped; the current fetch is still in flight.
	if err := c.FetchDone(now, hung, SyncResult{Version: 4, Changes: []region.Change{put(4, "d")}}); err == nil {
		t.Fatal("a late delta with a gap was applied")
	}
	// One that continues it is applied (versions only grow), without
	// touching the current fetch.
	if err := c.FetchDone(now, hung, answer(catalogAt(3), 2, true)); err != nil || c.Replica("eu-west").Version() != 3 {
		t.Fatalf("late delta v3: err %v, replica v%d", err, c.Replica("eu-west").Version())
	}
	if len(fetches(c.Tick(now))) != 0 {
		t.Fatal("a second fetch while the current one is in flight")
	}
	// A late snapshot older than the replica is dropped.
	if err := c.FetchDone(now, first, answer(catalogAt(2), 0, true)); err == nil || c.Replica("eu-west").Version() != 3 {
		t.Fatalf("late older snapshot: err %v, replica v%d", err, c.Replica("eu-west").Version())
	}
	// The current fetch completes normally.
	if err := c.FetchDone(now, retry, answer(catalogAt(4), retry.Since, true)); err != nil || c.Replica("eu-west").Version() != 4 {
		t.Fatalf("current fetch: err %v, replica v%d", err, c.Replica("eu-west").Version())
	}
	if v := c.View("eu-west"); v.Stale || v.LastError != "" {
		t.Fatalf("after the current fetch: %+v", v)
	}
	// A result of a fetch issued before a Forget is not applied to the
	// region that comes back.
	before := only(t, c.Tick(now.Add(c.cfg.AntiEntropy)), EffectFetch)
	c.Forget("eu-west")
	again := only(t, c.Tick(now.Add(c.cfg.AntiEntropy)), EffectFetch)
	if again.Since != 0 {
		t.Fatalf("after the forget: %v, want a full fetch", again)
	}
	if err := c.FetchDone(now.Add(c.cfg.AntiEntropy), before, answer(catalogAt(4), 0, true)); err == nil || c.Replica("eu-west") != nil {
		t.Fatalf("a pre-forget result was applied: err %v", err)
	}
	c.FetchFailed(now.Add(c.cfg.AntiEntropy), before, errors.New("late"))
	if v := c.View("eu-west"); v.LastError != "" {
		t.Fatalf("a pre-forget failure counted: %q", v.LastError)
	}
}

// Seqs are unique across regions, in issue order.
func TestCoreFetchSeqs(t *testing.T) {
	c := newTestCore(t)
	for _, r := range []string{"eu-west", "ap-south", "sa-east"} {
		c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw(r+"-1", r, 1)})
	}
	var seqs []uint64
	for _, f := range fetches(c.Tick(t0)) {
		seqs = append(seqs, f.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("seqs %v, want [1 2 3]", seqs)
	}
}

// TestCoreUnreachableWhileFetchesFail: a region whose gateways look alive
// in gossip (indirect probes carry them across a one-way cut) but whose
// fetches keep failing counts as unreachable, so routing does not send
// traffic there; one answered fetch makes it reachable again. Found by the
// simulator (sim fuzz seed 87: a one-way cut us-east -> us-west).
func TestCoreUnreachableWhileFetchesFail(t *testing.T) {
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 5)})
	now := t0
	for i := range c.cfg.UnreachableAfter {
		if v := c.View("eu-west"); !v.Reachable {
			t.Fatalf("unreachable after %d failed fetches, want after %d", i, c.cfg.UnreachableAfter)
		}
		f := only(t, c.Tick(now), EffectFetch)
		c.FetchFailed(now, f, errors.New("context deadline exceeded"))
		now = now.Add(c.cfg.BackoffMax * 2)
	}
	if v := c.View("eu-west"); v.Reachable || !v.Stale {
		t.Fatalf("after %d failed fetches: reachable %v stale %v, want unreachable and stale", c.cfg.UnreachableAfter, v.Reachable, v.Stale)
	}
	cat := region.NewCatalog()
	for v := uint64(1); v <= 5; v++ {
		cat.Apply(put(v, fmt.Sprint("i", v)))
	}
	f := only(t, c.Tick(now), EffectFetch)
	if err := c.FetchDone(now, f, SyncResult{Full: true, Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	if v := c.View("eu-west"); !v.Reachable {
		t.Fatal("a region that answered again is still unreachable")
	}
}
