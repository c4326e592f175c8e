package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// gateway is one simulated gateway process. It runs the production
// drivers on the simulator's runtime (gwRuntime): the region.Cache
// follower over its region's store, the federation.Federator (fetching
// through the simulated network, see transport.go), the
// federation.Publisher of its version tag, federation.Shards for check
// ownership, region.Registrar for registrations and region.HealthRunner
// for health checks, TTL heartbeats and health writes (through the
// simulated probe transport, health.go). What stays here is simulated: its
// membership views and routing memoization.
type gateway struct {
	w    *world
	idx  int
	name string
	addr string
	rs   *regionSim

	running bool
	left    bool // left gracefully (rolling restart)
	inc     int  // incarnation: bumped by every crash and restart

	rt        gwRuntime
	cache     *region.Cache
	fed       *federation.Federator
	watcher   *federation.Watcher // the push path (watch.go)
	held      []*simWatch         // watches of other gateways this one holds
	core      *federation.Core    // fed's core; read directly (one goroutine)
	pub       *federation.Publisher
	shards    *federation.Shards
	registrar *region.Registrar
	health    *region.HealthRunner
	view      []memberView

	cachePending bool
	storeErr     bool
	fetches      map[uint64]fetchRec // answered fetches, by Effect.Seq, until the federator took them

	pubVer uint64 // the version in this gateway's tags

	epoch    uint64   // bumped whenever a routing input of every service may have changed
	svcEpoch []uint64 // per service: bumped when its instances changed in a catalog the gateway holds
	// dataEpoch is bumped when a whole catalog was replaced (a reload or a
	// snapshot sync): every cached instance list is read again.
	dataEpoch uint64
	insts     map[instsKey]instsEntry // a service's instances per region, as routing last read them
	memo      []*routeMemo
	pickers   []failover.Picker
	sig       []regionSig
	lastVer   map[string]uint64        // highest version seen per region (this incarnation)
	lastAt    map[string]time.Duration // when lastVer was seen
}

func (w *world) coreConfig(g *gateway) federation.CoreConfig {
	c := federation.DefaultCoreConfig(g.rs.name, g.name)
	if w.cfg.profile.Name == "local" {
		c = federation.LocalCoreConfig(g.rs.name, g.name)
	}
	if w.cfg.antiEntropy > 0 {
		c.AntiEntropy = w.cfg.antiEntropy
	}
	return c
}

// start boots the gateway process: an empty cache loaded from the store,
// a fresh federator with the replicas persisted in the region's store
// restored, and no knowledge of the pool until membership delivers it.
func (g *gateway) start() error {
	w := g.w
	g.running, g.left = true, false
	g.inc++
	g.rt = gwRuntime{g: g, inc: g.inc}
	g.fetches = map[uint64]fetchRec{}
	g.lastVer, g.lastAt = map[string]uint64{}, map[string]time.Duration{}
	g.sig = nil
	g.dataEpoch++
	g.insts = map[instsKey]instsEntry{}
	if g.svcEpoch == nil {
		g.svcEpoch = make([]uint64, len(w.cfg.services))
	}
	g.view = make([]memberView, len(w.gateways))
	g.memo = make([]*routeMemo, len(w.streams))
	g.pickers = make([]failover.Picker, len(w.streams))
	g.pubVer = 0
	g.cachePending, g.storeErr = false, false
	g.epoch++
	restores := 0
	g.cache = region.NewCache(restoreWatch{g.rs.store, g}, region.CacheOptions{CatchUp: time.Second, Logger: w.logger, Runtime: g.rt,
		NewEpoch: func() string { restores++; return fmt.Sprintf("%s-restore-%d", g.name, restores) },
		OnSynced: g.cacheSynced})
	g.cache.OnChange(g.onCacheChange)
	g.registrar = &region.Registrar{Store: g.rs.store, Cache: g.cache, Logger: w.logger, Runtime: g.rt,
		Sleep: func(context.Context, time.Duration) error { return errNoRetry }}
	g.health = region.NewHealthRunner(g.rs.store, g.cache, region.HealthRunnerOptions{Logger: w.logger,
		Rand: w.rand(streamHealth + uint64(g.idx) + uint64(g.inc)<<10), Runtime: g.rt, Probes: g, Owns: g.owns,
		Region: g.rs.name,
		OnWrite: func(_ region.Effect, ch region.Change) {
			w.m.statusWrites++
			w.m.statusWritesBy[g.rs.idx]++
			w.committed(g.rs, ch, true)
		}})
	g.shards = federation.NewShards(g.name)
	fed, err := federation.NewFederator(federation.FederatorConfig{
		Core: w.coreConfig(g), Rand: w.rand(streamCore + uint64(g.idx) + uint64(g.inc)<<10),
		Runtime: g.rt, Transport: g, Replicas: simReplicas{g}, Logger: w.logger,
		OnSync: g.onSync, OnStep: g.routingInputs,
	})
	if err != nil {
		return err
	}
	g.fed = fed
	fed.Read(func(c *federation.Core) { g.core = c })
	fed.OnMembership(g.peersChanged)
	g.held = nil
	if g.core.Config().WatchWait > 0 {
		g.watcher, err = federation.NewWatcher(federation.WatcherConfig{Runtime: g.rt, Core: fed,
			Transport: watchTransport{g}, Logger: w.logger})
		if err != nil {
			return err
		}
		fed.OnMembership(g.watcher.Kick)
	}
	interval := time.Second
	if w.cfg.profile.Name == "local" {
		interval = 200 * time.Millisecond
	}
	g.pub = federation.NewPublisher(g.rt, interval, g.publish)
	fed.Start(w.ctx)
	fed.Member(federation.MemberEvent{Kind: federation.EventJoin,
		Member: federation.Member{Name: g.name, Region: g.rs.name, HTTPAddr: g.addr}})
	g.cache.Start(w.ctx)
	g.health.Start(w.ctx)
	if g.watcher != nil {
		g.watcher.Start()
	}
	return nil
}

// errNoRetry: the simulator cannot block a registration for a retry; its
// stores answer every write (they fail outright while down).
var errNoRetry = errors.New("no retries in the simulator")

// crash stops the process; graceful is a leave (rolling restart).
func (g *gateway) crash(graceful bool) {
	if !g.running {
		return
	}
	g.dropWatches(graceful)
	g.running, g.left = false, graceful
	g.inc++ // the drivers' pending tasks and timers on gwRuntime end here
	g.fed.Stop()
	if g.watcher != nil {
		g.watcher.Stop()
		g.watcher = nil
	}
	g.pub.Stop()
	g.health.Stop()
	g.cache.Stop()
	g.fetches = map[uint64]fetchRec{}
	g.memo = nil
}

func keyCmp(a, b region.Key) int {
	if a.Service != b.Service {
		if a.Service < b.Service {
			return -1
		}
		return 1
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// notifyStore is the store's pub/sub notification of a new version: the
// cache follower is kicked after the intra-region latency (and the store's
// slowness). Notifications coalesce.
func (g *gateway) notifyStore() {
	w := g.w
	if !g.running || g.cachePending || w.lostNotify(g) {
		return
	}
	g.cachePending = true
	inc := g.inc
	w.after(w.cfg.net.intra+g.rs.slow, func() {
		if g.inc != inc {
			return
		}
		g.cachePending = false
		g.cache.Kick()
	})
}

// cacheSynced is the follower's OnSynced: a store that stops or starts
// answering changes every routing answer's freshness.
func (g *gateway) cacheSynced(err error) {
	if (err != nil) != g.storeErr {
		g.storeErr = err != nil
		g.epoch++
	}
}

// onCacheChange is the cache's OnChange: publish the version, invalidate
// routes. (The health runner follows the cache by itself.)
func (g *gateway) onCacheChange(changes []region.Change, reload bool) {
	w := g.w
	if !g.running {
		return
	}
	v := g.cache.Version()
	w.checkVersion(g, g.rs.name, v)
	g.pub.Set(v)
	g.wakeWatches()
	if reload {
		g.epoch++
		g.dataEpoch++
		return
	}
	for i := range changes {
		g.patch(g.rs.idx, &changes[i])
	}
}

// owns reports whether this gateway runs the instance's checks: the
// agent's sharding (federation.Shards).
func (g *gateway) owns(k region.Key) bool { return g.shards.Owns(k.String()) }

// peersChanged re-shards the checks when the region's alive gateways
// change (the federator's OnMembership, as in the agent).
func (g *gateway) peersChanged() {
	if !g.shards.Update(g.core.AliveGateways(g.rs.name)) {
		return
	}
	g.w.log.event(g.w.now, "shard", kv("gateway", g.name), kvStrs("gateways", g.shards.Names()))
	g.health.Resync()
}

// publish is the Publisher's publish: the tag changes locally (the core
// sees its own update) and gossip spreads it.
func (g *gateway) publish(v uint64) bool {
	if !g.running {
		return false
	}
	g.pubVer = v
	g.fed.Member(federation.MemberEvent{Kind: federation.EventUpdate,
		Member: federation.Member{Name: g.name, Region: g.rs.name, HTTPAddr: g.addr, Version: v}})
	g.w.spreadVersion(g, v)
	return true
}

// memberEvent feeds the core a membership change of s.
func (g *gateway) memberEvent(kind federation.EventKind, s *gateway, version uint64) {
	g.w.m.memberEvents++
	g.fed.Member(federation.MemberEvent{Kind: kind,
		Member: federation.Member{Name: s.name, Region: s.rs.name, HTTPAddr: s.addr, Version: version}})
}

// pickServing picks which running gateway of a region answers a lookup
// (round robin, as a load balancer in front of them would).
func (rs *regionSim) pickServing() *gateway {
	n := len(rs.gateways)
	for i := range n {
		g := rs.gateways[(rs.rr+i)%n]
		if g.running {
			rs.rr = (rs.rr + i + 1) % n
			return g
		}
	}
	return nil
}
