package federation

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// watchedCore returns a core with a replica of eu-west at v2 (two
// gateways, eu-1 and eu-2) and nothing in flight.
func watchedCore(t *testing.T) *Core {
	t.Helper()
	c := newTestCore(t)
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 2)})
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-2", "eu-west", 2)})
	if w := c.Watches(t0); len(w) != 0 {
		t.Fatalf("watches before any replica: %v, want none (the pull makes the first)", w)
	}
	f := only(t, c.Tick(t0), EffectFetch)
	cat := region.NewCatalog()
	cat.Apply(put(1, "a"))
	cat.Apply(put(2, "b"))
	if err := c.FetchDone(t0, f, SyncResult{Full: true, Version: 2, Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	return c
}

func oneWatch(t *testing.T, ws []Watch) Watch {
	t.Helper()
	if len(ws) != 1 {
		t.Fatalf("want one watch, got %v", ws)
	}
	return ws[0]
}

func TestWatchAppliesChangesAndProvesContact(t *testing.T) {
	c := watchedCore(t)
	w := oneWatch(t, c.Watches(t0))
	if w.Region != "eu-west" || w.Since != 2 || w.Wait != c.cfg.WatchWait || w.Seq != 1 {
		t.Fatalf("watch: %v, want eu-west since v2", w)
	}
	if again := c.Watches(t0.Add(time.Second)); len(again) != 0 {
		t.Fatalf("a second watch while one is in flight: %v", again)
	}
	// Everything that accumulated arrives in one answer; a change the
	// replica holds already is skipped.
	at := t0.Add(2 * time.Second)
	if err := c.WatchDone(at, w, SyncResult{Version: 4, Changes: []region.Change{put(2, "b"), put(3, "c"), put(4, "d")}}); err != nil {
		t.Fatal(err)
	}
	v := c.View("eu-west")
	if v.Replica.Version() != 4 || v.Replica.Catalog.Len() != 4 || !v.Replica.LastSync.Equal(at) || v.Stale {
		t.Fatalf("after the watch: v%d, %d instances, last sync %s, stale %v", v.Replica.Version(), v.Replica.Catalog.Len(), v.Replica.LastSync, v.Stale)
	}
	// The next watch waits out WatchMinInterval after the last start...
	if got := c.Watches(at); len(got) != 1 {
		// t0+2s is long after t0+10ms: due at once.
		t.Fatalf("next watch: %v", got)
	}
	w2 := c.WatchDeadline(at)
	if w2.IsZero() {
		t.Fatal("no deadline with a watch in flight")
	}
	// ...and an empty answer (the wait passed) is contact too.
	w = Watch{Region: "eu-west", Gateway: "eu-1", Since: 4, Seq: 2}
	later := at.Add(5 * time.Minute)
	if err := c.WatchDone(later, w, SyncResult{Version: 4, Changes: []region.Change{}}); err != nil {
		t.Fatal(err)
	}
	if r := c.Replica("eu-west"); !r.LastSync.Equal(later) || r.Version() != 4 {
		t.Fatalf("after an empty answer: last sync %s v%d, want %s v4", r.LastSync, r.Version(), later)
	}
}

func TestWatchPacesRequests(t *testing.T) {
	c := watchedCore(t)
	w := oneWatch(t, c.Watches(t0))
	at := t0.Add(time.Millisecond)
	if err := c.WatchDone(at, w, SyncResult{Version: 3, Changes: []region.Change{put(3, "c")}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Watches(at); len(got) != 0 {
		t.Fatalf("a watch 1ms after the last started: %v, want none before WatchMinInterval", got)
	}
	if d := c.WatchDeadline(at); !d.Equal(t0.Add(c.cfg.WatchMinInterval)) {
		t.Fatalf("deadline %s, want the last start + %s", d, c.cfg.WatchMinInterval)
	}
	if got := c.Watches(t0.Add(c.cfg.WatchMinInterval)); len(got) != 1 || got[0].Since != 3 {
		t.Fatalf("watch after the interval: %v, want one since v3", got)
	}
}

func TestWatchRotatesOnFailureThenBacksOff(t *testing.T) {
	c := watchedCore(t)
	w1 := oneWatch(t, c.Watches(t0))
	c.WatchFailed(t0, w1, errors.New("connection refused"))
	if !strings.Contains(c.WatchError("eu-west"), "connection refused") {
		t.Fatalf("watch error %q", c.WatchError("eu-west"))
	}
	// The first failure moves to the other gateway at once (after the
	// pacing interval).
	at := t0.Add(c.cfg.WatchMinInterval)
	w2 := oneWatch(t, c.Watches(at))
	if w2.Gateway == w1.Gateway {
		t.Fatalf("after a failure the watch stayed on %s", w1.Gateway)
	}
	// A second failure in a row backs off.
	c.WatchFailed(at, w2, errors.New("reset"))
	if got := c.Watches(at.Add(c.cfg.WatchMinInterval)); len(got) != 0 {
		t.Fatalf("a watch right after a second failure: %v, want a backoff", got)
	}
	w3 := oneWatch(t, c.Watches(at.Add(c.cfg.BackoffBase*2)))
	if w3.Gateway != w1.Gateway {
		t.Fatalf("third watch at %s, want the rotation back at %s", w3.Gateway, w1.Gateway)
	}
	// An answer clears the failures and the error.
	if err := c.WatchDone(at.Add(3*time.Second), w3, SyncResult{Version: 2, Changes: []region.Change{}}); err != nil {
		t.Fatal(err)
	}
	if e := c.WatchError("eu-west"); e != "" {
		t.Fatalf("watch error after an answer: %q", e)
	}
	// Failures of a watch that is no longer current change nothing.
	c.WatchFailed(at.Add(4*time.Second), w1, errors.New("late"))
	if e := c.WatchError("eu-west"); e != "" {
		t.Fatalf("a stale watch's failure counted: %q", e)
	}
}

func TestWatchRetiredWhenGatewayDiesOrTimesOut(t *testing.T) {
	c := watchedCore(t)
	w1 := oneWatch(t, c.Watches(t0))
	if !c.WatchCurrent("eu-west", w1.Seq) {
		t.Fatal("the watch just started is not current")
	}
	failed := gw(w1.Gateway, "eu-west", 2)
	failed.Status = StatusFailed
	c.Member(t0.Add(time.Second), MemberEvent{Kind: EventFailed, Member: failed})
	w2 := oneWatch(t, c.Watches(t0.Add(time.Second)))
	if c.WatchCurrent("eu-west", w1.Seq) || w2.Gateway == w1.Gateway {
		t.Fatalf("after %s failed: current %v, new watch at %s", w1.Gateway, c.WatchCurrent("eu-west", w1.Seq), w2.Gateway)
	}
	if c.WatchError("eu-west") != "" {
		t.Fatal("a watch moved off a dead gateway counted as a failure")
	}
	// A watch unanswered past its wait, jitter and the fetch timeout
	// counts as failed.
	timeout := c.cfg.WatchWait + c.cfg.WatchWait/16 + c.cfg.FetchTimeout
	if d := c.WatchDeadline(t0.Add(time.Second)); !d.Equal(t0.Add(time.Second + timeout)) {
		t.Fatalf("deadline %s, want the watch's timeout", d)
	}
	c.Watches(t0.Add(time.Second + timeout))
	if c.WatchCurrent("eu-west", w2.Seq) || !strings.Contains(c.WatchError("eu-west"), "unanswered") {
		t.Fatalf("after the timeout: current %v, error %q", c.WatchCurrent("eu-west", w2.Seq), c.WatchError("eu-west"))
	}
}

func TestWatchVersionsOnlyGrow(t *testing.T) {
	c := watchedCore(t)
	w := oneWatch(t, c.Watches(t0))
	// An older snapshot is refused (the region's gateways advertise v2).
	old := region.NewCatalog()
	old.Apply(put(1, "a"))
	if err := c.WatchDone(t0, w, SyncResult{Full: true, Version: 1, Catalog: old}); err == nil {
		t.Fatal("an older snapshot was applied")
	}
	if v := c.Replica("eu-west").Version(); v != 2 {
		t.Fatalf("replica v%d after an older snapshot, want v2", v)
	}
	// A gap is not applied; a snapshot is due (the pull fetches it) and
	// the region is not watched until then.
	w = oneWatch(t, c.Watches(t0.Add(time.Second)))
	if err := c.WatchDone(t0.Add(time.Second), w, SyncResult{Version: 5, Changes: []region.Change{put(4, "x"), put(5, "y")}}); err == nil {
		t.Fatal("a gap was applied")
	}
	if got := c.Watches(t0.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("watched while a snapshot is due: %v", got)
	}
	f := only(t, c.Tick(t0.Add(time.Minute)), EffectFetch)
	if f.Since != 0 {
		t.Fatalf("after a watched gap the pull fetched since v%d, want a snapshot", f.Since)
	}
	// A newer snapshot from a late watch moves the replica forward.
	newer := region.NewCatalog()
	for v := uint64(1); v <= 6; v++ {
		newer.Apply(put(v, "n"))
	}
	if err := c.WatchDone(t0.Add(time.Minute), w, SyncResult{Full: true, Version: 6, Catalog: newer}); err != nil {
		t.Fatal(err)
	}
	if v := c.Replica("eu-west").Version(); v != 6 {
		t.Fatalf("replica v%d after a newer snapshot, want v6", v)
	}
}

func TestWatchesOff(t *testing.T) {
	cfg := LocalCoreConfig("us-east", "us-east-1")
	cfg.WatchWait = 0
	c, err := NewCore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 2)})
	f := only(t, c.Tick(t0), EffectFetch)
	c.FetchDone(t0, f, SyncResult{Full: true, Version: 0, Catalog: region.NewCatalog()})
	if w := c.Watches(t0); len(w) != 0 || !c.WatchDeadline(t0).IsZero() {
		t.Fatalf("watches with WatchWait 0: %v", w)
	}
	cfg.WatchMinInterval = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "WatchMinInterval") {
		t.Fatalf("Validate: %v, want it to name WatchMinInterval", err)
	}
}

// TestWatchPending: the driver polls (WatchPending) while a region with an
// alive gateway is not watched — before its first replica, while its watch
// backs off — and not while every region has its watch in flight.
func TestWatchPending(t *testing.T) {
	c := newTestCore(t)
	if c.WatchPending() {
		t.Fatal("pending with no other region")
	}
	c.Member(t0, MemberEvent{Kind: EventJoin, Member: gw("eu-1", "eu-west", 2)})
	c.Tick(t0) // the region gets a state
	if !c.WatchPending() {
		t.Fatal("not pending for a region without a replica (the pull makes it)")
	}
	c = watchedCore(t)
	if !c.WatchPending() {
		t.Fatal("not pending with a replica and no watch in flight")
	}
	w := oneWatch(t, c.Watches(t0))
	if c.WatchPending() {
		t.Fatal("pending while the only region has its watch in flight")
	}
	c.WatchFailed(t0, w, errors.New("refused"))
	if !c.WatchPending() {
		t.Fatal("not pending after the watch failed")
	}
	c.cfg.WatchWait = 0
	if c.WatchPending() {
		t.Fatal("pending with watches off")
	}
}

// TestWatchHeldSinceBeforeFailuresDoesNotProveReachability: an answer to
// a watch sent before fetches started failing (a one-way cut: the answer
// comes back, requests do not get there) leaves the region unreachable;
// one sent after them makes it reachable again.
func TestWatchHeldSinceBeforeFailuresDoesNotProveReachability(t *testing.T) {
	c := watchedCore(t)
	w := oneWatch(t, c.Watches(t0))
	c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 3)})
	for i := 1; i <= 2; i++ {
		now := t0.Add(time.Duration(i) * time.Minute)
		f := only(t, c.Tick(now), EffectFetch)
		c.FetchFailed(now, f, errors.New("timed out"))
	}
	if c.View("eu-west").Reachable {
		t.Fatal("reachable after two failed fetches")
	}
	if err := c.WatchDone(t0.Add(3*time.Minute), w, SyncResult{Version: 2, Changes: []region.Change{}}); err != nil {
		t.Fatal(err)
	}
	if c.View("eu-west").Reachable {
		t.Fatal("an answer to a watch sent before the failures made the region reachable")
	}
	at := t0.Add(4 * time.Minute)
	w = oneWatch(t, c.Watches(at))
	if err := c.WatchDone(at.Add(time.Second), w, SyncResult{Version: 2, Changes: []region.Change{}}); err != nil {
		t.Fatal(err)
	}
	if !c.View("eu-west").Reachable {
		t.Fatal("still unreachable after an answer to a watch sent after the failures")
	}
}
