package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/internal/redistest"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

// TestGroupCommitConcurrentMixed: 32 writers at once against a real
// redis-server, mixing new registrations, replacements with a stale index
// (conflict), replacements with the right index, deletes of absent
// instances (not found) and repeats of a write id. Each write must get
// its own result; the successful ones must hold every version from 1 up
// exactly once, each in the change log exactly once with its own key; and
// the writes must have gone in fewer round trips than writes (batched).
//
// It runs with the default options and with batches of at most 3 writes,
// so that a round trip pipelines several script calls; and Redis forgets
// its scripts (SCRIPT FLUSH) before the run, so the first round trip finds
// NOSCRIPT and sends the script's text.
func TestGroupCommitConcurrentMixed(t *testing.T) {
	url := redistest.FromEnv(t)
	for _, opt := range []CommitOptions{{}, {MaxBatch: 3, MaxScripts: 4}} {
		t.Run(fmt.Sprintf("max-batch=%d", opt.MaxBatch), func(t *testing.T) {
			s, err := NewRedisStore(RedisOptions{URL: url, Region: uniqueRegion()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetCommitOptions(opt)
			if err := s.Client().ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			testGroupCommitMixed(t, s)
		})
	}
}

func testGroupCommitMixed(t *testing.T, s *RedisStore) {
	ctx := context.Background()
	var err error
	// Each writer owns one instance it registers first.
	const writers, rounds = 32, 20
	seed := make([]region.Change, writers)
	for w := range writers {
		if seed[w], err = s.Put(ctx, storetest.TestInstance("web", fmt.Sprintf("w%02d", w), 1), region.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		what string
		k    region.Key
		ch   region.Change
		err  error
	}
	results := make([][]result, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := seed[w].Version
			own := storetest.TestInstance("web", fmt.Sprintf("w%02d", w), 1)
			for r := range rounds {
				var res result
				switch r % 5 {
				case 0: // a new instance
					in := storetest.TestInstance("api", fmt.Sprintf("w%02d-r%02d", w, r), 2)
					res.what, res.k = "new", in.Key()
					res.ch, res.err = s.Put(ctx, in, region.Cond{WriteID: fmt.Sprintf("new-%d-%d", w, r)})
				case 1: // a stale index: conflict
					res.what, res.k = "stale", own.Key()
					res.ch, res.err = s.Put(ctx, own, region.Cond{IfIndex: idx + 1_000_000})
				case 2: // the right index
					own.Port++
					res.what, res.k = "cas", own.Key()
					res.ch, res.err = s.Put(ctx, own, region.Cond{IfIndex: idx})
					if res.err == nil {
						idx = res.ch.Version
					}
				case 3: // a delete of an absent instance
					res.what, res.k = "absent", region.Key{Service: "api", ID: fmt.Sprintf("none-%d-%d", w, r)}
					res.ch, res.err = s.Delete(ctx, res.k, region.Cond{})
				case 4: // a repeat of round r-4's write id: its first result
					in := storetest.TestInstance("api", fmt.Sprintf("w%02d-r%02d", w, r-4), 2)
					res.what, res.k = "repeat", in.Key()
					res.ch, res.err = s.Put(ctx, in, region.Cond{WriteID: fmt.Sprintf("new-%d-%d", w, r-4)})
				}
				results[w] = append(results[w], res)
			}
		}()
	}
	wg.Wait()

	versions := map[uint64]region.Key{}
	for _, ch := range seed {
		versions[ch.Version] = region.Key{Service: ch.Service, ID: ch.ID}
	}
	for w := range writers {
		var firsts = map[region.Key]uint64{}
		for r, res := range results[w] {
			switch res.what {
			case "new", "cas":
				if res.err != nil || res.ch.Version == 0 || res.ch.Instance == nil || res.ch.Instance.Key() != res.k {
					t.Fatalf("writer %d round %d (%s %s): got %+v, %v; want its own change", w, r, res.what, res.k, res.ch, res.err)
				}
				if prev, dup := versions[res.ch.Version]; dup {
					t.Fatalf("version %d given to %s and to %s", res.ch.Version, prev, res.k)
				}
				versions[res.ch.Version] = res.k
				firsts[res.k] = res.ch.Version
			case "stale":
				if !errors.Is(res.err, region.ErrConflict) {
					t.Fatalf("writer %d round %d (stale index): got %+v, %v; want ErrConflict", w, r, res.ch, res.err)
				}
			case "absent":
				if !errors.Is(res.err, region.ErrNotFound) {
					t.Fatalf("writer %d round %d (delete absent): got %+v, %v; want ErrNotFound", w, r, res.ch, res.err)
				}
			case "repeat":
				if res.err != nil || res.ch.Version != firsts[res.k] {
					t.Fatalf("writer %d round %d (repeat of %s): got v%d, %v; want the first result v%d", w, r, res.k, res.ch.Version, res.err, firsts[res.k])
				}
			}
		}
	}
	n := uint64(len(versions))
	for v := uint64(1); v <= n; v++ {
		if _, ok := versions[v]; !ok {
			t.Fatalf("versions 1..%d: %d is missing (the versions are not dense)", n, v)
		}
	}
	chs, ok, err := s.ChangesSince(ctx, 0, 0)
	if err != nil || !ok {
		t.Fatalf("change log: ok %v, %v", ok, err)
	}
	if uint64(len(chs)) != n {
		t.Fatalf("change log holds %d changes, want %d (one per successful write)", len(chs), n)
	}
	for i, ch := range chs {
		if ch.Version != uint64(i+1) || (region.Key{Service: ch.Service, ID: ch.ID}) != versions[ch.Version] {
			t.Fatalf("change log entry %d: v%d %s/%s, want v%d %s", i, ch.Version, ch.Service, ch.ID, i+1, versions[uint64(i+1)])
		}
	}
	trips, writes := s.CommitStats()
	if writes != int64(writers+writers*rounds) || trips >= writes {
		t.Fatalf("group commit: %d writes in %d round trips; want %d writes in fewer round trips", writes, trips, writers+writers*rounds)
	}
	t.Logf("%d writes in %d round trips", writes, trips)
}

// TestGroupCommitStalledBatch: Redis stops (SIGSTOP) while a batch is in
// flight. Every write of it, and of the batch queued behind it, must
// report ErrOutcomeUnknown; once Redis runs again, repeating each write
// with its write id must return one result per write (the same on a
// second repeat), and the change log must hold each write exactly once.
func TestGroupCommitStalledBatch(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := NewRedisStore(RedisOptions{URL: srv.URL() + "?read_timeout=200ms&write_timeout=200ms", Region: uniqueRegion()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 12
	srv.Pause(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Put(ctx, storetest.TestInstance("web", fmt.Sprintf("i%02d", i), 1), region.Cond{WriteID: fmt.Sprintf("stall-%d", i)})
		}()
	}
	wg.Wait()
	srv.Resume(t)
	for i, err := range errs {
		if !errors.Is(err, region.ErrOutcomeUnknown) {
			t.Fatalf("write %d during the stall: got %v, want ErrOutcomeUnknown", i, err)
		}
	}
	var vs []uint64
	for i := range n {
		var first uint64
		for attempt := range 2 {
			ch, err := s.Put(ctx, storetest.TestInstance("web", fmt.Sprintf("i%02d", i), 1), region.Cond{WriteID: fmt.Sprintf("stall-%d", i)})
			if err != nil || ch.Version == 0 {
				t.Fatalf("repeat %d of write %d: got %+v, %v", attempt, i, ch, err)
			}
			if attempt == 0 {
				first = ch.Version
				vs = append(vs, first)
			} else if ch.Version != first {
				t.Fatalf("repeat %d of write %d: v%d, the first repeat said v%d", attempt, i, ch.Version, first)
			}
		}
	}
	slices.Sort(vs)
	if len(slices.Compact(vs)) != n {
		t.Fatalf("the %d writes have versions %v, want %d distinct", n, vs, n)
	}
	chs, _, err := s.ChangesSince(ctx, 0, 100)
	if err != nil || len(chs) != n {
		t.Fatalf("change log: %d entries (%v), want exactly %d", len(chs), err, n)
	}
	if trips, writes := s.CommitStats(); trips >= writes {
		t.Fatalf("%d writes in %d round trips: the stalled writes were not batched", writes, trips)
	}
}

// TestGroupCommitCancelQueued: a writer that gives up while its write is
// still queued (the round trip before it is stalled) learns that nothing
// was written, and nothing is.
func TestGroupCommitCancelQueued(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := NewRedisStore(RedisOptions{URL: srv.URL() + "?read_timeout=500ms&write_timeout=500ms", Region: uniqueRegion()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	first := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, storetest.TestInstance("web", "first", 1), region.Cond{WriteID: "first"})
		first <- err
	}()
	time.Sleep(50 * time.Millisecond) // the first write is in flight
	qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.Put(qctx, storetest.TestInstance("web", "queued", 1), region.Cond{WriteID: "queued"})
	cancel()
	if err == nil || errors.Is(err, region.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write abandoned while queued: got %v, want a deadline error that is not ErrOutcomeUnknown", err)
	}
	err = <-first
	srv.Resume(t)
	if !errors.Is(err, region.ErrOutcomeUnknown) {
		t.Fatalf("stalled write: got %v, want ErrOutcomeUnknown", err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range snap.Instances {
		if in.ID == "queued" {
			t.Fatalf("the abandoned write was applied: %+v", in)
		}
	}
}

// TestGroupCommitMiniredis: the embedded store (miniredis, the agent's
// default) goes through the same group commit, with the same results.
func TestGroupCommitMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + m.Addr() + "/0", Region: uniqueRegion()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testGroupCommitMixed(t, s)
}
