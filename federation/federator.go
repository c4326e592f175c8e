package federation

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// ForgetEvent is the Serf user event that makes every gateway drop a
// region's replica (meridian regions forget R). Its payload is the region.
const ForgetEvent = "meridian-forget"

// FederatorConfig wires a Federator.
type FederatorConfig struct {
	Core       CoreConfig
	Membership Membership   // Run reads its events; nil: the caller feeds Member and User
	Replicas   ReplicaStore // nil: replicas are not persisted
	Logger     *slog.Logger
	Now        func() time.Time // Runtime.Now when nil
	Rand       *rand.Rand

	// Runtime runs the driver's steps and timers; rt.Real() when nil.
	Runtime rt.Runtime
	// Transport carries fetches: httpsync.Transport in production, the
	// simulated network in the simulator. nil fails every fetch.
	Transport SyncTransport
	// OnSync, when set, sees every fetch outcome after the core took it
	// (on the driver's task): the replica's version before and after.
	OnSync func(SyncOutcome)
	// OnStep, when set, runs after every tick of the core.
	OnStep func()
}

// SyncOutcome is one fetch as the core took it.
type SyncOutcome struct {
	Effect        Effect
	Result        SyncResult
	Err           error // the fetch's error, or the core's refusal of its result
	Before, After uint64
}

// Federator is the driver of Core, written once against the rt seam: it
// feeds the core membership events, the runtime's clock and fetch results,
// fetches catalogs through its SyncTransport, and persists replicas.
// Production runs it on rt.Real() with HTTP fetches; the simulator on its
// event queue with simulated ones. Reads of replicas go through Read,
// under a read lock that fetch results hold only while applying
// (snapshots are built before).
type Federator struct {
	cfg  FederatorConfig
	rt   rt.Runtime
	tr   SyncTransport
	mu   sync.RWMutex
	core *Core
	loop *rt.Loop

	ctx     context.Context
	stopped bool // under mu
	fetches sync.WaitGroup

	cbMu      sync.Mutex
	onMembers []func()
}

// NewFederator returns a driver; Run (or Start) starts it.
func NewFederator(cfg FederatorConfig) (*Federator, error) {
	core, err := NewCore(cfg.Core, cfg.Rand)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := rt.Or(cfg.Runtime)
	if cfg.Now == nil {
		cfg.Now = r.Now
	}
	f := &Federator{cfg: cfg, rt: r, core: core, ctx: context.Background()}
	f.tr = cfg.Transport
	if f.tr == nil {
		f.tr = noTransport{}
	}
	f.loop = rt.NewLoop(r, "federator", f.step)
	return f, nil
}

// Read calls fn with the core under the read lock; fn must not keep
// references past its return or modify anything.
func (f *Federator) Read(fn func(*Core)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.core)
}

// Membership returns the pool.
func (f *Federator) Membership() Membership { return f.cfg.Membership }

// OnMembership registers fn to run after every membership event, e.g. to
// move health-check ownership. Calls are never concurrent.
func (f *Federator) OnMembership(fn func()) {
	f.cbMu.Lock()
	f.onMembers = append(f.onMembers, fn)
	f.cbMu.Unlock()
}

// Forget asks every gateway to drop a region's replica.
func (f *Federator) Forget(regionName string) error {
	return f.cfg.Membership.UserEvent(ForgetEvent, []byte(regionName))
}

// LocalGateways returns the alive gateways of this region (for sharding).
func (f *Federator) LocalGateways() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.core.AliveGateways(f.cfg.Core.Region)
}

// Run starts the driver, feeds it the membership's events until ctx ends,
// then stops it and waits for the fetches in flight.
func (f *Federator) Run(ctx context.Context) {
	f.Start(ctx)
	defer func() {
		f.Stop()
		f.loop.Wait()
		f.fetches.Wait()
	}()
	events := f.cfg.Membership.Events()
	users := f.cfg.Membership.UserEvents()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			f.Member(ev)
		case ue := <-users:
			f.User(ue)
		}
	}
}

// Start restores the persisted replicas, takes the membership's current
// members (when there is a Membership) and starts ticking. ctx bounds
// fetches and store calls. The caller then feeds Member and User.
func (f *Federator) Start(ctx context.Context) {
	log := f.cfg.Logger
	f.ctx = ctx
	if f.cfg.Replicas != nil {
		snaps, err := f.cfg.Replicas.Load(ctx)
		if err != nil {
			log.Warn("could not load persisted replicas", "err", err)
		}
		f.mu.Lock()
		for _, s := range snaps {
			f.core.Restore(f.cfg.Now(), s)
			log.Info("restored replica from the local store", "of", s.Region, "version", s.Version, "instances", len(s.Instances), "synced", s.LastSync)
		}
		f.mu.Unlock()
	}
	if f.cfg.Membership != nil {
		f.mu.Lock()
		for _, m := range f.cfg.Membership.Members() {
			f.core.Member(f.cfg.Now(), MemberEvent{Kind: EventJoin, Member: m})
		}
		f.mu.Unlock()
		f.membersChanged()
	}
	f.loop.Kick()
}

// Stop stops ticking; outcomes of fetches in flight are dropped (Run
// waits for them).
func (f *Federator) Stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.loop.Stop()
}

// Member feeds the core a membership event and ticks it.
func (f *Federator) Member(ev MemberEvent) {
	if ev.Kind != EventUpdate {
		f.cfg.Logger.Info("gateway "+ev.Kind.String(), "node", ev.Member.Name, "of", ev.Member.Region, "http", ev.Member.HTTPAddr)
	}
	f.mu.Lock()
	f.core.Member(f.cfg.Now(), ev)
	f.mu.Unlock()
	f.membersChanged()
	f.loop.Kick()
}

// User handles a user event (ForgetEvent; others are ignored).
func (f *Federator) User(ue UserEvent) {
	if ue.Name != ForgetEvent {
		return
	}
	f.mu.Lock()
	effs := f.core.Forget(string(ue.Payload))
	f.mu.Unlock()
	f.cfg.Logger.Warn("region forgotten by an operator", "region", string(ue.Payload))
	f.execute(effs)
	f.loop.Kick()
}

// Kick makes the driver tick now.
func (f *Federator) Kick() { f.loop.Kick() }

// step ticks the core, carries out its effects and arms the next tick:
// at the core's deadline, at least once a second.
func (f *Federator) step() {
	now := f.cfg.Now()
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	effs := f.core.Tick(now)
	next := f.core.NextDeadline(now)
	f.mu.Unlock()
	f.execute(effs)
	wait := time.Second
	if !next.IsZero() {
		wait = min(wait, max(next.Sub(f.cfg.Now()), time.Millisecond))
	}
	f.loop.After(wait)
	if f.cfg.OnStep != nil {
		f.cfg.OnStep()
	}
}

// fetched hands a fetch's outcome to the core.
func (f *Federator) fetched(e Effect, res SyncResult, err error) {
	now := f.cfg.Now()
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	var before, after uint64
	had := f.core.Replica(e.Region)
	if had != nil {
		before = had.Version()
	}
	if err != nil {
		f.core.FetchFailed(now, e, err)
	} else {
		err = f.core.FetchDone(now, e, res)
		f.logRegression(had, f.core.Replica(e.Region), e.Gateway)
	}
	if rep := f.core.Replica(e.Region); rep != nil {
		after = rep.Version()
	}
	f.mu.Unlock()
	if err != nil {
		f.cfg.Logger.Debug("sync failed", "region", e.Region, "gateway", e.Gateway, "err", err)
	}
	if f.cfg.OnSync != nil {
		f.cfg.OnSync(SyncOutcome{Effect: e, Result: res, Err: err, Before: before, After: after})
	}
	f.loop.Kick()
}

func (f *Federator) membersChanged() {
	f.cbMu.Lock()
	fns := append([]func(){}, f.onMembers...)
	f.cbMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (f *Federator) execute(effs []Effect) {
	ctx := f.ctx
	for _, e := range effs {
		switch e.Kind {
		case EffectFetch:
			f.cfg.Logger.Debug("sync", "effect", e.String())
			f.fetches.Add(1)
			fctx, cancel := context.WithTimeout(ctx, f.cfg.Core.FetchTimeout)
			f.tr.Fetch(fctx, e, func(res SyncResult, err error) {
				cancel()
				defer f.fetches.Done()
				f.fetched(e, res, err)
			})
		case EffectPersist:
			if f.cfg.Replicas == nil {
				continue
			}
			var snap ReplicaSnapshot
			ok := false
			f.Read(func(c *Core) {
				if r := c.Replica(e.Region); r != nil {
					snap, ok = r.Snapshot(), true
				}
			})
			if ok {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := f.cfg.Replicas.Save(pctx, snap); err != nil {
					f.cfg.Logger.Warn("could not persist replica", "region", e.Region, "err", err)
				}
				cancel()
			}
		case EffectDrop:
			f.cfg.Logger.Warn("dropping replica", "region", e.Region, "reason", e.Reason)
			if f.cfg.Replicas != nil {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := f.cfg.Replicas.Delete(dctx, e.Region); err != nil {
					f.cfg.Logger.Warn("could not delete persisted replica", "region", e.Region, "err", err)
				}
				cancel()
			}
		}
	}
}

// logRegression says at ERROR when a replica was replaced by a lower
// version: the core accepts that only from a region whose store is in a new
// epoch and whose gateways all advertise the lower version (see Core: a
// region reset), which a region
// whose store lost data does only when no gateway of it could restore the
// catalog (all restarted too, or --on-store-loss accept).
func (f *Federator) logRegression(had, now *Replica, gateway string) {
	if had == nil || now == nil || now.Version() >= had.Version() {
		return
	}
	f.cfg.Logger.Error("a region's catalog went back; accepted the reset its gateways advertise (its store lost data and was not restored)",
		"region", now.Region, "from_version", had.Version(), "to_version", now.Version(),
		"from_instances", had.Catalog.Len(), "to_instances", now.Catalog.Len(), "gateway", gateway,
		"from_epoch", had.Epoch, "to_epoch", now.Epoch)
}

// noTransport fails every fetch: a federator built without a transport.
type noTransport struct{}

func (noTransport) Fetch(_ context.Context, e Effect, done func(SyncResult, error)) {
	done(SyncResult{}, errors.New("no sync transport configured"))
}
