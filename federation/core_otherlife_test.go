package federation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// The bug (fuzz seed 2): a region reset (its store lost everything while
// all its gateways were down, so nobody wrote the catalog back) whose new
// life climbs back to the replica's version before the tags have stayed
// below it for AntiEntropy. An anti-entropy fetch since the replica's
// version then got an empty delta, and later a delta of the new life's
// changes applied on top of the old life's catalog: the replica kept
// instances, ports and timestamps the region no longer has, for good.
// Deltas carry the store's epoch (an empty one the epoch at its version,
// as the serving cache found it); a delta of another life than the
// replica's is refused and a snapshot fetched, by pull and by watch.
func TestCoreDeltaOfAnotherStoreLifeFetchesSnapshot(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mem := region.NewMemStore(100)
	life := func(n, port int) *region.Cache {
		t.Helper()
		mem.Wipe()
		for i := range n {
			in := region.Instance{ID: fmt.Sprint("i", i), Service: "web", Address: "10.0.0.1", Port: port, Weight: 100, Status: region.StatusPassing}
			if _, err := mem.Put(ctx, in, region.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
		cache := region.NewCache(mem, region.CacheOptions{Logger: quiet})
		if err := cache.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return cache
	}
	src := CatalogSource{Region: "eu-west", Store: mem, Cache: life(5, 80)}
	result := func(since uint64) SyncResult { return sourceResult(t, src, since) }
	// pull runs the core's fetches from at on, each answered by src, until
	// one applies; it returns the fetches' since values.
	pull := func(c *Core, at time.Time) []uint64 {
		t.Helper()
		var sinces []uint64
		for now := at; now.Before(at.Add(time.Minute)); now = now.Add(10 * time.Millisecond) {
			for _, f := range fetches(c.Tick(now)) {
				sinces = append(sinces, f.Since)
				if err := c.FetchDone(now, f, result(f.Since)); err == nil {
					return sinces
				}
			}
		}
		t.Fatalf("no fetch applied within a minute of %v (fetches since %v)", at, sinces)
		return nil
	}
	same := func(c *Core, what string) {
		t.Helper()
		snap, _ := mem.Snapshot(ctx)
		rep := c.Replica("eu-west")
		want := region.NewCatalog()
		want.Load(snap)
		if !sameCatalog(rep.Catalog, want) || rep.Epoch != snap.Epoch {
			t.Fatalf("%s: replica v%d (epoch %q) is not the store's catalog v%d (epoch %q)",
				what, rep.Version(), rep.Epoch, snap.Version, snap.Epoch)
		}
	}
	c := replicaIn(t, 5, result(0))
	same(c, "first sync")

	// Reset; the new life is back at v5 (other ports): the anti-entropy
	// fetch since v5 gets an empty delta in the new epoch.
	src.Cache = life(5, 81)
	if got := pull(c, t0.Add(c.cfg.AntiEntropy)); len(got) != 2 || got[0] != 5 || got[1] != 0 {
		t.Errorf("fetches since %v, want [5 0]: the empty delta of another life, then a snapshot", got)
	}
	same(c, "reset back at the replica's version")

	// Reset again; the new life climbs past the replica: the delta since
	// v5 (v6, v7) is of another life.
	src.Cache = life(7, 82)
	for _, g := range []string{"eu-1", "eu-2"} {
		c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw(g, "eu-west", 7)})
	}
	if got := pull(c, t0.Add(2*c.cfg.AntiEntropy)); len(got) != 2 || got[0] != 5 || got[1] != 0 {
		t.Errorf("fetches since %v, want [5 0]: the delta of another life, then a snapshot", got)
	}
	same(c, "reset past the replica's version")

	// By watch: the watched delta of another life is refused, the replica
	// kept, and the pull asks for a snapshot.
	src.Cache = life(9, 83)
	for _, g := range []string{"eu-1", "eu-2"} {
		c.Member(t0, MemberEvent{Kind: EventUpdate, Member: gw(g, "eu-west", 9)})
	}
	now := t0.Add(3 * c.cfg.AntiEntropy)
	w := oneWatch(t, c.Watches(now))
	if err := c.WatchDone(now, w, result(w.Since)); err == nil || c.Replica("eu-west").Version() != 7 {
		t.Fatalf("watched delta of another life: err %v, replica v%d, want refused and v7", err, c.Replica("eu-west").Version())
	}
	if got := pull(c, now); got[0] != 0 {
		t.Errorf("fetches since %v after the refused watch, want a snapshot first", got)
	}
	same(c, "after the watch")
}

// lostLogStore is a store whose change log lost changes it still claims
// to reach: ChangesSince answers a version before its catalog's with no
// change (a log a restore cleared, with a reach check that missed it: the
// log_trimmed fault after a store restart, fuzz seed 231).
type lostLogStore struct{ region.Store }

func (s lostLogStore) ChangesSince(ctx context.Context, since uint64, max int) ([]region.Change, bool, error) {
	return nil, true, nil
}

// An answer "nothing since v3" from a source whose cache holds v5 would
// keep a replica at v3 for good (every fetch since v3 gets the same); the
// source serves its whole catalog instead.
func TestCatalogSourceEmptyDeltaBehindCacheIsSnapshot(t *testing.T) {
	ctx := context.Background()
	mem := region.NewMemStore(100)
	for i := range 5 {
		in := region.Instance{ID: fmt.Sprint("i", i), Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100, Status: region.StatusPassing}
		if _, err := mem.Put(ctx, in, region.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache := region.NewCache(mem, region.CacheOptions{Logger: quiet})
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	src := CatalogSource{Region: "eu-west", Store: lostLogStore{mem}, Cache: cache}
	for _, tc := range []struct {
		since uint64
		full  bool
	}{{3, true}, {5, false}} {
		r := sourceResult(t, src, tc.since)
		if r.Full != tc.full || (r.Full && r.Catalog.Version() != 5) || (!r.Full && r.Version != 5) {
			t.Errorf("since v%d, cache at v5: full %v v%d, want full %v at v5", tc.since, r.Full, r.Version, tc.full)
		}
	}
}

// sourceResult is src's answer to a pull since v, as the pulling gateway
// reads it.
func sourceResult(t *testing.T, src CatalogSource, since uint64) SyncResult {
	t.Helper()
	ans, err := src.Answer(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	r, err := AnswerOf(ans).Result(src.Region)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
