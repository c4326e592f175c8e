package federation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/rt"
)

// lockedCore is the smallest CoreUpdater: a core behind a mutex.
type lockedCore struct {
	mu   sync.Mutex
	core *Core
}

func (l *lockedCore) Update(fn func(*Core)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.core)
}

// fakeWatches records the watches a Watcher starts; the test answers them.
type fakeWatches struct {
	mu       sync.Mutex
	started  []Watch
	done     map[uint64]func(SyncResult, error)
	canceled []uint64
}

func (f *fakeWatches) Watch(w Watch, done func(SyncResult, error)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, w)
	if f.done == nil {
		f.done = map[uint64]func(SyncResult, error){}
	}
	f.done[w.Seq] = done
	return func() {
		f.mu.Lock()
		f.canceled = append(f.canceled, w.Seq)
		d := f.done[w.Seq]
		delete(f.done, w.Seq)
		f.mu.Unlock()
		if d != nil {
			d(SyncResult{}, context.Canceled)
		}
	}
}

func (f *fakeWatches) last(t *testing.T) Watch {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) == 0 {
		t.Fatal("no watch started")
	}
	return f.started[len(f.started)-1]
}

func (f *fakeWatches) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.started)
}

func (f *fakeWatches) answer(t *testing.T, seq uint64, r SyncResult, err error) {
	t.Helper()
	f.mu.Lock()
	d := f.done[seq]
	delete(f.done, seq)
	f.mu.Unlock()
	if d == nil {
		t.Fatalf("watch #%d is not in flight", seq)
	}
	d(r, err)
}

var _ WatchTransport = (*fakeWatches)(nil)

// TestWatcherDrivesTheCore runs the driver on the manual runtime: it starts
// the watch the core asks for, applies answers through the core, paces the
// next watch, rotates on failure, aborts a watch the core retired, and
// aborts everything on Stop.
func TestWatcherDrivesTheCore(t *testing.T) {
	lc := &lockedCore{core: watchedCore(t)}
	m := rt.NewManual(t0)
	tr := &fakeWatches{}
	var applied []string
	w, err := NewWatcher(WatcherConfig{Runtime: m, Core: lc, Transport: tr, OnApplied: func(r string) { applied = append(applied, r) }})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	m.Run()
	w1 := tr.last(t)
	if w1.Since != 2 || tr.count() != 1 {
		t.Fatalf("first watch %v (%d started), want one since v2", w1, tr.count())
	}

	// An answer is applied at once; the next watch starts after the
	// pacing interval, since the new version.
	tr.answer(t, w1.Seq, SyncResult{Version: 3, Changes: []region.Change{put(3, "c")}}, nil)
	lc.Update(func(c *Core) {
		if v := c.Replica("eu-west").Version(); v != 3 {
			t.Fatalf("replica v%d after the answer, want v3", v)
		}
	})
	if len(applied) != 1 || applied[0] != "eu-west" {
		t.Fatalf("OnApplied calls: %v", applied)
	}
	m.Run()
	if tr.count() != 1 {
		t.Fatalf("a watch started before the pacing interval: %v", tr.last(t))
	}
	m.Advance(lc.core.cfg.WatchMinInterval)
	w2 := tr.last(t)
	if tr.count() != 2 || w2.Since != 3 || w2.Gateway != w1.Gateway {
		t.Fatalf("second watch %v, want since v3 at %s", w2, w1.Gateway)
	}

	// A failure rotates to the other gateway.
	tr.answer(t, w2.Seq, SyncResult{}, errors.New("connection refused"))
	m.Advance(lc.core.cfg.WatchMinInterval)
	w3 := tr.last(t)
	if w3.Gateway == w2.Gateway {
		t.Fatalf("after a failure the watch stayed at %s", w2.Gateway)
	}

	// The watched gateway fails in gossip: the driver aborts the watch and
	// starts one at the other gateway.
	failed := gw(w3.Gateway, "eu-west", 2)
	failed.Status = StatusFailed
	lc.Update(func(c *Core) { c.Member(m.Now(), MemberEvent{Kind: EventFailed, Member: failed}) })
	w.Kick()
	m.Run()
	if !containsSeq(tr.canceled, w3.Seq) {
		t.Fatalf("the watch at failed %s was not aborted: canceled %v", w3.Gateway, tr.canceled)
	}
	m.Advance(lc.core.cfg.WatchMinInterval)
	w4 := tr.last(t)
	if w4.Gateway == w3.Gateway || !containsSeq(tr.canceled, w3.Seq) {
		t.Fatalf("after %s failed: new watch %v, canceled %v", w3.Gateway, w4, tr.canceled)
	}

	w.Stop()
	if !containsSeq(tr.canceled, w4.Seq) {
		t.Fatalf("Stop did not abort watch #%d: canceled %v", w4.Seq, tr.canceled)
	}
	m.Advance(time.Hour)
	if tr.last(t).Seq != w4.Seq {
		t.Fatalf("a watch started after Stop: %v", tr.last(t))
	}
}

func containsSeq(s []uint64, x uint64) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
