package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// fetchRec is a fetch whose answer arrived, until the federator took it.
type fetchRec struct {
	span      spanRef
	size      int64
	nchanges  int
	answered  bool // the server answered (not a transport failure)
	serverErr bool // ... with an error (HTTP 503)
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

// Fetch implements federation.SyncTransport over the simulated network:
// GET /v1/federation/catalog?since=V against a gateway of another region.
// Request and response cross the simulated network; a lost packet, a dead
// server or an answer later than the core's FetchTimeout ends the fetch
// with an error at the timeout, as the HTTP client does.
func (g *gateway) Fetch(_ context.Context, e federation.Effect, done func(federation.SyncResult, error)) {
	w := g.w
	start, inc := w.now, g.inc
	timeout := g.core.Config().FetchTimeout
	span := w.trc.startFetch(g, e, w.now)
	fail := func(why string) {
		w.at(start+timeout, func() {
			if g.inc != inc {
				w.trc.endFetch(span, w.now, "gateway restarted", nil)
				return
			}
			w.trc.endFetch(span, w.now, why, nil)
			done(federation.SyncResult{}, errors.New(why))
		})
	}
	t := w.gwByName[e.Gateway]
	if t == nil {
		fail("no such gateway")
		return
	}
	d1, ok := w.net.deliver(g.rs.idx, t.rs.idx)
	if !ok {
		fail("request lost")
		return
	}
	tinc := t.inc
	w.after(d1, func() {
		if !t.running || t.inc != tinc {
			fail("gateway down")
			return
		}
		src := federation.CatalogSource{Region: t.rs.name, Store: w.syncStore(t), Cache: t.cache}
		ans, err := src.Answer(w.ctx, e.Since)
		w.checkServed(t, ans)
		if perr := w.peerCheck(g, t, e.Region); perr != nil {
			ans, err = nil, perr
		}
		var res federation.SyncResult
		var size int64
		var nchanges int
		var cerr error // the client's refusal of the answer
		if err == nil {
			res, size, nchanges, cerr = syncResultOf(e.Region, ans)
		}
		w.trc.serve(t, span, w.now, w.now+t.rs.slow, e, res, size, nchanges, err)
		if err != nil {
			err = fmt.Errorf("HTTP 503: %w", err)
		} else if cerr != nil {
			err = fmt.Errorf("gateway %s %w", e.Addr, cerr)
		}
		d2, ok := w.net.deliver(t.rs.idx, g.rs.idx)
		if !ok {
			fail("response lost")
			return
		}
		arrive := w.now + t.rs.slow + d2
		if arrive-start >= timeout {
			fail("timed out")
			return
		}
		w.at(arrive, func() {
			if g.inc != inc {
				w.trc.endFetch(span, w.now, "gateway restarted", nil)
				return
			}
			g.fetches[e.Seq] = fetchRec{span: span, size: size, nchanges: nchanges, answered: true, serverErr: err != nil}
			if err != nil {
				done(federation.SyncResult{}, err)
				return
			}
			done(res, nil)
		})
	})
}

// syncResultOf is what the client makes of the sync endpoint's answer
// (federation.CatalogAnswer.Result, as httpsync does after decoding), and
// the size of the JSON the endpoint would write.
func syncResultOf(regionName string, ans any) (federation.SyncResult, int64, int, error) {
	size := jsonSize(ans)
	a := federation.AnswerOf(ans)
	res, err := a.Result(regionName)
	return res, size, len(a.Changes) + len(a.Instances), err
}

// onSync is the federator's OnSync: metrics, traces, the event log and
// the convergence and monotonicity checks of one fetch the core took.
func (g *gateway) onSync(o federation.SyncOutcome) {
	w := g.w
	e, res, err := o.Effect, o.Result, o.Err
	rec, answered := g.fetches[e.Seq]
	delete(g.fetches, e.Seq)
	if err != nil {
		g.syncFailed()
	}
	if !answered {
		return // lost or timed out: the transport ended its span
	}
	if rec.serverErr {
		w.trc.endFetch(rec.span, w.now, err.Error(), nil)
	} else {
		w.m.syncBytes[g.rs.idx] += rec.size
		w.m.syncs++
		if res.Full {
			w.m.fullSyncs++
		}
		w.noteSync(e.Since, res.Full)
		// What the replica's instances now are: a delta changes the
		// services it names, a snapshot may change any.
		if res.Full || err != nil {
			g.epoch++
			g.dataEpoch++
		} else if ri, ok := w.cfg.regionIdx[e.Region]; ok {
			for i := range res.Changes {
				if ch := &res.Changes[i]; ch.Version > o.Before {
					g.patch(ri, ch)
				}
			}
		}
		w.trc.endFetch(rec.span, w.now, errString(err), &syncAttrs{from: e.Since, to: res.Version, bytes: rec.size, changes: rec.nchanges, full: res.Full})
	}
	w.log.event(w.now, "sync", kv("gateway", g.name), kv("region", e.Region), kv("from", e.Gateway),
		kvInt("since", int64(e.Since)), kvInt("before", int64(o.Before)), kvInt("after", int64(o.After)),
		kvBool("full", res.Full), kvInt("bytes", rec.size), kv("error", errString(err)))
	w.checkVersion(g, e.Region, o.After)
	if r := w.regionByName(e.Region); r != nil {
		w.checkConvergence(r)
	}
	g.routingInputs()
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

// simReplicas is the region's store of persisted replicas
// (RedisReplicaStore in production); it fails while the store is down.
type simReplicas struct{ g *gateway }

var _ federation.ReplicaStore = simReplicas{}

// Load implements federation.ReplicaStore, in region order.
func (r simReplicas) Load(context.Context) ([]federation.ReplicaSnapshot, error) {
	rs := r.g.rs
	if rs.down {
		return nil, errStoreDown
	}
	names := make([]string, 0, len(rs.persisted))
	for n := range rs.persisted {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]federation.ReplicaSnapshot, len(names))
	for i, n := range names {
		out[i] = rs.persisted[n]
	}
	return out, nil
}

// Save implements federation.ReplicaStore.
func (r simReplicas) Save(_ context.Context, s federation.ReplicaSnapshot) error {
	if r.g.rs.down {
		return errStoreDown
	}
	r.g.rs.persisted[s.Region] = s
	return nil
}

// Delete implements federation.ReplicaStore.
func (r simReplicas) Delete(_ context.Context, regionName string) error {
	w := r.g.w
	delete(r.g.rs.persisted, regionName)
	w.log.event(w.now, "drop", kv("gateway", r.g.name), kv("region", regionName))
	return nil
}

func (w *world) regionByName(name string) *regionSim {
	if i, ok := w.cfg.regionIdx[name]; ok {
		return w.regions[i]
	}
	return nil
}

// checkVersion records a version a gateway holds for a region and checks
// that it never goes backwards within one incarnation and one life of the
// region: a replica that follows a region_reset starts over from the new
// life's version, against which its next versions are judged (else the
// new life's v1 after the reset's v0 would be "behind" the old life's, and
// so would the new life's v101 after the old life's v106 when the new life
// climbed past v106 before the replica followed it).
func (w *world) checkVersion(g *gateway, regionName string, v uint64) {
	if w.hooks.corruptVersion != nil {
		v = w.hooks.corruptVersion(g.name, regionName, v)
	}
	prev, seen := g.lastVer[regionName]
	reset := seen && v < prev && w.followsReset(g, regionName, prev)
	if seen && v < prev && !reset {
		w.m.violate(InvVersionMonotonic, fmt.Sprintf("gateway %s: catalog of %s went from v%d back to v%d", g.name, regionName, prev, v))
	}
	if !seen || v > prev || reset {
		g.lastVer[regionName], g.lastAt[regionName] = v, w.now
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
