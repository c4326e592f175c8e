package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// gateway is one simulated gateway process: a region.Cache over its
// region's store, a federation.Core, per-instance health machines for the
// checks it owns, and its membership views. It is driven the way the
// production agent drives the same cores (gateway/agent.go,
// federation/federator.go, region/healthrunner.go), with simulated time.
type gateway struct {
	w    *world
	idx  int
	name string
	addr string
	rs   *regionSim

	running bool
	left    bool // left gracefully (rolling restart)
	inc     int  // incarnation: bumped by every crash and restart

	cache     *region.Cache
	core      *federation.Core
	healthRng *rand.Rand
	checks    map[region.Key]*check
	peers     []string // alive gateways of the region as the core sees them (check sharding)
	view      []memberView

	fedT, catchT timer
	cachePending bool
	storeErr     bool
	fetchSeq     uint64
	inflight     map[string]fetchRec

	wantVer, pubVer uint64
	pubBlocked      time.Duration
	pubScheduled    bool

	epoch    uint64   // bumped whenever a routing input of every service may have changed
	svcEpoch []uint64 // per service: bumped when its instances changed in a catalog the gateway holds
	// dataEpoch is bumped when a whole catalog was replaced (a reload or a
	// snapshot sync): every cached instance list is read again.
	dataEpoch uint64
	insts     map[instsKey]instsEntry // a service's instances per region, as routing last read them
	memo      []*routeMemo
	pickers   []failover.Picker
	sig       []regionSig
	lastVer   map[string]uint64 // highest version seen per region (this incarnation)
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
// a fresh core with the replicas persisted in the region's store restored,
// and no knowledge of the pool until membership delivers it.
func (g *gateway) start() error {
	w := g.w
	g.running, g.left = true, false
	g.inc++
	core, err := federation.NewCore(w.coreConfig(g), w.rand(streamCore+uint64(g.idx)+uint64(g.inc)<<10))
	if err != nil {
		return err
	}
	g.core = core
	g.healthRng = w.rand(streamHealth + uint64(g.idx) + uint64(g.inc)<<10)
	g.checks = map[region.Key]*check{}
	g.inflight = map[string]fetchRec{}
	g.lastVer = map[string]uint64{}
	g.peers = nil
	g.sig = nil
	g.dataEpoch++
	g.insts = map[instsKey]instsEntry{}
	if g.svcEpoch == nil {
		g.svcEpoch = make([]uint64, len(w.cfg.services))
	}
	g.view = make([]memberView, len(w.gateways))
	g.memo = make([]*routeMemo, len(w.streams))
	g.pickers = make([]failover.Picker, len(w.streams))
	g.wantVer, g.pubVer, g.pubBlocked, g.pubScheduled = 0, 0, 0, false
	g.cachePending, g.storeErr = false, false
	g.epoch++
	restores := 0
	g.cache = region.NewCache(g.rs.store, region.CacheOptions{CatchUp: time.Second, Logger: w.logger, Now: w.wall,
		NewEpoch: func() string { restores++; return fmt.Sprintf("%s-restore-%d", g.name, restores) }})
	g.cache.OnChange(g.onCacheChange)
	now := w.wall()
	if !g.rs.down {
		names := make([]string, 0, len(g.rs.persisted))
		for n := range g.rs.persisted {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			g.core.Restore(now, g.rs.persisted[n])
		}
	}
	g.core.Member(now, federation.MemberEvent{Kind: federation.EventJoin,
		Member: federation.Member{Name: g.name, Region: g.rs.name, HTTPAddr: g.addr}})
	g.syncCache()
	g.scheduleCatchUp()
	return nil
}

// crash stops the process; graceful is a leave (rolling restart).
func (g *gateway) crash(graceful bool) {
	if !g.running {
		return
	}
	g.running, g.left = false, graceful
	g.inc++
	keys := make([]region.Key, 0, len(g.checks))
	for k := range g.checks {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, keyCmp)
	for _, k := range keys {
		g.checks[k].drop()
	}
	g.fedT.stop()
	g.catchT.stop()
	g.inflight = map[string]fetchRec{}
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

// scheduleCatchUp reads the change log every second, as the cache's
// catch-up ticker does.
func (g *gateway) scheduleCatchUp() {
	w := g.w
	w.arm(&g.catchT, w.now+time.Second, func() {
		if !g.running {
			return
		}
		g.syncCache()
		g.scheduleCatchUp()
	})
}

// notifyStore is the store's pub/sub notification of a new version: the
// cache catches up after the intra-region latency (and the store's
// slowness). Notifications coalesce.
func (g *gateway) notifyStore() {
	w := g.w
	if !g.running || g.cachePending {
		return
	}
	g.cachePending = true
	inc := g.inc
	w.after(w.cfg.net.intra+g.rs.slow, func() {
		if g.inc != inc {
			return
		}
		g.cachePending = false
		g.syncCache()
	})
}

func (g *gateway) syncCache() {
	err := g.cache.Sync(g.w.ctx)
	if (err != nil) != g.storeErr {
		g.storeErr = err != nil
		g.epoch++
	}
}

// onCacheChange is the cache's OnChange: publish the version, keep the
// health machines in step with the catalog, invalidate routes.
func (g *gateway) onCacheChange(changes []region.Change, reload bool) {
	w := g.w
	if !g.running {
		return
	}
	v := g.cache.Version()
	w.checkVersion(g, g.rs.name, v)
	g.onVersion(v)
	if reload {
		g.epoch++
		g.dataEpoch++
		g.reconcileChecks()
		return
	}
	for i := range changes {
		ch := &changes[i]
		g.patch(g.rs.idx, ch)
		k := region.Key{Service: ch.Service, ID: ch.ID}
		c := g.checks[k]
		if ch.Op == region.OpDelete {
			if c != nil {
				c.drop()
			}
			continue
		}
		if !g.owns(k) {
			continue
		}
		if c != nil {
			c.resync(*ch.Instance)
			continue
		}
		in := g.rs.insts[k]
		if in == nil {
			continue
		}
		g.newCheck(in, *ch.Instance).step()
	}
}

// owns reports whether this gateway runs the instance's checks: rendezvous
// hashing over the region's alive gateways, as the agent shards them.
func (g *gateway) owns(k region.Key) bool {
	if len(g.peers) == 0 {
		return true
	}
	return federation.Owner(k.String(), g.peers) == g.name
}

// peersChanged re-shards the checks when the region's alive gateways change.
func (g *gateway) peersChanged() {
	alive := g.core.AliveGateways(g.rs.name)
	names := make([]string, len(alive))
	for i, m := range alive {
		names[i] = m.Name
	}
	if slices.Equal(names, g.peers) {
		return
	}
	g.peers = names
	g.w.log.event(g.w.now, "shard", kv("gateway", g.name), kvStrs("gateways", names))
	g.reconcileChecks()
}

// reconcileChecks makes the set of health machines match the owned
// instances of the catalog, creating new ones in key order.
func (g *gateway) reconcileChecks() {
	var all []region.Instance
	g.cache.Read(func(c *region.Catalog) { all = c.All() })
	seen := make(map[region.Key]bool, len(all))
	var fresh []*check
	for i := range all {
		rec := all[i]
		k := rec.Key()
		seen[k] = true
		c := g.checks[k]
		owned := g.owns(k)
		switch {
		case owned && c == nil:
			in := g.rs.insts[k]
			if in == nil {
				continue
			}
			fresh = append(fresh, g.newCheck(in, rec))
		case owned && c.h != nil:
			if st, ok := c.h.State(k); ok && st.ModifyIndex != rec.ModifyIndex {
				c.resync(rec)
			}
		case !owned && c != nil:
			c.drop()
		}
	}
	var gone []region.Key
	for k := range g.checks {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, keyCmp)
	for _, k := range gone {
		g.checks[k].drop()
	}
	for _, c := range fresh {
		c.step()
	}
}

// write carries out a health machine's store write (compare-and-set on
// ModifyIndex), as HealthRunner.write does.
func (g *gateway) write(e region.Effect) {
	w := g.w
	inc := g.inc
	w.after(g.rs.slow, func() {
		if !g.running || g.inc != inc {
			return
		}
		var ch region.Change
		var err error
		if e.Kind == region.EffectDeregister {
			ch, err = g.rs.store.Delete(w.ctx, e.Key, region.Cond{IfIndex: e.IfIndex})
		} else {
			var in region.Instance
			var ok bool
			g.cache.Read(func(c *region.Catalog) { in, ok = c.Get(e.Key) })
			if !ok || in.ModifyIndex != e.IfIndex {
				g.notifyStore()
				return
			}
			in.Status, in.Output, in.UpdatedAt = e.Status, e.Output, w.wall()
			ch, err = g.rs.store.Put(w.ctx, in, region.Cond{IfIndex: e.IfIndex})
		}
		switch {
		case err == nil:
			w.m.statusWrites++
			w.m.statusWritesBy[g.rs.idx]++
			w.committed(g.rs, ch, true)
			if !g.cache.Apply(ch) {
				g.syncCache()
			}
		case errors.Is(err, region.ErrConflict), errors.Is(err, region.ErrNotFound):
			g.notifyStore()
		default:
			w.m.writeFailed++ // the store is down: the machine re-emits
		}
	})
}

// onVersion is Membership.SetVersion: the tag follows at most once per
// publish interval (serf.go publishLoop).
func (g *gateway) onVersion(v uint64) {
	g.wantVer = v
	g.tryPublish()
}

func (g *gateway) publishInterval() time.Duration {
	if g.w.cfg.profile.Name == "local" {
		return 200 * time.Millisecond
	}
	return time.Second
}

func (g *gateway) tryPublish() {
	w := g.w
	if !g.running || g.wantVer == g.pubVer {
		return
	}
	if w.now < g.pubBlocked {
		if !g.pubScheduled {
			g.pubScheduled = true
			inc := g.inc
			w.at(g.pubBlocked, func() {
				if g.inc != inc {
					return
				}
				g.pubScheduled = false
				g.tryPublish()
			})
		}
		return
	}
	g.pubVer = g.wantVer
	g.pubBlocked = w.now + g.publishInterval()
	g.core.Member(w.wall(), federation.MemberEvent{Kind: federation.EventUpdate,
		Member: federation.Member{Name: g.name, Region: g.rs.name, HTTPAddr: g.addr, Version: g.pubVer}})
	w.spreadVersion(g, g.pubVer)
}

// memberEvent feeds the core a membership change of s.
func (g *gateway) memberEvent(kind federation.EventKind, s *gateway, version uint64) {
	w := g.w
	g.core.Member(w.wall(), federation.MemberEvent{Kind: kind,
		Member: federation.Member{Name: s.name, Region: s.rs.name, HTTPAddr: s.addr, Version: version}})
	w.m.memberEvents++
	if s.rs == g.rs {
		g.peersChanged()
	}
	g.fedStep()
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
