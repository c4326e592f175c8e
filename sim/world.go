package sim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// world is the simulated system: regions with their stores, gateways,
// instances, the network and the membership model, driven by one event
// queue on one goroutine.
type world struct {
	cfg     *config
	opts    Options
	seed    uint64
	now     time.Duration
	end     time.Duration
	q       queue
	events  int64
	ctx     context.Context
	logger  *slog.Logger
	profile gossip.Profile

	net      *network
	memRng   *rand.Rand
	trafRng  *rand.Rand
	stormRng *rand.Rand

	// lossTraces: link-loss samples by exposure (linkloss.go)
	lossTraces map[lossKey]*lossTrace

	regions  []*regionSim
	gateways []*gateway // all, region by region
	gwByName map[string]*gateway
	streams  []*stream

	log   *eventLog
	trc   *tracing
	m     *metricsState
	hooks testHooks

	quietAt    time.Duration // when the last fault ended (heal, restart, recovery)
	healGen    int           // bumped by every heal: a fault's own end after it does nothing
	faultSpans []FaultSpan
	ext        extState      // faults_more.go
	mf         mutfedState   // fault_mutfed.go
	notifyLost []int         // fault_reset.go: notify_lost in force, by gateway index
	detect     time.Duration // the profile's detection bound for the pool (0: not computed yet)

	// instantEvents counts the events at the current simulated instant
	// (the livelock guard, instantGuard).
	instantEvents int64
}

// testHooks let tests inject bug-like behaviour to prove that the
// invariant checkers fire. They are zero in every real run.
type testHooks struct {
	// corruptVersion, when set, is called with each replica version a
	// gateway observes and may return another one.
	corruptVersion func(gw string, regionName string, v uint64) uint64
	// beforeFinalCheck runs just before the final no_lost_ack check, with
	// every running gateway's view of every other region (a test deletes
	// an instance from one to simulate a lost write).
	beforeFinalCheck func(gw, regionName string, cat *region.Catalog)
	// forceUnreachable makes routing see this region as unreachable while
	// membership does not.
	routeView func(gw string, v *routeViewTweak)
	// routerSees, when set, changes the router's copy of each view (the
	// invariants keep judging against the gateway's own view): a router
	// bug, e.g. treating an unreachable region as reachable.
	routerSees func(gw string, v *failover.RegionView)
	// verifyInstances compares every cached instance list with the
	// catalog it follows, and panics on a difference.
	verifyInstances bool
}

// routeViewTweak is what a test hook may change in a route view.
type routeViewTweak struct {
	Region    string
	Reachable *bool
	Stale     *bool
}

// regionSim is one region: its store, its instances and its gateways.
type regionSim struct {
	idx      int
	name     string
	cfg      regionCfg
	mem      Store               // the region's store (region.MemStore unless topology.store says otherwise)
	store    *region.FaultyStore // what the gateways use: mem, checked against the truth (truthStore), with faults
	down     bool
	flaky    bool // store_flaky: every write's reply is lost (truthStore records what it applied)
	slow     time.Duration
	gateways []*gateway
	// replicas persisted by the region's gateways (the local Redis), by
	// remote region.
	persisted map[string]federation.ReplicaSnapshot
	insts     map[region.Key]*instance
	bySvc     [][]*instance // per service index, in registration order
	alive     []int         // per service: instances registered and up
	outage    []int         // per service: index in metrics outages (+1), 0 when none
	acked     map[region.Key]ackRec
	pending   []pendingReg // registrations not yet visible everywhere, by version
	commits   []commitRec  // every change the store committed, by version (the truth replicas are judged by)
	nextID    []int        // per service: next instance number
	rr        int          // round robin over the gateways for lookups
}

type ackRec struct {
	version uint64
	at      time.Duration
}

type pendingReg struct {
	version uint64
	at      time.Duration
}

var errStoreDown = fmt.Errorf("store unavailable (simulated store_down)")

func newWorld(cfg *config, opts Options) (*world, error) {
	w := &world{cfg: cfg, opts: opts, seed: opts.Seed, end: cfg.duration, ctx: context.Background(),
		logger: slog.New(slog.DiscardHandler), profile: cfg.profile, gwByName: map[string]*gateway{}}
	if w.opts.MaxEvents <= 0 {
		w.opts.MaxEvents = 2e9
	}
	if w.opts.TraceSampleRate == 0 {
		w.opts.TraceSampleRate = defaultSample
	}
	w.net = newNetwork(cfg.net, w.rand(streamNet))
	w.memRng = w.rand(streamMember)
	w.trafRng = w.rand(streamTraffic)
	w.stormRng = w.rand(streamStorm)
	w.log = newEventLog(opts.EventLog)
	w.trc = newTracing(opts.Tracer, w.rand(streamTrace), w.opts.TraceSampleRate, cfg.start)
	w.m = newMetricsState(w)

	for i, rc := range cfg.regions {
		mem, err := openStore(cfg.store, rc.name, cfg.changeLog)
		if err != nil {
			w.closeStores()
			return nil, err
		}
		rs := &regionSim{idx: i, name: rc.name, cfg: rc, mem: mem,
			persisted: map[string]federation.ReplicaSnapshot{}, insts: map[region.Key]*instance{},
			bySvc: make([][]*instance, len(cfg.services)), alive: make([]int, len(cfg.services)),
			outage: make([]int, len(cfg.services)), acked: map[region.Key]ackRec{}, nextID: make([]int, len(cfg.services))}
		rs.store = region.NewFaultyStore(&truthStore{Store: mem, w: w, rs: rs})
		w.regions = append(w.regions, rs)
		for n := 1; n <= rc.gateways; n++ {
			g := &gateway{w: w, idx: len(w.gateways), name: fmt.Sprintf("%s-%d", rc.name, n), rs: rs}
			g.addr = fmt.Sprintf("10.%d.0.%d:8700", i, n)
			rs.gateways = append(rs.gateways, g)
			w.gateways = append(w.gateways, g)
			w.gwByName[g.name] = g
		}
	}
	for gi := range w.gateways {
		w.gateways[gi].view = make([]memberView, len(w.gateways))
	}
	// The initial population: registered before t=0, passing.
	for si, sc := range cfg.services {
		for _, r := range sc.regions {
			rs := w.regions[r]
			for range sc.instances {
				in := w.newInstance(rs, si)
				inst := in.record(w, region.StatusPassing)
				ch, err := rs.store.Put(w.ctx, inst, region.Cond{})
				if err != nil {
					w.closeStores()
					return nil, fmt.Errorf("registering the initial population: %w", err)
				}
				w.acknowledge(in, ch, true)
				w.committed(rs, ch, false)
			}
		}
	}
	for si := range cfg.traffic {
		w.streams = append(w.streams, newStream(w, si))
	}
	return w, nil
}

// run processes events until the end of the simulated time.
func (w *world) run() error {
	for _, g := range w.gateways {
		if err := g.start(); err != nil {
			return err
		}
	}
	// The pool formed before t=0: every gateway knows every other one,
	// with its current version tag.
	for _, o := range w.gateways {
		for _, s := range w.gateways {
			if o == s {
				continue
			}
			vw := &o.view[s.idx]
			vw.status, vw.target, vw.version, vw.subjInc = federation.StatusAlive, federation.StatusAlive, s.pubVer, s.inc
			o.fed.Member(federation.MemberEvent{Kind: federation.EventJoin,
				Member: federation.Member{Name: s.name, Region: s.rs.name, HTTPAddr: s.addr, Version: s.pubVer}})
		}
	}
	for _, s := range w.streams {
		s.scheduleNext()
	}
	w.scheduleFaults()
	w.scheduleMinutes()
	for w.q.len() > 0 {
		if w.q.h[0].at > w.end {
			break
		}
		ev := w.q.pop()
		if err := w.instantGuard(ev.at); err != nil {
			return err
		}
		w.now = ev.at
		w.events++
		if w.events > w.opts.MaxEvents {
			return fmt.Errorf("more than %d events by %s: stopping (raise Options.MaxEvents if this is expected)", w.opts.MaxEvents, w.now)
		}
		switch ev.kind {
		case evLookup:
			w.streams[ev.idx].lookup()
		default:
			ev.fn()
		}
	}
	w.now = w.end
	w.finish()
	return w.log.err
}

// scheduleMinutes logs per-minute traffic aggregates and reports progress.
func (w *world) scheduleMinutes() {
	var tick func()
	tick = func() {
		w.m.logMinute()
		if w.opts.Progress != nil {
			w.opts.Progress(w.now, w.end)
		}
		if w.now+time.Minute <= w.end {
			w.after(time.Minute, tick)
		}
	}
	if time.Minute <= w.end {
		w.at(time.Minute, tick)
	}
}

// committed records a change the region's store accepted: ground truth of
// the registry, acknowledgements, and notifications to the region's
// gateways (pub/sub).
func (w *world) committed(rs *regionSim, ch region.Change, notify bool) {
	rs.commits = append(rs.commits, commitRec{version: ch.Version, at: w.now})
	k := region.Key{Service: ch.Service, ID: ch.ID}
	in := rs.insts[k]
	if in != nil {
		w.oracleTruth(rs, in.svc)
	}
	switch ch.Op {
	case region.OpPut:
		w.checkRegistrationKept(rs, in, ch) // fault_mutstore.go
		if in != nil {
			st := ch.Instance.Status
			if st != in.regStatus {
				if st == region.StatusCritical {
					in.regCriticalSince = w.now
				}
				if notify {
					w.log.event(w.now, "status", kv("region", rs.name), kv("instance", k.String()),
						kv("from", string(in.regStatus)), kv("to", string(st)), kvInt("version", int64(ch.Version)))
				}
				in.regStatus = st
			}
		}
	case region.OpDelete:
		if in != nil && in.registered {
			w.unregistered(in)
			w.log.event(w.now, "deregister", kv("region", rs.name), kv("instance", k.String()), kvInt("version", int64(ch.Version)))
		}
		delete(rs.acked, k)
	}
	if notify {
		for _, g := range rs.gateways {
			g.notifyStore()
		}
	}
}

// runningGateways lists the region's running gateways.
func (rs *regionSim) runningGateways() []*gateway {
	var out []*gateway
	for _, g := range rs.gateways {
		if g.running {
			out = append(out, g)
		}
	}
	return out
}

// unregistered records that in's registration is gone from its store.
func (w *world) unregistered(in *instance) {
	w.changeTruth(in, func() {
		in.registered = false
		in.deregAt = w.now
	})
	w.m.deregistered++
}
