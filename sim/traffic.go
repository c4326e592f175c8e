package sim

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// stream is one Traffic entry: lookups from a region for a service, as a
// Poisson process at the given rate.
type stream struct {
	w       *world
	idx     int
	cfg     *trafficCfg
	svcName string
	from    *regionSim
	mean    float64  // seconds between lookups
	clients []string // hash keys of the stream's callers (consistent hashing)
}

// hashClients is how many distinct callers a stream with the hash picker has.
const hashClients = 64

func newStream(w *world, i int) *stream {
	tc := &w.cfg.traffic[i]
	s := &stream{w: w, idx: i, cfg: tc, svcName: w.cfg.services[tc.service].name, from: w.regions[tc.from], mean: 1 / tc.rate}
	if tc.picker == failover.PickerHash {
		for c := range hashClients {
			s.clients = append(s.clients, fmt.Sprintf("%s-client-%d", s.from.name, c))
		}
	}
	return s
}

func (s *stream) scheduleNext() {
	w := s.w
	d := time.Duration(w.trafRng.ExpFloat64() * s.mean * float64(time.Second))
	w.q.push(event{at: w.now + max(d, 1), kind: evLookup, idx: int32(s.idx)})
}

// routeMemo is a routing decision kept while none of its inputs changed:
// the gateway's epoch (membership, staleness, sync errors, store errors,
// network, snapshots), the service's epoch (its instances changed in the
// local catalog or a replica) and the next time a stale replica crosses the
// staleness bound. Only the picker runs per lookup.
type routeMemo struct {
	epoch uint64
	svc   uint64 // the service's epoch
	until time.Duration
	d     failover.Decision
	insts []*instance // per endpoint: the ground truth (nil: unknown to the world)
	stale []bool      // per region: the caller's view said stale
	// healthy lists the regions the policy allows whose view holds healthy
	// instances: with one of them really reachable, traffic into a region
	// cut off for long breaks no_unreachable_sent.
	healthy []int
	// demoted: an allowed remote region the caller's view holds reachable
	// but stale past the policy's bound (the router ranks it after fresh
	// ones): counted per lookup as stale_demoted.
	demoted bool
}

func (g *gateway) route(s *stream) *routeMemo {
	w := g.w
	if m := g.memo[s.idx]; m != nil && m.epoch == g.epoch && m.svc == g.svcEpoch[s.cfg.service] && w.now < m.until {
		return m
	}
	w.m.routes++
	now := w.wall()
	bound := s.cfg.policy.StalenessBound
	k := len(w.regions)
	m := &routeMemo{epoch: g.epoch, svc: g.svcEpoch[s.cfg.service], until: w.end + 1, stale: make([]bool, k)}
	fr := g.cache.Freshness()
	local := failover.RegionView{Name: g.rs.name, Version: fr.Version, Stale: fr.Stale, Reachable: true}
	local.Instances = g.instances(g.rs.idx, s.cfg.service, func() []region.Instance {
		var out []region.Instance
		g.cache.Read(func(c *region.Catalog) { out = c.Instances(s.svcName, region.Filter{}) })
		return out
	})
	views := make([]failover.RegionView, 0, k)
	views = append(views, local)
	for _, rv := range g.core.Regions() {
		if rv.Local || rv.Replica == nil {
			continue
		}
		ri, ok := w.cfg.regionIdx[rv.Name]
		if !ok {
			continue
		}
		age := max(now.Sub(rv.Replica.LastSync), 0)
		cat := rv.Replica.Catalog
		v := failover.RegionView{Name: rv.Name, Instances: g.instances(ri, s.cfg.service, func() []region.Instance {
			return cat.Instances(s.svcName, region.Filter{})
		}),
			Version: rv.Replica.Version(), Stale: rv.Stale, Age: age, Reachable: rv.Reachable}
		if rv.Reachable {
			v.RTT, v.HasRTT = w.net.rtt(g.rs.idx, ri), true
		}
		if v.Stale && age <= bound {
			m.until = min(m.until, rv.Replica.LastSync.Sub(w.cfg.start)+bound+1)
		}
		if w.hooks.routeView != nil {
			t := routeViewTweak{Region: rv.Name}
			w.hooks.routeView(g.name, &t)
			if t.Reachable != nil {
				v.Reachable = *t.Reachable
			}
			if t.Stale != nil {
				v.Stale = *t.Stale
			}
		}
		views = append(views, v)
	}
	rviews := views
	if w.hooks.routerSees != nil {
		rviews = slices.Clone(views)
		for i := range rviews {
			w.hooks.routerSees(g.name, &rviews[i])
		}
	}
	m.d = failover.Route(rviews, failover.Request{Service: s.svcName, FromRegion: g.rs.name, FromZone: s.cfg.zone, Policy: s.cfg.policy})
	m.insts = make([]*instance, len(m.d.Endpoints))
	for i := range m.d.Endpoints {
		ep := &m.d.Endpoints[i]
		if ri, ok := w.cfg.regionIdx[ep.Region]; ok {
			m.insts[i] = w.regions[ri].insts[region.Key{Service: ep.Service, ID: ep.ID}]
		}
	}
	for i := range views {
		v := &views[i]
		ri := w.cfg.regionIdx[v.Name]
		m.stale[ri] = v.Stale
		if allowedBy(&s.cfg.policy, g.rs.name, v.Name) && hasHealthy(v.Instances) {
			m.healthy = append(m.healthy, ri)
		}
		if ri != g.rs.idx && allowedBy(&s.cfg.policy, g.rs.name, v.Name) && v.Reachable && v.Stale && v.Age > bound {
			m.demoted = true
		}
	}
	g.memo[s.idx] = m
	return m
}

type instsKey struct{ region, service int }

type instsEntry struct {
	data uint64 // g.dataEpoch when read
	ins  []region.Instance
}

// instances returns a service's instances in a region's catalog as
// Catalog.Instances would (sorted by id). It reads them once per catalog
// load or change of the service (patch drops them), not once per lookup.
// Route only reads them.
func (g *gateway) instances(reg, svc int, read func() []region.Instance) []region.Instance {
	k := instsKey{reg, svc}
	if e, ok := g.insts[k]; ok && e.data == g.dataEpoch {
		if g.w.hooks.verifyInstances {
			if fresh := read(); !reflect.DeepEqual(fresh, e.ins) && (len(fresh) > 0 || len(e.ins) > 0) {
				panic(fmt.Sprintf("gateway %s: cached instances of %s in %s differ from the catalog (%d vs %d)",
					g.name, g.w.cfg.services[svc].name, g.w.regions[reg].name, len(e.ins), len(fresh)))
			}
		}
		return e.ins
	}
	ins := read()
	g.insts[k] = instsEntry{data: g.dataEpoch, ins: ins}
	return ins
}

// patch records one change applied to region reg's catalog held by the
// gateway: routes of the service are invalidated and its instances are
// read again from that catalog (the core's replica or the region's cache)
// when routing next needs them. The change itself is not mirrored here:
// routing must see what the production code made of it, so that a bug in
// applying changes (a delete that keeps the instance) shows in lookups.
func (g *gateway) patch(reg int, ch *region.Change) {
	svc, ok := g.w.cfg.serviceIdx[ch.Service]
	if !ok {
		return
	}
	g.svcEpoch[svc]++
	delete(g.insts, instsKey{reg, svc})
}

func hasHealthy(ins []region.Instance) bool {
	for i := range ins {
		if ins[i].Status == region.StatusPassing || ins[i].Status == region.StatusWarning {
			return true
		}
	}
	return false
}

func (g *gateway) picker(s *stream) failover.Picker {
	if p := g.pickers[s.idx]; p != nil {
		return p
	}
	p, err := failover.NewPicker(s.cfg.picker, g.w.rand(streamPicker+uint64(g.idx)<<12+uint64(s.idx)+uint64(g.inc)<<30))
	if err != nil {
		panic(err) // validated in prepare
	}
	g.pickers[s.idx] = p
	return p
}

// lookup is one lookup: the region's gateway routes it, the picker picks an
// endpoint, and the outcome is judged against the truth.
func (s *stream) lookup() {
	w := s.w
	s.scheduleNext()
	g := s.from.pickServing()
	if g == nil {
		w.m.lookup(s, nil, -1, false, true)
		return
	}
	m := g.route(s)
	if m.demoted {
		w.ext.staleDemoted++
	}
	if len(m.d.Endpoints) == 0 {
		w.m.lookup(s, g, -1, false, true)
		w.oracleLookup(s, m, true)
		return
	}
	lvl := m.d.Level(w.trafRng.Float64())
	key := ""
	if s.clients != nil {
		key = s.clients[w.trafRng.IntN(len(s.clients))]
	}
	ep, _ := g.picker(s).Pick(lvl, key)
	off := cap(m.d.Endpoints) - cap(lvl)
	if off < 0 || off+len(lvl) > len(m.d.Endpoints) {
		off, lvl = 0, m.d.Endpoints
	}
	i := off
	for j := range lvl {
		if lvl[j].ID == ep.ID && lvl[j].Region == ep.Region {
			i = off + j
			break
		}
	}
	inst := m.insts[i]
	alive := inst != nil && inst.usableFrom(w, s.from.idx)
	allDead := !alive
	if allDead {
		for _, x := range m.insts {
			if x != nil && x.usableFrom(w, s.from.idx) {
				allDead = false
				break
			}
		}
	}
	w.m.lookup(s, g, i, alive, allDead)
	w.oracleLookup(s, m, allDead)
	ri := w.cfg.regionIdx[ep.Region]
	if alive && ri != s.from.idx {
		w.m.failoverServed(s)
	}
	s.judge(g, m, ri, inst, &ep)
	if p, ok := g.picker(s).(*failover.P2C); ok {
		lat := w.net.rtt(s.from.idx, ri) + 2*w.cfg.net.intra
		if inst != nil && inst.state == stateSlow {
			lat += inst.slow
		}
		p.Observe(w.wall(), inst.refOr(ep), lat, !alive)
	}
	w.trc.lookup(g, s, &ep, &m.d, alive, w.now)
}

// judge checks one answered lookup against the simulated world: the
// network's cuts (no_unreachable_sent) and the stores' committed versions
// and instances (staleness_stated).
func (s *stream) judge(g *gateway, m *routeMemo, ri int, inst *instance, ep *failover.Endpoint) {
	w := s.w
	from := s.from.idx
	if d := w.detectionBound(); !m.d.Panic && w.cutLonger(from, ri, d) && !g.rejoinedLately(ri) {
		// The caller's region has been cut off from ri for longer than
		// membership needs to see it: a region the policy allows, with
		// healthy instances and really reachable for that long, was the
		// place to send it.
		for _, r := range m.healthy {
			if r != ri && w.reachLonger(from, r, d) && w.gatewayUpLonger(r, d) {
				w.m.unreachableSent++
				w.m.perStream[s.idx].unreach++
				w.m.violateWhy(InvUnreachable, "gateway "+g.name+" sent a lookup for "+s.svcName+" to "+ep.Region+
					", cut off from "+s.from.name+" for "+fmtDur(w.now-w.net.flip[from][ri])+" (detection bound "+fmtDur(d)+
					"), while "+w.regions[r].name+" was reachable with healthy instances (not in panic)", m.d.Explanation)
				break
			}
		}
	}
	if m.stale[ri] {
		return // the answer says so
	}
	bound := s.cfg.policy.StalenessBound
	// The replica the answer came from, judged by the store's commits: a
	// core learns that it is behind within an anti-entropy period and a
	// fetch timeout (the version tag, or a failing fetch), so past that and
	// the bound, not saying stale is a lie.
	rs := w.regions[ri]
	var v uint64
	has := true
	if ri == g.rs.idx {
		v = g.cache.Version()
	} else if rep := g.core.Replica(rs.name); rep != nil {
		v = rep.Version()
	} else {
		has = false
	}
	if since, behind := rs.behindSince(v); has && behind && w.now-since > bound+g.reactBound() {
		w.m.violateWhy(InvStaleness, fmt.Sprintf("gateway %s answered %s from %s at v%d, behind the store's v%d for %s, not marked stale",
			g.name, s.svcName, rs.name, v, rs.commits[len(rs.commits)-1].version, fmtDur(w.now-since)), m.d.Explanation)
		return
	}
	if inst != nil && (ep.Status == region.StatusPassing || ep.Status == region.StatusWarning) {
		switch {
		case !inst.registered && w.now-inst.deregAt > bound:
			w.m.violateWhy(InvStaleness, "gateway "+g.name+" returned "+inst.ref+", deregistered "+fmtDur(w.now-inst.deregAt)+
				" ago, from a view of "+ep.Region+" not marked stale", m.d.Explanation)
		case inst.registered && inst.regStatus == region.StatusCritical && w.now-inst.regCriticalSince > bound:
			w.m.violateWhy(InvStaleness, "gateway "+g.name+" returned "+inst.ref+", critical for "+fmtDur(w.now-inst.regCriticalSince)+
				", as passing from a view of "+ep.Region+" not marked stale", m.d.Explanation)
		}
	}
}

// rejoinedLately reports whether membership told the gateway, lately,
// that a gateway of region ri is alive again. Gossip may say so through a
// third region while the direct path is still cut one way (memberlist's
// indirect probes): then only failing fetches tell the core, and that
// takes UnreachableAfter fetch timeouts with their backoff, after an
// anti-entropy period at worst.
func (g *gateway) rejoinedLately(ri int) bool {
	cc := g.core.Config()
	grace := time.Duration(cc.UnreachableAfter)*(cc.FetchTimeout+cc.BackoffMax) + cc.AntiEntropy
	for _, o := range g.w.regions[ri].gateways {
		if vw := g.view[o.idx]; vw.status == federation.StatusAlive && g.w.now-vw.aliveAt <= grace {
			return true
		}
	}
	return false
}

// reactBound is how long the gateway's core may take to notice that a
// replica fell behind: an anti-entropy period and a fetch timeout.
func (g *gateway) reactBound() time.Duration {
	cc := g.core.Config()
	return cc.AntiEntropy + cc.FetchTimeout
}

// detectionBound is the gossip profile's detection bound for the run's
// pool of gateways.
func (w *world) detectionBound() time.Duration {
	if w.detect == 0 {
		w.detect = detectionBound(w.profile, len(w.gateways))
	}
	return w.detect
}

func (in *instance) refOr(ep failover.Endpoint) string {
	if in != nil {
		return in.ref
	}
	return ep.Ref()
}
