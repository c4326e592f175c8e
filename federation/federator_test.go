package federation

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/rt"
)

// scriptedTransport answers fetches after a delay on the runtime, from a
// source store, or fails them while down.
type scriptedTransport struct {
	r       rt.Runtime
	src     CatalogSource
	delay   time.Duration
	down    bool
	fetches []Effect
}

func (t *scriptedTransport) Fetch(ctx context.Context, e Effect, done func(SyncResult, error)) {
	t.fetches = append(t.fetches, e)
	down := t.down
	t.r.AfterFunc(t.delay, func() {
		if down {
			done(SyncResult{}, errors.New("connection refused"))
			return
		}
		ans, err := t.src.Answer(ctx, e.Since)
		if err != nil {
			done(SyncResult{}, err)
			return
		}
		done(AnswerOf(ans).Result(e.Region))
	})
}

// TestFederatorOnManualRuntime drives the production Federator on a
// manual runtime: it fetches a remote region when its gateway joins,
// follows version updates with deltas, retries after a failed fetch, and
// persists the replica.
func TestFederatorOnManualRuntime(t *testing.T) {
	ctx := context.Background()
	m := rt.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := region.NewMemStore(100)
	put := func(id string) uint64 {
		ch, err := store.Put(ctx, region.Instance{ID: id, Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100, Status: region.StatusPassing}, region.Cond{})
		if err != nil {
			t.Fatal(err)
		}
		return ch.Version
	}
	put("a")
	tr := &scriptedTransport{r: m, src: CatalogSource{Region: "eu-west", Store: store}, delay: 50 * time.Millisecond}
	reps := NewMemReplicaStore()
	var outcomes []SyncOutcome
	f, err := NewFederator(FederatorConfig{Core: LocalCoreConfig("us-east", "us-1"), Runtime: m, Transport: tr,
		Replicas: reps, Rand: rand.New(rand.NewPCG(1, 2)), Logger: slog.New(slog.DiscardHandler), OnSync: func(o SyncOutcome) { outcomes = append(outcomes, o) }})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	f.Member(MemberEvent{Kind: EventJoin, Member: Member{Name: "us-1", Region: "us-east", HTTPAddr: "us-1:80"}})
	f.Member(MemberEvent{Kind: EventJoin, Member: Member{Name: "eu-1", Region: "eu-west", HTTPAddr: "eu-1:80", Version: 1}})
	m.Advance(time.Second)
	version := func() uint64 {
		var v uint64
		f.Read(func(c *Core) {
			if r := c.Replica("eu-west"); r != nil {
				v = r.Version()
			}
		})
		return v
	}
	if v := version(); v != 1 || len(tr.fetches) != 1 || tr.fetches[0].Since != 0 {
		t.Fatalf("after the join: replica v%d, fetches %v; want v1 from one full fetch", v, tr.fetches)
	}

	// The region moves on while its gateway is unreachable: the fetch
	// fails, the federator retries and catches up with a delta.
	v3 := put("b")
	v3 = max(v3, put("c"))
	tr.down = true
	f.Member(MemberEvent{Kind: EventUpdate, Member: Member{Name: "eu-1", Region: "eu-west", HTTPAddr: "eu-1:80", Version: v3}})
	m.Advance(100 * time.Millisecond)
	tr.down = false
	m.Advance(5 * time.Second)
	if v := version(); v != v3 {
		t.Fatalf("after the retry: replica v%d, want v%d; fetches %v", v, v3, tr.fetches)
	}
	failed, delta := 0, false
	for _, o := range outcomes {
		if o.Err != nil {
			failed++
		}
		if o.Err == nil && !o.Result.Full && o.Before == 1 && o.After == v3 {
			delta = true
		}
	}
	if failed == 0 || !delta {
		t.Fatalf("outcomes %+v: want a failed fetch and a delta from v1 to v%d", outcomes, v3)
	}
	m.Advance(5 * time.Second)
	snaps, _ := reps.Load(ctx)
	if len(snaps) != 1 || snaps[0].Version != v3 {
		t.Fatalf("persisted %+v, want eu-west at v%d", snaps, v3)
	}
	f.Stop()
	n := len(tr.fetches)
	m.Advance(time.Minute)
	if len(tr.fetches) != n {
		t.Fatalf("fetched after Stop: %v", tr.fetches[n:])
	}
}
