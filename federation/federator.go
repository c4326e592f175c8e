package federation

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// ForgetEvent is the Serf user event that makes every gateway drop a
// region's replica (meridian regions forget R). Its payload is the region.
const ForgetEvent = "meridian-forget"

// FederatorConfig wires a Federator.
type FederatorConfig struct {
	Core       CoreConfig
	Membership Membership
	Replicas   ReplicaStore // nil: replicas are not persisted
	Client     *http.Client // for fetches; a default with Core.FetchTimeout when nil
	Logger     *slog.Logger
	Now        func() time.Time // time.Now when nil
	Rand       *rand.Rand

	// Fetch says how fetches reach a gateway (HTTPS and the check that
	// a peer's certificate names the region it serves).
	Fetch FetchOptions
}

// Federator is the production driver of Core: it feeds it Serf events, the
// wall clock and fetch results, fetches catalogs over HTTP, and persists
// replicas. Reads of replicas go through Read, under a read lock that fetch
// results hold only while applying (snapshots are built before).
type Federator struct {
	cfg     FederatorConfig
	mu      sync.RWMutex
	core    *Core
	results chan fetchResult
	kick    chan struct{}

	cbMu      sync.Mutex
	onMembers []func()

	// refused remembers the (region, gateway) pairs whose peer check
	// failed, so each is logged once.
	refusedMu sync.Mutex
	refused   map[string]bool
}

type fetchResult struct {
	eff Effect
	res SyncResult
	err error
}

// NewFederator returns a driver; Run starts it.
func NewFederator(cfg FederatorConfig) (*Federator, error) {
	core, err := NewCore(cfg.Core, cfg.Rand)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Core.FetchTimeout}
	}
	return &Federator{cfg: cfg, core: core, results: make(chan fetchResult, 64), kick: make(chan struct{}, 1)}, nil
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

// OnMembership registers fn to run (on the federator's goroutine) after
// every membership event, e.g. to move health-check ownership.
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

// Run drives the core until ctx ends.
func (f *Federator) Run(ctx context.Context) {
	log := f.cfg.Logger
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
	f.mu.Lock()
	for _, m := range f.cfg.Membership.Members() {
		f.core.Member(f.cfg.Now(), MemberEvent{Kind: EventJoin, Member: m})
	}
	f.mu.Unlock()
	f.membersChanged()

	events := f.cfg.Membership.Events()
	users := f.cfg.Membership.UserEvents()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var fetches sync.WaitGroup
	defer fetches.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind != EventUpdate {
				log.Info("gateway "+ev.Kind.String(), "node", ev.Member.Name, "of", ev.Member.Region, "http", ev.Member.HTTPAddr)
			}
			f.mu.Lock()
			f.core.Member(f.cfg.Now(), ev)
			f.mu.Unlock()
			f.membersChanged()
		case ue := <-users:
			if ue.Name == ForgetEvent {
				f.mu.Lock()
				effs := f.core.Forget(string(ue.Payload))
				f.mu.Unlock()
				log.Warn("region forgotten by an operator", "region", string(ue.Payload))
				f.execute(ctx, effs, &fetches)
			}
		case r := <-f.results:
			now := f.cfg.Now()
			f.mu.Lock()
			var err error
			if r.err != nil {
				f.core.FetchFailed(now, r.eff, r.err)
				err = r.err
			} else {
				had := f.core.Replica(r.eff.Region)
				err = f.core.FetchDone(now, r.eff, r.res)
				f.logRegression(had, f.core.Replica(r.eff.Region), r.eff.Gateway)
			}
			f.mu.Unlock()
			if err != nil {
				log.Debug("sync failed", "region", r.eff.Region, "gateway", r.eff.Gateway, "err", err)
			}
		case <-f.kick:
		case <-timer.C:
		}
		now := f.cfg.Now()
		f.mu.Lock()
		effs := f.core.Tick(now)
		next := f.core.NextDeadline(now)
		f.mu.Unlock()
		f.execute(ctx, effs, &fetches)
		wait := time.Second
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(f.cfg.Now()), time.Millisecond))
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

// logRefused logs, once per region and gateway, a fetch refused because
// the peer may not serve the region (FetchOptions.CheckPeer).
func (f *Federator) logRefused(e Effect, err error) {
	var pe interface{ PeerRefused() bool }
	if !errors.As(err, &pe) || !pe.PeerRefused() {
		return
	}
	key := e.Region + "\x00" + e.Gateway + "\x00" + e.Addr
	f.refusedMu.Lock()
	if f.refused == nil || len(f.refused) >= 4096 {
		f.refused = map[string]bool{}
	}
	seen := f.refused[key]
	f.refused[key] = true
	f.refusedMu.Unlock()
	if !seen {
		f.cfg.Logger.Warn("refusing a gateway's catalog: its certificate does not let it serve the region",
			"region", e.Region, "gateway", e.Gateway, "addr", e.Addr, "err", err)
	}
}

func (f *Federator) membersChanged() {
	f.cbMu.Lock()
	fns := append([]func(){}, f.onMembers...)
	f.cbMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (f *Federator) execute(ctx context.Context, effs []Effect, fetches *sync.WaitGroup) {
	for _, e := range effs {
		switch e.Kind {
		case EffectFetch:
			f.cfg.Logger.Debug("sync", "effect", e.String())
			fetches.Add(1)
			go func() {
				defer fetches.Done()
				fctx, cancel := context.WithTimeout(ctx, f.cfg.Core.FetchTimeout)
				res, err := FetchWith(fctx, f.cfg.Client, f.cfg.Fetch, e.Addr, e.Region, e.Since)
				cancel()
				if err != nil {
					f.logRefused(e, err)
				}
				select {
				case f.results <- fetchResult{eff: e, res: res, err: err}:
				case <-ctx.Done():
				}
			}()
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
// version: the core accepts that only from a region whose gateways all
// advertise the lower version (see Core: a region reset), which a region
// whose store lost data does only when no gateway of it could restore the
// catalog (all restarted too, or --on-store-loss accept).
func (f *Federator) logRegression(had, now *Replica, gateway string) {
	if had == nil || now == nil || now.Version() >= had.Version() {
		return
	}
	f.cfg.Logger.Error("a region's catalog went back; accepted the reset its gateways advertise (its store lost data and was not restored)",
		"region", now.Region, "from_version", had.Version(), "to_version", now.Version(),
		"from_instances", had.Catalog.Len(), "to_instances", now.Catalog.Len(), "gateway", gateway)
}
