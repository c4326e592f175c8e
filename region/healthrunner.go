package region

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/egress"
)

// ErrNotOwner is returned for a heartbeat of an instance whose checks
// another gateway of the region runs.
var ErrNotOwner = errors.New("another gateway of this region runs this instance's checks")

// HealthRunnerOptions configures a HealthRunner.
type HealthRunnerOptions struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand seeds probe jitter; a fixed seed when nil.
	Rand *rand.Rand
	// Client runs HTTP probes; NewEgressProbeClient(Egress) when nil.
	Client *http.Client
	// Egress refuses probe targets (see Prober); nil refuses nothing.
	Egress *egress.Policy
	// MaxProbes bounds concurrent probes. Default 64.
	MaxProbes int
	// WriteTimeout bounds one status write to the store. Default 2s.
	WriteTimeout time.Duration
	// Owns reports whether this gateway runs the checks of an instance
	// (several gateways in a region shard them). nil: every instance.
	// When its answer changes, call Resync.
	Owns func(Key) bool

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

// HealthRunner is the production driver of Health: it feeds it the cache's
// catalog, the wall clock, heartbeats and probe results, runs the probes it
// asks for on real sockets, and writes the statuses and deregistrations it
// decides to the store (compare-and-set on ModifyIndex, so a
// re-registration that raced a health write wins).
type HealthRunner struct {
	store Store
	cache *Cache
	opt   HealthRunnerOptions

	mu    sync.Mutex // guards h
	h     *Health
	dirty chan struct{} // the catalog changed since the last Sync
	kick  chan struct{}
	sem   chan struct{}
	tel   *probeTelemetry

	loggedDown atomic.Bool // a write failure was logged; cleared on the next success

	// What changed since the last Sync: the keys, or everything (full:
	// the first Sync, a reload, Resync, or more keys than maxPendingKeys).
	pendMu   sync.Mutex
	pendKeys map[Key]struct{}
	pendFull bool
}

// maxPendingKeys bounds the changed keys the runner remembers between two
// Syncs; past it the next Sync reads the whole catalog.
const maxPendingKeys = 4096

// NewHealthRunner returns a runner over store and cache. Run starts it.
func NewHealthRunner(store Store, cache *Cache, opt HealthRunnerOptions) *HealthRunner {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Client == nil {
		opt.Client = NewEgressProbeClient(opt.Egress)
	}
	if opt.MaxProbes <= 0 {
		opt.MaxProbes = 64
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 2 * time.Second
	}
	r := &HealthRunner{store: store, cache: cache, opt: opt, h: NewHealth(opt.Rand),
		dirty: make(chan struct{}, 1), kick: make(chan struct{}, 1), sem: make(chan struct{}, opt.MaxProbes),
		tel: newProbeTelemetry(opt), pendFull: true}
	cache.OnChange(func(chs []Change, reload bool) {
		r.pending(chs, reload)
		select {
		case r.dirty <- struct{}{}:
		default:
		}
		r.Kick()
	})
	return r
}

// Kick wakes Run to tick now.
func (r *HealthRunner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// syncLocked feeds the machine the catalog if it changed. A burst of
// changes costs one Sync.
func (r *HealthRunner) syncLocked(now time.Time) {
	select {
	case <-r.dirty:
	default:
		return
	}
	r.pendMu.Lock()
	full, keys := r.pendFull, r.pendKeys
	r.pendFull, r.pendKeys = false, nil
	r.pendMu.Unlock()
	if !full {
		// Only what changed: O(changes), not O(catalog), per burst.
		list := make([]Key, 0, len(keys))
		cur := make(map[Key]Instance, len(keys))
		r.cache.Read(func(c *Catalog) {
			for k := range keys {
				list = append(list, k)
				if in, ok := c.Get(k); ok && r.Owns(k) {
					cur[k] = in
				}
			}
		})
		r.h.SyncKeys(now, list, cur)
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
	r.pending(nil, true)
	select {
	case r.dirty <- struct{}{}:
	default:
	}
	r.Kick()
}

// pending records what changed for the next Sync.
func (r *HealthRunner) pending(chs []Change, full bool) {
	r.pendMu.Lock()
	defer r.pendMu.Unlock()
	if full || r.pendFull || len(r.pendKeys)+len(chs) > maxPendingKeys {
		r.pendFull, r.pendKeys = true, nil
		return
	}
	if r.pendKeys == nil {
		r.pendKeys = make(map[Key]struct{}, len(chs))
	}
	for _, ch := range chs {
		r.pendKeys[Key{Service: ch.Service, ID: ch.ID}] = struct{}{}
	}
}

// Owns reports whether this runner checks the instance.
func (r *HealthRunner) Owns(k Key) bool { return r.opt.Owns == nil || r.opt.Owns(k) }

// Run ticks the machine at its deadlines until ctx ends.
func (r *HealthRunner) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var probes sync.WaitGroup
	defer probes.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
		}
		now := r.opt.Now()
		r.mu.Lock()
		r.syncLocked(now)
		effs := r.h.Tick(now)
		next := r.h.NextDeadline()
		r.mu.Unlock()
		r.execute(ctx, effs, &probes)

		wait := time.Second // wake at least once a second to pick up changes
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(r.opt.Now()), time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// execute carries out effects: probes in the background (bounded), store
// writes in order. It returns the error of the write of each key that
// failed, so a heartbeat can report it.
func (r *HealthRunner) execute(ctx context.Context, effs []Effect, probes *sync.WaitGroup) map[Key]error {
	var failed map[Key]error
	storeDown := false
	for _, e := range effs {
		switch e.Kind {
		case EffectProbe:
			probes.Add(1)
			go func() {
				defer probes.Done()
				select {
				case r.sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				start := r.opt.Now()
				res := Prober{Client: r.opt.Client, Egress: r.opt.Egress}.Probe(ctx, e.CheckKind, e.Target, e.Timeout)
				<-r.sem
				if ctx.Err() != nil {
					return
				}
				r.tel.observe(ctx, e, res, start, r.opt.Now())
				r.mu.Lock()
				r.h.Result(r.opt.Now(), e.Key, res)
				r.mu.Unlock()
				r.Kick()
			}()
		case EffectSetStatus, EffectDeregister:
			if storeDown {
				continue // retried when the machine re-emits it
			}
			if err := r.write(ctx, e); err != nil {
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

// write carries out one SetStatus or Deregister.
func (r *HealthRunner) write(ctx context.Context, e Effect) error {
	ctx, cancel := context.WithTimeout(ctx, r.opt.WriteTimeout)
	defer cancel()
	var ch Change
	var err error
	if e.Kind == EffectDeregister {
		ch, err = r.store.Delete(ctx, e.Key, Cond{IfIndex: e.IfIndex})
	} else {
		var in Instance
		var ok bool
		r.cache.Read(func(c *Catalog) { in, ok = c.Get(e.Key) })
		if !ok || in.ModifyIndex != e.IfIndex {
			r.cache.Kick() // the machine is behind the cache or the cache behind the store
			return ErrConflict
		}
		prev := in.Status
		in.Status, in.Output, in.UpdatedAt = e.Status, e.Output, r.opt.Now()
		ch, err = r.store.Put(ctx, in, Cond{IfIndex: e.IfIndex})
		if err == nil && prev != e.Status {
			r.opt.Logger.Info("health status changed", "instance", e.Key.String(), "from", prev, "to", e.Status, "output", e.Output)
		}
	}
	switch {
	case err == nil:
		if r.loggedDown.CompareAndSwap(true, false) {
			r.opt.Logger.Info("health writes reach the store again")
		}
		if e.Kind == EffectDeregister {
			r.opt.Logger.Info("deregistered critical instance", "instance", e.Key.String(), "reason", e.Reason)
		}
		if !r.cache.Apply(ch) {
			// Another gateway wrote in between: catch up now, so the
			// write is visible to whoever asked for it.
			r.cache.Sync(ctx)
		}
		return nil
	case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
		r.cache.Kick()
		return err
	default:
		if r.loggedDown.CompareAndSwap(false, true) {
			r.opt.Logger.Warn("health write failed; will retry", "effect", e.String(), "err", err)
		}
		return err
	}
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
		var probes sync.WaitGroup
		failed := r.execute(context.WithoutCancel(ctx), effs, &probes)
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
