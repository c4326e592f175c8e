package region

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDetectLoss(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seen, got StoreMark
		loss      bool
	}{
		{"fresh gateway", StoreMark{}, StoreMark{Version: 0}, false},
		{"fresh gateway, store ahead", StoreMark{}, StoreMark{Version: 9, Epoch: "a"}, false},
		{"same epoch ahead", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 81, Epoch: "a"}, false},
		{"same epoch same version", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 80, Epoch: "a"}, false},
		{"emptied store", StoreMark{Version: 80, Epoch: "a"}, StoreMark{}, true},
		{"emptied store, written since", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 3, Epoch: "b"}, true},
		{"new epoch ahead", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 95, Epoch: "b"}, true},
		{"version back, same epoch", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 70, Epoch: "a"}, true},
		{"no epoch seen, version back", StoreMark{Version: 80}, StoreMark{Version: 2, Epoch: "b"}, true},
		{"no epoch seen, epoch appears", StoreMark{Version: 80}, StoreMark{Version: 81, Epoch: "b"}, false},
		{"restored from seen", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 180, Epoch: "c", RestoredFrom: "a"}, false},
		{"restored from seen but behind", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 79, Epoch: "c", RestoredFrom: "a"}, true},
		{"restored from another epoch", StoreMark{Version: 80, Epoch: "a"}, StoreMark{Version: 180, Epoch: "c", RestoredFrom: "z"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loss, reason := DetectLoss(tc.seen, tc.got)
			if loss != tc.loss || (loss && reason == "") {
				t.Fatalf("DetectLoss(%+v, %+v) = %v %q, want %v with a reason", tc.seen, tc.got, loss, reason, tc.loss)
			}
		})
	}
}

func TestMergeRestoreStoreWins(t *testing.T) {
	mem := []Instance{testInstance("web", "b", 1), testInstance("web", "a", 1), testInstance("api", "x", 1)}
	store := []Instance{testInstance("web", "a", 2), testInstance("db", "new", 2)}
	got := MergeRestore(mem, store)
	var keys []string
	for _, in := range got {
		keys = append(keys, in.Key().String())
	}
	if want := "api/x web/b"; strings.Join(keys, " ") != want {
		t.Fatalf("MergeRestore = %v, want %s (what the store lacks, sorted)", keys, want)
	}
	if v := RestoreVersion(80, 3); v != 80+RestoreVersionGap {
		t.Fatalf("RestoreVersion(80, 3) = %d", v)
	}
	if v := RestoreVersion(80, 500); v != 500+RestoreVersionGap {
		t.Fatalf("RestoreVersion(80, 500) = %d", v)
	}
	for _, s := range []string{"", "restore", "accept"} {
		if _, err := ParseOnStoreLoss(s); err != nil {
			t.Fatalf("ParseOnStoreLoss(%q): %v", s, err)
		}
	}
	if _, err := ParseOnStoreLoss("ignore"); err == nil {
		t.Fatal("ParseOnStoreLoss(ignore) accepted")
	}
}

// logBuffer is a concurrency-safe slog text sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func fill(t *testing.T, s Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Put(context.Background(), testInstance("web", fmt.Sprint("i", i), 80), Cond{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheRestoresLostStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(0)
	fill(t, s, 20)
	var logs logBuffer
	c := NewCache(s, CacheOptions{Logger: logs.logger()})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.Version()
	s.Wipe()
	s.Put(ctx, testInstance("web", "late", 80), Cond{})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Version() <= before {
		t.Fatalf("version after restore %d, want above %d", c.Version(), before)
	}
	snap, _ := s.Snapshot(ctx)
	if snap.Version != c.Version() || len(snap.Instances) != 21 {
		t.Fatalf("store after restore: v%d %d instances, want v%d and 21", snap.Version, len(snap.Instances), c.Version())
	}
	l, ok := c.StoreLoss()
	if !ok || !l.Restored || !l.RestoredBySelf || l.Seen.Version != before || c.StoreLosses() != 1 || c.Freshness().LossPending {
		t.Fatalf("loss %+v %v, losses %d, want restored by this cache from v%d", l, ok, c.StoreLosses(), before)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "store data loss") {
		t.Fatalf("want one ERROR line about the loss, got %d:\n%s", n, logs.String())
	}
	// Following on from the restore is ordinary.
	s.Put(ctx, testInstance("web", "after", 80), Cond{})
	if err := c.Sync(ctx); err != nil || c.StoreLosses() != 1 {
		t.Fatalf("sync after restore: %v, losses %d", err, c.StoreLosses())
	}
}

func TestCacheTwoGatewaysRestoreOnce(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(0)
	fill(t, s, 10)
	a, b := NewCache(s, CacheOptions{Logger: slog.New(slog.DiscardHandler)}), NewCache(s, CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	a.Sync(ctx)
	b.Sync(ctx)
	s.Wipe()
	var wg sync.WaitGroup
	for _, c := range []*Cache{a, b} {
		wg.Go(func() {
			if err := c.Sync(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	restorers := 0
	for _, c := range []*Cache{a, b} {
		if l, ok := c.StoreLoss(); ok && l.RestoredBySelf {
			restorers++
		}
	}
	if restorers != 1 || a.Version() != b.Version() || a.Version() <= 10 {
		t.Fatalf("%d restorers, versions %d %d; want one restore, both above 10 and equal", restorers, a.Version(), b.Version())
	}
}

func TestCacheAcceptsLostStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(0)
	fill(t, s, 5)
	var logs logBuffer
	c := NewCache(s, CacheOptions{Logger: logs.logger(), OnStoreLoss: LossAccept})
	c.Sync(ctx)
	// A blocking query on the current version is woken by the loss even
	// though the version goes down.
	woke := make(chan uint64, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() { woke <- c.Wait(wctx, c.Version()) }()
	time.Sleep(20 * time.Millisecond)
	s.Wipe()
	s.Put(ctx, testInstance("web", "late", 80), Cond{})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-woke:
		if v != 1 && v != 5 {
			t.Fatalf("woken at v%d, want 5 (the loss) or 1 (the accepted store)", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken by the loss")
	}
	l, _ := c.StoreLoss()
	if c.Version() != 1 || !l.Accepted || l.Restored || c.Freshness().LossPending {
		t.Fatalf("accept: version %d loss %+v", c.Version(), l)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 || !strings.Contains(logs.String(), "accepted") {
		t.Fatalf("want two ERROR lines (loss, accepted), got %d:\n%s", n, logs.String())
	}
}

// failingRestore is a store whose Restore fails, so a loss stays pending.
type failingRestore struct{ *MemStore }

func (failingRestore) Restore(context.Context, string, RestoreRequest) (bool, error) {
	return false, errors.New("restore refused")
}

func TestCachePendingLossServesCache(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(0)
	fill(t, s, 5)
	c := NewCache(failingRestore{s}, CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	c.Sync(ctx)
	woke := make(chan uint64, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() { woke <- c.Wait(wctx, 5) }()
	time.Sleep(20 * time.Millisecond)
	s.Wipe()
	if err := c.Sync(ctx); err == nil || !strings.Contains(err.Error(), "store data loss") {
		t.Fatalf("Sync during a loss that cannot be restored: %v", err)
	}
	select {
	case v := <-woke:
		if v != 5 {
			t.Fatalf("woken at v%d, want 5", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken by the loss")
	}
	f := c.Freshness()
	if !f.LossPending || !f.Stale || f.Version != 5 || c.Trusts(0, "") || c.Trusts(10, "") || c.TrustsChanges("") {
		t.Fatalf("pending loss: %+v trusts store %v", f, c.Trusts(10, ""))
	}
	n := 0
	c.Read(func(cat *Catalog) { n = cat.Len() })
	if n != 5 {
		t.Fatalf("cache holds %d instances during the loss, want 5", n)
	}
	// Further syncs do not count the same loss again.
	c.Sync(ctx)
	if c.StoreLosses() != 1 {
		t.Fatalf("losses %d, want 1", c.StoreLosses())
	}
}

func TestCacheSettledAfterRestore(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(0)
	fill(t, s, 3)
	c := NewCache(s, CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	c.Sync(ctx)
	s.Wipe()
	ch, err := s.Put(ctx, testInstance("web", "late", 81), Cond{})
	if err != nil || ch.Version != 1 {
		t.Fatalf("write to the emptied store: %v %v", ch, err)
	}
	if c.Apply(ch) {
		t.Fatal("the cache applied a change from another epoch of the store")
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := c.Settled(ch)
	if got.Version != c.Version() || got.Version <= 3 || got.Instance == nil || got.Instance.Port != 81 || got.Instance.ModifyIndex != got.Version {
		t.Fatalf("Settled = %+v (instance %+v), want the late write at the restored v%d", got, got.Instance, c.Version())
	}
	// A change of the cache's own epoch is returned as it is.
	next, _ := s.Put(ctx, testInstance("web", "next", 80), Cond{})
	c.Apply(next)
	if c.Settled(next) != next {
		t.Fatalf("Settled changed a current change: %+v", c.Settled(next))
	}
}
