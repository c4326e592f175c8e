package region

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/rt"
)

// ErrNotOwner is returned for a heartbeat of an instance whose checks
// another gateway of the region runs.
var ErrNotOwner = errors.New("another gateway of this region runs this instance's checks")

// HealthRunnerOptions configures a HealthRunner.
type HealthRunnerOptions struct {
	Logger *slog.Logger
	// Now is the clock; Runtime.Now when nil.
	Now func() time.Time
	// Rand seeds probe jitter; a fixed seed when nil.
	Rand *rand.Rand
	// Runtime runs the driver's steps and timers; rt.Real() when nil.
	Runtime rt.Runtime
	// Probes runs the probes: probe.NewTransport in production (real
	// sockets under the egress policy), the simulator's simulated
	// instances. nil fails every probe.
	Probes ProbeTransport
	// WriteTimeout bounds one status write to the store. Default 2s.
	WriteTimeout time.Duration
	// TickEvery is the runner's timer granularity: it wakes for the
	// machine's deadlines on a grid of this step (a deadline between two
	// grid points waits for the next one), so that the probes and expiries
	// of many checks due close together cost one step, not one each.
	// Default DefaultHealthTickEvery.
	TickEvery time.Duration
	// Owns reports whether this gateway runs the checks of an instance
	// (several gateways in a region shard them). nil: every instance.
	// When its answer changes, call Resync.
	Owns func(Key) bool
	// OnWrite, when set, sees every status write and deregistration the
	// store took.
	OnWrite func(Effect, Change)

	// TracerProvider receives a "health.check" span for every probe that
	// did not pass and for one passing probe in TracePassingEvery (default
	// DefaultTracePassingEvery, i.e. 1%); see probeTelemetry. nil: no spans.
	TracerProvider    trace.TracerProvider
	TracePassingEvery int
	// MeterProvider receives meridian.health.checks and
	// meridian.health.check.duration. nil: no metrics.
	MeterProvider metric.MeterProvider
	// Region is the "region" attribute of the spans and metrics.
	Region string
}

// DefaultHealthTickEvery is HealthRunnerOptions.TickEvery's default: a
// probe or expiry is handled at most this late, small against check
// intervals (seconds) and probe timeouts.
const DefaultHealthTickEvery = 50 * time.Millisecond

// ProbeTransport runs the probes a health machine asks for: the health
// runner's one I/O seam. Production probes real sockets (RealProbes), the
// simulator its simulated instances.
type ProbeTransport interface {
	// Probe starts the probe of e (an EffectProbe) and returns at once;
	// done is called exactly once with the result, from any goroutine or
	// as a task of the runtime. A canceled ctx may drop the result.
	Probe(ctx context.Context, e Effect, done func(ProbeResult))
}

// noProbes fails every probe: a runner built without a ProbeTransport.
type noProbes struct{}

func (noProbes) Probe(_ context.Context, e Effect, done func(ProbeResult)) {
	done(ProbeResult{Status: StatusCritical, Output: "no prober configured"})
}

// HealthRunner is the driver of Health, written once against the rt seam:
// it feeds the machine the cache's catalog, the runtime's clock,
// heartbeats and probe results, runs the probes it asks for through its
// ProbeTransport, and writes the statuses and deregistrations it decides
// to the store (compare-and-set on ModifyIndex, so a re-registration that
// raced a health write wins).
type HealthRunner struct {
	store Store
	cache *Cache
	opt   HealthRunnerOptions
	rt    rt.Runtime
	loop  *rt.Loop
	w     *StatusWriter

	mu      sync.Mutex // guards h
	h       *Health
	dirty   atomic.Bool // the whole catalog must be read again (Sync)
	pendMu  sync.Mutex
	pending []Change // changes since the last Sync or Update, unless dirty
	started atomic.Bool
	ctx     context.Context
	probes  sync.WaitGroup
	probeMu sync.Mutex // guards closing and probes.Add
	closing bool       // Run is waiting for the probes: start no more
	tel     *probeTelemetry
}

// NewHealthRunner returns a runner over store and cache. Run (or Start)
// starts it.
func NewHealthRunner(store Store, cache *Cache, opt HealthRunnerOptions) *HealthRunner {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	r0 := rt.Or(opt.Runtime)
	if opt.Now == nil {
		opt.Now = r0.Now
	}
	if opt.Probes == nil {
		opt.Probes = noProbes{}
	}
	if opt.TickEvery <= 0 {
		opt.TickEvery = DefaultHealthTickEvery
	}
	r := &HealthRunner{store: store, cache: cache, opt: opt, rt: r0, h: NewHealth(opt.Rand),
		tel: newProbeTelemetry(opt), ctx: context.Background(),
		w: &StatusWriter{Store: store, Cache: cache, Now: opt.Now, Logger: opt.Logger, Timeout: opt.WriteTimeout, OnWrite: opt.OnWrite}}
	r.loop = rt.NewLoop(r0, "health", r.step)
	cache.OnChange(r.onChange)
	return r
}

// Kick makes the runner tick now (after Start).
func (r *HealthRunner) Kick() {
	if r.started.Load() {
		r.loop.Kick()
	}
}

// maxPendingChanges is how many catalog changes the runner feeds the
// machine one by one (Health.Update); beyond it, a Sync of the whole
// catalog is cheaper.
const maxPendingChanges = 4096

// onChange is the cache's OnChange: remember the changes for the next
// step (a reload: read everything).
func (r *HealthRunner) onChange(chs []Change, reload bool) {
	r.pendMu.Lock()
	if reload || len(r.pending)+len(chs) > maxPendingChanges {
		r.dirty.Store(true)
		r.pending = nil
	} else if !r.dirty.Load() {
		r.pending = append(r.pending, chs...)
	}
	r.pendMu.Unlock()
	r.Kick()
}

// syncLocked feeds the machine what changed in the catalog: the changes
// one by one (Update), or the whole catalog (Sync) after a reload, a
// burst or an ownership move. A burst of changes costs one call.
func (r *HealthRunner) syncLocked(now time.Time) {
	r.pendMu.Lock()
	full := r.dirty.Swap(false)
	pending := r.pending
	r.pending = nil
	r.pendMu.Unlock()
	if !full {
		if len(pending) > 0 {
			ups := make([]HealthUpdate, len(pending))
			for i, ch := range pending {
				k := Key{Service: ch.Service, ID: ch.ID}
				ups[i].Key = k
				if ch.Op != OpDelete && ch.Instance != nil && r.Owns(k) {
					in := *ch.Instance
					ups[i].Instance = &in
				}
			}
			r.h.Update(now, ups)
		}
		return
	}
	var all []Instance
	r.cache.Read(func(c *Catalog) { all = c.All() })
	if r.opt.Owns != nil {
		mine := all[:0]
		for _, in := range all {
			if r.opt.Owns(in.Key()) {
				mine = append(mine, in)
			}
		}
		all = mine
	}
	r.h.Sync(now, all)
}

// Resync makes the runner re-read the catalog, e.g. after check ownership
// moved between gateways.
func (r *HealthRunner) Resync() {
	r.pendMu.Lock()
	r.dirty.Store(true)
	r.pending = nil
	r.pendMu.Unlock()
	r.Kick()
}

// Owns reports whether this runner checks the instance.
func (r *HealthRunner) Owns(k Key) bool { return r.opt.Owns == nil || r.opt.Owns(k) }

// Run starts the runner and stops it when ctx ends, after the probes in
// flight.
func (r *HealthRunner) Run(ctx context.Context) {
	r.Start(ctx)
	<-ctx.Done()
	r.loop.Stop()
	r.loop.Wait()
	r.probeMu.Lock()
	r.closing = true
	r.probeMu.Unlock()
	r.probes.Wait()
}

// Start starts ticking the machine at its deadlines (at least once a
// second, to pick up changes) on the runtime; ctx bounds probes and
// writes.
func (r *HealthRunner) Start(ctx context.Context) {
	r.ctx = ctx
	r.dirty.Store(true)
	r.started.Store(true)
	r.loop.Kick()
}

// Stop stops ticking; probes in flight are dropped.
func (r *HealthRunner) Stop() { r.loop.Stop() }

func (r *HealthRunner) step() {
	ctx := r.ctx
	if ctx.Err() != nil {
		return
	}
	now := r.opt.Now()
	r.mu.Lock()
	r.syncLocked(now)
	effs := r.h.Tick(now)
	next := r.h.NextDeadline()
	r.mu.Unlock()
	r.execute(ctx, effs)

	wait := time.Second // wake at least once a second to pick up changes
	if !next.IsZero() {
		wait = min(wait, max(r.untilTick(next), time.Millisecond))
	}
	r.loop.After(wait)
}

// untilTick returns how long from now until the first point of the
// TickEvery grid at or after t.
func (r *HealthRunner) untilTick(t time.Time) time.Duration {
	at := t.Truncate(r.opt.TickEvery)
	if at.Before(t) {
		at = at.Add(r.opt.TickEvery)
	}
	return at.Sub(r.opt.Now())
}

// execute carries out effects: probes through the transport, store writes
// in order. It returns the error of the write of each key that failed, so
// a heartbeat can report it.
func (r *HealthRunner) execute(ctx context.Context, effs []Effect) map[Key]error {
	var failed map[Key]error
	storeDown := false
	for _, e := range effs {
		switch e.Kind {
		case EffectProbe:
			r.probeMu.Lock()
			if r.closing {
				r.probeMu.Unlock()
				continue
			}
			r.probes.Add(1)
			r.probeMu.Unlock()
			start := r.opt.Now()
			r.opt.Probes.Probe(ctx, e, func(res ProbeResult) {
				defer r.probes.Done()
				if ctx.Err() != nil {
					return
				}
				end := r.opt.Now()
				r.tel.observe(ctx, e, res, start, end)
				r.mu.Lock()
				r.h.Result(end, e.Key, res)
				next := r.h.NextDeadline()
				r.mu.Unlock()
				r.wake(next)
			})
		case EffectSetStatus, EffectDeregister:
			if storeDown {
				continue // retried when the machine re-emits it
			}
			if err := r.w.Write(ctx, e); err != nil {
				if failed == nil {
					failed = map[Key]error{}
				}
				failed[e.Key] = err
				if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
					storeDown = true
				}
			}
		}
	}
	return failed
}

// wake makes the loop step by next: at once when it is due, else by a
// timer (a result that only moves the next probe on costs no step).
func (r *HealthRunner) wake(next time.Time) {
	if next.IsZero() || !r.started.Load() {
		return
	}
	if !next.After(r.opt.Now()) {
		r.Kick()
		return
	}
	r.loop.After(r.untilTick(next))
}

// Heartbeat renews an instance's TTL check and writes the status it carries
// when that changes the stored status. It returns the instance as stored
// afterwards: ErrNotFound for an unknown instance, a *FieldError when the
// instance has no TTL check, and the store's error when the new status could
// not be written (the heartbeat is recorded; the write is retried).
func (r *HealthRunner) Heartbeat(ctx context.Context, k Key, hb Heartbeat) (Instance, error) {
	if !r.Owns(k) {
		return Instance{}, ErrNotOwner
	}
	for attempt := 0; ; attempt++ {
		now := r.opt.Now()
		r.mu.Lock()
		r.syncLocked(now)
		err := r.h.Heartbeat(now, k, hb.Status, hb.Output)
		var effs []Effect
		if err == nil {
			effs = r.h.Tick(now)
		}
		r.mu.Unlock()
		if errors.Is(err, ErrNotFound) && attempt == 0 {
			// Registered through another gateway a moment ago? Catch up once.
			if serr := r.cache.Sync(ctx); serr == nil {
				continue
			}
		}
		if err != nil {
			return Instance{}, err
		}
		failed := r.execute(context.WithoutCancel(ctx), effs)
		if werr := failed[k]; werr != nil {
			if errors.Is(werr, ErrConflict) && attempt == 0 {
				// The machine or the cache was behind the store: catch up,
				// let the machine see the current instance, write again.
				if serr := r.cache.Sync(ctx); serr == nil {
					r.Resync()
					continue
				}
			}
			if !errors.Is(werr, ErrConflict) {
				return Instance{}, werr
			}
		}
		r.Kick()
		var in Instance
		var ok bool
		r.cache.Read(func(c *Catalog) { in, ok = c.Get(k) })
		if !ok {
			return Instance{}, ErrNotFound
		}
		return in, nil
	}
}
