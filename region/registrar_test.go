package region

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// lossyStore applies a Put and then loses its answer, n times.
type lossyStore struct {
	Store
	lose int
}

func (s *lossyStore) Put(ctx context.Context, in Instance, c Cond) (Change, error) {
	ch, err := s.Store.Put(ctx, in, c)
	if err == nil && s.lose > 0 {
		s.lose--
		return Change{}, fmt.Errorf("%w: connection reset", ErrOutcomeUnknown)
	}
	return ch, err
}

func TestRegistrarRepeatsUnknownOutcomeOnce(t *testing.T) {
	ctx := context.Background()
	mem := NewMemStore(100)
	store := &lossyStore{Store: mem, lose: 2}
	cache := NewCache(mem, CacheOptions{})
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	r := &Registrar{Store: store, Cache: cache, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}
	ch, err := r.Register(ctx, testInstance("web", "a", 80), "c:1")
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := mem.Snapshot(ctx)
	if ch.Version != 1 || snap.Version != 1 {
		t.Fatalf("version %d (store %d), want 1: the write id must make repeats idempotent", ch.Version, snap.Version)
	}
	if len(slept) != 2 || slept[0] != 50*time.Millisecond || slept[1] != 100*time.Millisecond {
		t.Fatalf("backoff %v, want [50ms 100ms]", slept)
	}
	var ok bool
	cache.Read(func(c *Catalog) { _, ok = c.Get(Key{Service: "web", ID: "a"}) })
	if !ok {
		t.Fatalf("the cache must read the acknowledged write: %+v; cache v%d", ch, cache.Version())
	}

	bad := testInstance("web", "b", 0)
	bad.Port = -1
	if _, err := r.Register(ctx, bad, ""); err == nil {
		t.Fatal("an invalid instance must be refused")
	}
	if _, err := r.Deregister(ctx, Key{Service: "web", ID: "nope"}, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deregister unknown: %v, want ErrNotFound", err)
	}
	if _, err := r.Deregister(ctx, Key{Service: "web", ID: "a"}, ""); err != nil {
		t.Fatal(err)
	}
	cache.Read(func(c *Catalog) { _, ok = c.Get(Key{Service: "web", ID: "a"}) })
	if ok {
		t.Fatal("the cache still holds a deregistered instance")
	}
}
