package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// fetchRec is a fetch in flight.
type fetchRec struct {
	id   uint64
	at   time.Duration
	span spanRef
}

// fedStep ticks the federation core, carries out its effects and arms the
// next tick, as Federator.Run does after every event.
func (g *gateway) fedStep() {
	w := g.w
	if !g.running {
		return
	}
	now := w.wall()
	effs := g.core.Tick(now)
	for _, e := range effs {
		switch e.Kind {
		case federation.EffectFetch:
			g.fetch(e)
		case federation.EffectPersist:
			g.persist(e.Region)
		case federation.EffectDrop:
			delete(g.rs.persisted, e.Region)
			w.log.event(w.now, "drop", kv("gateway", g.name), kv("region", e.Region), kv("reason", e.Reason))
		}
	}
	// The core times fetches out itself; staleness may flip then, so tick
	// at its deadline. A deadline in the past with nothing done means it
	// waits for an event (production wakes at least once a second).
	next := g.core.NextDeadline(now)
	at := w.now + time.Second
	if !next.IsZero() && next.After(now) {
		at = min(at, next.Sub(w.cfg.start))
	}
	w.arm(&g.fedT, at, g.fedStep)
	g.routingInputs()
}

// regionSig is what routing reads of a remote region besides its
// instances (whose changes received tracks per service): a change of any of
// it invalidates the gateway's memoized decisions.
type regionSig struct {
	has       bool
	stale     bool
	reachable bool
	lastSync  time.Time // only compared while stale (Age decides demotion then)
}

// routingInputs bumps the routing epoch when the core's view of a remote
// region changed in a way that can change a decision.
func (g *gateway) routingInputs() {
	w := g.w
	if len(g.sig) != len(w.regions) {
		g.sig = make([]regionSig, len(w.regions))
		g.epoch++
	}
	changed := false
	for i, rs := range w.regions {
		if rs == g.rs {
			continue
		}
		rep, stale, _ := g.core.Lookup(rs.name)
		s := regionSig{stale: stale}
		if rep != nil {
			s.has = true
			if stale {
				s.lastSync = rep.LastSync
			}
		}
		for _, o := range rs.gateways {
			if g.view[o.idx].status == federation.StatusAlive {
				s.reachable = true
				break
			}
		}
		if stale && s.reachable {
			// Alive in gossip, but fetches of it failing in a row make
			// the core count it unreachable (CoreConfig.UnreachableAfter):
			// a failed fetch makes the replica stale, so only then ask.
			s.reachable = g.core.View(rs.name).Reachable
		}
		if s != g.sig[i] {
			g.sig[i] = s
			changed = true
		}
	}
	if changed {
		g.epoch++
	}
}

// fetch simulates GET /v1/federation/catalog?since=V against a gateway of
// another region: request and response cross the simulated network; a lost
// packet or a dead server leaves the core to time the fetch out.
func (g *gateway) fetch(e federation.Effect) {
	w := g.w
	g.fetchSeq++
	rec := fetchRec{id: g.fetchSeq, at: w.now}
	rec.span = w.trc.startFetch(g, e, w.now)
	g.inflight[e.Region] = rec
	t := w.gwByName[e.Gateway]
	if t == nil {
		g.syncFailed() // nobody answers: the core times the fetch out
		w.trc.endFetch(rec.span, w.now+g.core.Config().FetchTimeout, "no such gateway", nil)
		return
	}
	inc := g.inc
	d1, ok := w.net.deliver(g.rs.idx, t.rs.idx)
	if !ok {
		g.syncFailed()
		w.trc.endFetch(rec.span, w.now+g.core.Config().FetchTimeout, "request lost", nil)
		return
	}
	tinc := t.inc
	w.after(d1, func() {
		if !t.running || t.inc != tinc {
			g.syncFailed()
			w.trc.endFetch(rec.span, rec.at+g.core.Config().FetchTimeout, "gateway down", nil)
			return
		}
		src := federation.CatalogSource{Region: t.rs.name, Store: t.rs.store, Cache: t.cache}
		ans, err := src.Answer(w.ctx, e.Since)
		if perr := w.peerCheck(g, t, e.Region); perr != nil {
			ans, err = nil, perr
		}
		var res federation.SyncResult
		var size int64
		var nchanges int
		if err == nil {
			res, size, nchanges = syncResultOf(ans)
		}
		w.trc.serve(t, rec.span, w.now, w.now+t.rs.slow, e, res, size, nchanges, err)
		d2, ok := w.net.deliver(t.rs.idx, g.rs.idx)
		if !ok {
			g.syncFailed()
			w.trc.endFetch(rec.span, rec.at+g.core.Config().FetchTimeout, "response lost", nil)
			return
		}
		w.after(t.rs.slow+d2, func() {
			g.received(inc, e, rec, res, size, nchanges, err)
		})
	})
}

// syncResultOf turns the sync endpoint's answer into what Fetch returns,
// and measures the JSON the endpoint would write.
func syncResultOf(ans any) (federation.SyncResult, int64, int) {
	size := jsonSize(ans)
	switch a := ans.(type) {
	case federation.DeltaResponse:
		return federation.SyncResult{Version: a.Version, Changes: a.Changes}, size, len(a.Changes)
	case federation.FullResponse:
		cat := region.NewCatalog()
		cat.Load(region.Snapshot{Version: a.Version, Instances: a.Instances})
		return federation.SyncResult{Version: a.Version, Full: true, Catalog: cat}, size, len(a.Instances)
	}
	return federation.SyncResult{}, size, 0
}

func (g *gateway) received(inc int, e federation.Effect, rec fetchRec, res federation.SyncResult, size int64, nchanges int, err error) {
	w := g.w
	if !g.running || g.inc != inc {
		w.trc.endFetch(rec.span, w.now, "gateway restarted", nil)
		return
	}
	timeout := g.core.Config().FetchTimeout
	cur, ok := g.inflight[e.Region]
	if !ok || cur.id != rec.id || w.now-rec.at >= timeout {
		g.syncFailed()
		w.trc.endFetch(rec.span, rec.at+timeout, "timed out", nil)
		return // the core timed it out already (the HTTP client would have too)
	}
	delete(g.inflight, e.Region)
	now := w.wall()
	var before uint64
	if rep := g.core.Replica(e.Region); rep != nil {
		before = rep.Version()
	}
	if err != nil {
		g.core.FetchFailed(now, e, fmt.Errorf("HTTP 503: %w", err))
		g.syncFailed()
		w.trc.endFetch(rec.span, w.now, err.Error(), nil)
	} else {
		w.m.syncBytes[g.rs.idx] += size
		w.m.syncs++
		if res.Full {
			w.m.fullSyncs++
		}
		w.noteSync(e.Since, res.Full)
		if serr := g.core.FetchDone(now, e, res); serr != nil {
			g.syncFailed()
			err = serr
		}
		// What the replica's instances now are: a delta changes the
		// services it names, a snapshot may change any.
		if res.Full || err != nil {
			g.epoch++
			g.dataEpoch++
		} else if ri, ok := w.cfg.regionIdx[e.Region]; ok {
			for i := range res.Changes {
				if ch := &res.Changes[i]; ch.Version > before {
					g.patch(ri, ch)
				}
			}
		}
		w.trc.endFetch(rec.span, w.now, errString(err), &syncAttrs{from: e.Since, to: res.Version, bytes: size, changes: nchanges, full: res.Full})
	}
	var after uint64
	if rep := g.core.Replica(e.Region); rep != nil {
		after = rep.Version()
	}
	w.log.event(w.now, "sync", kv("gateway", g.name), kv("region", e.Region), kv("from", e.Gateway),
		kvInt("since", int64(e.Since)), kvInt("before", int64(before)), kvInt("after", int64(after)),
		kvBool("full", res.Full), kvInt("bytes", size), kv("error", errString(err)))
	w.checkVersion(g, e.Region, after)
	if r := w.regionByName(e.Region); r != nil {
		w.checkConvergence(r)
	}
	g.fedStep()
}

// syncFailed counts one fetch of the gateway that failed: lost on the
// way there or back, unanswered (server down), answered too late (the core
// timed it out), answered with an error or not applicable. Each fetch ends
// once, as a sync or as a failure; a fetch abandoned because its own
// gateway restarted is neither.
func (g *gateway) syncFailed() {
	g.w.m.syncFailed++
	g.w.m.syncFailedBy[g.rs.idx]++
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// persist writes a replica to the region's store (RedisReplicaStore in
// production); it fails while the store is down. An unchanged version only
// refreshes the bookkeeping, without copying the catalog.
func (g *gateway) persist(regionName string) {
	rs := g.rs
	if rs.down {
		return
	}
	rep := g.core.Replica(regionName)
	if rep == nil {
		return
	}
	if prev, ok := rs.persisted[regionName]; ok && prev.Version == rep.Version() && prev.Source == rep.Source {
		prev.LastSync = rep.LastSync
		rs.persisted[regionName] = prev
		return
	}
	rs.persisted[regionName] = rep.Snapshot()
}

func (w *world) regionByName(name string) *regionSim {
	if i, ok := w.cfg.regionIdx[name]; ok {
		return w.regions[i]
	}
	return nil
}

// checkVersion records a version a gateway holds for a region and checks
// that it never goes backwards within one incarnation.
func (w *world) checkVersion(g *gateway, regionName string, v uint64) {
	if w.hooks.corruptVersion != nil {
		v = w.hooks.corruptVersion(g.name, regionName, v)
	}
	prev, seen := g.lastVer[regionName]
	if seen && v < prev {
		w.m.violate(InvVersionMonotonic, fmt.Sprintf("gateway %s: catalog of %s went from v%d back to v%d", g.name, regionName, prev, v))
	}
	if !seen || v > prev {
		g.lastVer[regionName] = v
	}
}

// checkConvergence pops the region's registrations that every running
// gateway of every other region now holds.
func (w *world) checkConvergence(rs *regionSim) {
	if len(rs.pending) == 0 {
		return
	}
	minV := ^uint64(0)
	others := false
	for _, g := range w.gateways {
		if g.rs == rs || !g.running {
			continue
		}
		others = true
		var v uint64
		if rep := g.core.Replica(rs.name); rep != nil {
			v = rep.Version()
		}
		minV = min(minV, v)
	}
	if !others {
		return
	}
	i := 0
	for i < len(rs.pending) && rs.pending[i].version <= minV {
		w.m.convergence = append(w.m.convergence, convSample{region: rs.idx, d: w.now - rs.pending[i].at})
		i++
	}
	rs.pending = rs.pending[i:]
}

var errNoGateway = errors.New("no running gateway in the region")
