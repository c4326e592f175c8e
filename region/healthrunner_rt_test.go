package region

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// fakeProbes answers probes after a delay on the runtime with the status
// the test sets.
type fakeProbes struct {
	r      rt.Runtime
	status Status
	n      int
}

func (p *fakeProbes) Probe(_ context.Context, e Effect, done func(ProbeResult)) {
	p.n++
	st := p.status
	p.r.AfterFunc(20*time.Millisecond, func() { done(ProbeResult{Status: st, Output: "probe " + string(st)}) })
}

// TestHealthRunnerOnManualRuntime drives the production HealthRunner and
// cache follower on a manual runtime: probes run on their interval, a
// failing instance is written critical through the store, and a recovered
// one passing again.
func TestHealthRunnerOnManualRuntime(t *testing.T) {
	ctx := context.Background()
	m := rt.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := NewMemStore(100)
	in := testInstance("web", "a", 80)
	in.Check = &Check{HTTP: "http://10.0.0.5:80/health", Interval: Duration(10 * time.Second)}
	if _, err := store.Put(ctx, in, Cond{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	cache := NewCache(store, CacheOptions{Runtime: m, Logger: log})
	probes := &fakeProbes{r: m, status: StatusCritical}
	var writes []Status
	r := NewHealthRunner(store, cache, HealthRunnerOptions{Runtime: m, Logger: log, Probes: probes,
		OnWrite: func(e Effect, ch Change) { writes = append(writes, ch.Instance.Status) }})
	cache.Start(ctx)
	r.Start(ctx)
	status := func() Status {
		var got Instance
		cache.Read(func(c *Catalog) { got, _ = c.Get(in.Key()) })
		return got.Status
	}
	m.Advance(15 * time.Second)
	if status() != StatusCritical || probes.n == 0 {
		t.Fatalf("after failing probes: %s after %d probes (writes %v), want critical", status(), probes.n, writes)
	}
	probes.status = StatusPassing
	m.Advance(15 * time.Second)
	if status() != StatusPassing {
		t.Fatalf("after passing probes: %s (writes %v), want passing", status(), writes)
	}
	if len(writes) != 2 {
		t.Fatalf("writes %v, want [critical passing]", writes)
	}
	r.Stop()
	cache.Stop()
	n := probes.n
	m.Advance(time.Minute)
	if probes.n != n {
		t.Fatalf("%d probes after Stop", probes.n-n)
	}
}
