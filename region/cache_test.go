package region

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// fakeClock is a settable clock for cache freshness.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheFollowsLogAndReloads(t *testing.T) {
	ctx := context.Background()
	store := NewMemStore(3)
	for i := range 2 {
		store.Put(ctx, testInstance("web", fmt.Sprint("a", i), 80), Cond{})
	}
	c := NewCache(store, CacheOptions{})
	var reloads, applied int
	c.OnChange(func(chs []Change, reload bool) {
		if reload {
			reloads++
		}
		applied += len(chs)
	})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 2 || reloads != 1 {
		t.Fatalf("first sync: version %d reloads %d, want 2 and 1 (snapshot)", c.Version(), reloads)
	}
	// Within the log: follows changes, no reload.
	store.Put(ctx, testInstance("web", "b", 80), Cond{})
	store.Delete(ctx, Key{"web", "a0"}, Cond{})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 4 || reloads != 1 || applied != 2 {
		t.Fatalf("log catch-up: version %d reloads %d applied %d, want 4, 1, 2", c.Version(), reloads, applied)
	}
	// Past the log (it keeps 3): reloads a snapshot.
	for i := range 5 {
		store.Put(ctx, testInstance("api", fmt.Sprint("x", i), 80), Cond{})
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 9 || reloads != 2 {
		t.Fatalf("behind the log: version %d reloads %d, want 9 and 2", c.Version(), reloads)
	}
	var got []string
	c.Read(func(cat *Catalog) {
		for _, in := range cat.All() {
			got = append(got, in.Key().String())
		}
	})
	want := "[api/x0 api/x1 api/x2 api/x3 api/x4 web/a1 web/b]"
	if fmt.Sprint(got) != want {
		t.Fatalf("catalog after reload: got %v, want %s", got, want)
	}
}

func TestCacheApplyOwnWritesAndGaps(t *testing.T) {
	ctx := context.Background()
	store := NewMemStore(100)
	m := rt.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := NewCache(store, CacheOptions{Runtime: m})
	c.Start(ctx)
	m.Run()
	ch1, _ := store.Put(ctx, testInstance("web", "a", 80), Cond{})
	c.Apply(ch1)
	if c.Version() != 1 {
		t.Fatalf("own write: version %d, want 1", c.Version())
	}
	c.Apply(ch1) // duplicate: ignored
	_, _ = store.Put(ctx, testInstance("web", "b", 80), Cond{})
	ch3, _ := store.Put(ctx, testInstance("web", "c", 80), Cond{})
	c.Apply(ch3) // skips v2: not applied, Run is kicked
	if c.Version() != 1 {
		t.Fatalf("gap: version %d, want 1 until a sync", c.Version())
	}
	if n := m.Run(); n == 0 {
		t.Fatal("a gap must kick the follower")
	}
	if c.Version() != 3 {
		t.Fatalf("after sync: version %d, want 3", c.Version())
	}
}

func TestCacheStalenessAndOutage(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	faulty := NewFaultyStore(NewMemStore(100))
	c := NewCache(faulty, CacheOptions{CatchUp: time.Second, Now: clk.Now})

	if f := c.Freshness(); f.Loaded || !f.Stale {
		t.Fatalf("before the first sync: got %+v, want not loaded and stale", f)
	}
	faulty.Put(ctx, testInstance("web", "a", 80), Cond{})
	c.Sync(ctx)
	clk.Add(2 * time.Second)
	if f := c.Freshness(); !f.Loaded || f.Stale || f.Age != 2*time.Second {
		t.Fatalf("synced 2s ago: got %+v, want loaded, fresh, age 2s", f)
	}
	clk.Add(2 * time.Second)
	if f := c.Freshness(); !f.Stale {
		t.Fatalf("4s without a read (StaleAfter 3s): got %+v, want stale", f)
	}
	down := errors.New("connection refused")
	faulty.Fail(down)
	if err := c.Sync(ctx); !errors.Is(err, down) {
		t.Fatalf("sync during outage: got %v, want %v", err, down)
	}
	f := c.Freshness()
	if !f.Stale || !errors.Is(f.StoreErr, down) || f.Version != 1 {
		t.Fatalf("outage: got %+v, want stale with the store error and v1 still served", f)
	}
	var n int
	c.Read(func(cat *Catalog) { n = len(cat.Instances("web", Filter{})) })
	if n != 1 {
		t.Fatalf("outage: %d instances served, want 1 from the cache", n)
	}
	faulty.Fail(nil)
	faulty.Put(ctx, testInstance("web", "b", 80), Cond{})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if f := c.Freshness(); f.Stale || f.StoreErr != nil || f.Version != 2 {
		t.Fatalf("after the outage: got %+v, want fresh at v2", f)
	}
}

func TestCacheWait(t *testing.T) {
	ctx := context.Background()
	store := NewMemStore(100)
	c := NewCache(store, CacheOptions{})
	c.Sync(ctx)
	done := make(chan uint64)
	go func() { done <- c.Wait(ctx, 0) }()
	select {
	case v := <-done:
		t.Fatalf("Wait returned %d before any change", v)
	case <-time.After(20 * time.Millisecond):
	}
	ch, _ := store.Put(ctx, testInstance("web", "a", 80), Cond{})
	c.Apply(ch)
	select {
	case v := <-done:
		if v != 1 {
			t.Fatalf("Wait returned %d, want 1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after a change")
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if v := c.Wait(tctx, 1); v != 1 {
		t.Fatalf("Wait on timeout returned %d, want the current version 1", v)
	}
}

// TestCacheRunFollowsNotifications checks the driver loop: a write by
// another gateway (straight to the store) reaches this cache.
func TestCacheRunFollowsNotifications(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := NewMemStore(100)
	c := NewCache(store, CacheOptions{CatchUp: time.Hour}) // only notifications
	go c.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	for c.Freshness().Loaded == false && wctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	store.Put(ctx, testInstance("web", "a", 80), Cond{})
	if v := c.Wait(wctx, 0); v != 1 {
		t.Fatalf("cache at v%d after a notified write, want v1", v)
	}
}
