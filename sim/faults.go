package sim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

func (w *world) scheduleFaults() {
	for i := range w.cfg.faults {
		f := &w.cfg.faults[i]
		w.at(f.At.D(), func() { w.applyFault(f) })
	}
}

// openSpan starts a fault on the timeline; closeSpan ends it.
func (w *world) openSpan(kind, label string) int {
	i := len(w.faultSpans)
	w.faultSpans = append(w.faultSpans, FaultSpan{Kind: kind, Label: label, Start: w.now, End: -1})
	w.trc.startFault(i, kind, label, w.now)
	w.log.event(w.now, "fault", kv("fault", kind), kv("label", label), kv("phase", "start"))
	return i
}

func (w *world) closeSpan(i int) {
	sp := &w.faultSpans[i]
	if sp.End >= 0 {
		return
	}
	sp.End = w.now
	w.trc.endFault(i, w.now)
	w.log.event(w.now, "fault", kv("fault", sp.Kind), kv("label", sp.Label), kv("phase", "end"))
}

// instant logs a fault that has no duration (a heal, a restart).
func (w *world) instant(kind, label string) {
	i := w.openSpan(kind, label)
	w.closeSpan(i)
}

func (w *world) quiet() { w.quietAt = w.now }

// netChanged re-derives what depends on reachability.
func (w *world) netChanged() {
	w.net.noteReach(w.now)
	w.recomputeMembership()
	for _, g := range w.gateways {
		g.epoch++
	}
}

func (w *world) regionNames(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, w.regions[i].name)
	}
	return strings.Join(s, " ")
}

func (w *world) applyFault(f *scenarios.Fault) {
	c := w.cfg
	dur := f.For.D()
	if storeFault(f.Kind) {
		w.oracleStore(w.regions[c.regionIdx[f.Region]])
	}
	if w.applyMoreFault(f) || w.applyMutfedFault(f) {
		return
	}
	if w.applyMutregionFault(f) || w.applyResetFault(f) {
		return
	}
	switch f.Kind {
	case scenarios.FaultPartition:
		var groups [][]int
		var labels []string
		for _, grp := range f.Groups {
			var ids []int
			for _, r := range grp {
				ids = append(ids, c.regionIdx[r])
			}
			groups = append(groups, ids)
			labels = append(labels, "["+w.regionNames(ids)+"]")
		}
		cuts := w.net.partition(groups)
		w.netFault(f.Kind, strings.Join(labels, " | "), dur, func() { w.net.uncut(cuts) })
	case scenarios.FaultCut:
		a, b := c.regionIdx[f.From], c.regionIdx[f.To]
		w.net.cut[a][b]++
		w.netFault(f.Kind, f.From+" -> "+f.To, dur, func() { w.net.uncut([][2]int{{a, b}}) })
	case scenarios.FaultDegrade:
		a, b := c.regionIdx[f.From], c.regionIdx[f.To]
		lat := f.Latency.D()
		oldAB, oldBA := w.net.dloss[a][b], w.net.dloss[b][a]
		w.net.extra[a][b] += lat
		w.net.extra[b][a] += lat
		if f.Loss > 0 {
			w.net.dloss[a][b], w.net.dloss[b][a] = f.Loss, f.Loss
		}
		label := fmt.Sprintf("%s <-> %s +%s loss %g", f.From, f.To, lat, f.Loss)
		w.netFault(f.Kind, label, dur, func() {
			w.net.extra[a][b] = max(w.net.extra[a][b]-lat, 0)
			w.net.extra[b][a] = max(w.net.extra[b][a]-lat, 0)
			w.net.dloss[a][b], w.net.dloss[b][a] = oldAB, oldBA
		})
	case scenarios.FaultHeal:
		w.net.healAll()
		w.healGen++
		for i := range w.faultSpans {
			if k := w.faultSpans[i].Kind; k == scenarios.FaultPartition || k == scenarios.FaultCut || k == scenarios.FaultDegrade {
				w.closeSpan(i)
			}
		}
		w.instant(f.Kind, "every partition, cut and degraded link")
		w.netChanged()
		w.quiet()
	case scenarios.FaultGatewayCrash:
		gws := w.targetGateways(f)
		sp := w.openSpan(f.Kind, gatewayLabel(gws))
		for _, g := range gws {
			g.crash(false)
		}
		w.gatewaysChanged()
		if dur > 0 {
			w.after(dur, func() {
				w.restart(gws)
				w.closeSpan(sp)
			})
		}
	case scenarios.FaultGatewayRestart:
		gws := w.targetGateways(f)
		w.restart(gws)
		for i := range w.faultSpans {
			if w.faultSpans[i].Kind == scenarios.FaultGatewayCrash && w.allRunning(w.faultSpans[i].Label) {
				w.closeSpan(i)
			}
		}
		w.instant(f.Kind, gatewayLabel(gws))
	case scenarios.FaultRollingRestart:
		var gws []*gateway
		for _, rs := range w.regions {
			if f.Region == "" || rs.name == f.Region {
				gws = append(gws, rs.gateways...)
			}
		}
		for i, g := range gws {
			w.after(time.Duration(i)*f.Every.D(), func() {
				sp := w.openSpan(f.Kind, "restart "+g.name)
				g.crash(true)
				w.gatewaysChanged()
				w.after(f.Down.D(), func() {
					w.restart([]*gateway{g})
					w.closeSpan(sp)
				})
			})
		}
	case scenarios.FaultStoreDown, scenarios.FaultStoreSlow, scenarios.FaultStoreFlaky:
		rs := w.regions[c.regionIdx[f.Region]]
		label := rs.name
		switch f.Kind {
		case scenarios.FaultStoreDown:
			rs.down = true
			rs.store.Fail(errStoreDown)
		case scenarios.FaultStoreFlaky:
			rs.store.LoseReplies(true)
			rs.flaky = true
		default:
			rs.slow = f.Latency.D()
			label += " +" + rs.slow.String()
		}
		sp := w.openSpan(f.Kind, label)
		if dur > 0 {
			w.after(dur, func() { w.storeUp(rs); w.closeSpan(sp) })
		}
	case scenarios.FaultStoreWipe:
		rs := w.regions[c.regionIdx[f.Region]]
		rs.mem.Wipe()
		w.instant(f.Kind, rs.name)
		for _, g := range rs.gateways {
			g.notifyStore()
		}
		w.quiet()
	case scenarios.FaultStoreUp:
		rs := w.regions[c.regionIdx[f.Region]]
		w.storeUp(rs)
		for i := range w.faultSpans {
			if k := w.faultSpans[i].Kind; (k == scenarios.FaultStoreDown || k == scenarios.FaultStoreSlow || k == scenarios.FaultStoreFlaky) && strings.HasPrefix(w.faultSpans[i].Label, rs.name) {
				w.closeSpan(i)
			}
		}
		w.instant(f.Kind, rs.name)
	case scenarios.FaultInstancesFail, scenarios.FaultInstancesFlap, scenarios.FaultInstancesSlow:
		w.instancesFault(f)
	case scenarios.FaultInstancesHeal:
		rs := w.regions[c.regionIdx[f.Region]]
		svc := c.serviceIdx[f.Service]
		var sick []*instance
		for _, in := range rs.bySvc[svc] {
			if in.registered && in.state != stateUp {
				sick = append(sick, in)
			}
		}
		n := pickCount(f, len(sick), len(sick))
		w.healInstances(sick[:n])
		for i := range w.faultSpans {
			sp := &w.faultSpans[i]
			if strings.HasPrefix(sp.Kind, "instances_") && strings.HasPrefix(sp.Label, f.Service+" in "+rs.name) {
				w.closeSpan(i)
			}
		}
		w.instant(f.Kind, fmt.Sprintf("%s in %s: %d", f.Service, rs.name, n))
		w.quiet()
	case scenarios.FaultRegisterStorm:
		rs := w.regions[c.regionIdx[f.Region]]
		svc := c.serviceIdx[f.Service]
		sp := w.openSpan(f.Kind, fmt.Sprintf("%s in %s: %d over %s", f.Service, rs.name, f.Count, f.Over.D()))
		over := f.Over.D()
		for i := range f.Count {
			w.after(time.Duration(int64(over)*int64(i)/int64(f.Count)), func() {
				w.register(w.newInstance(rs, svc), 0)
			})
		}
		w.after(over, func() { w.closeSpan(sp); w.quiet() })
	case scenarios.FaultRegisterBad:
		rs := w.regions[c.regionIdx[f.Region]]
		svc := c.serviceIdx[f.Service]
		sp := w.openSpan(f.Kind, fmt.Sprintf("%s in %s: %d over %s", f.Service, rs.name, f.Count, f.Over.D()))
		for i := range f.Count {
			w.after(time.Duration(int64(f.Over.D())*int64(i)/int64(f.Count)), func() { w.registerInvalid(rs, svc, i) })
		}
		w.after(f.Over.D(), func() { w.closeSpan(sp) })
	case scenarios.FaultDeregister:
		rs := w.regions[c.regionIdx[f.Region]]
		svc := c.serviceIdx[f.Service]
		var live []*instance
		for _, in := range rs.bySvc[svc] {
			if in.registered {
				live = append(live, in)
			}
		}
		n := min(f.Count, len(live))
		label := fmt.Sprintf("%s in %s: %d", f.Service, rs.name, n)
		if dur > 0 {
			w.reregisterAfter(live[:n], dur, w.openSpan(f.Kind, label+", back after "+dur.String()))
		} else {
			w.instant(f.Kind, label)
		}
		for _, in := range live[:n] {
			in.deregVia = w.faultGateway(f)
			w.deregister(in)
		}
		w.quiet()
	case scenarios.FaultRedeploy:
		w.redeployFault(f) // fault_mutstore.go
	}
}

// netFault opens a network fault's span and, with For, undoes it then
// (unless a heal came first).
func (w *world) netFault(kind, label string, dur time.Duration, undo func()) {
	sp := w.openSpan(kind, label)
	w.netChanged()
	if dur <= 0 {
		return
	}
	gen := w.healGen
	w.after(dur, func() {
		if w.healGen == gen {
			undo()
			w.netChanged()
		}
		w.closeSpan(sp)
		w.quiet()
	})
}

func (w *world) targetGateways(f *scenarios.Fault) []*gateway {
	if f.Gateway != "" {
		return []*gateway{w.gwByName[f.Gateway]}
	}
	return w.regions[w.cfg.regionIdx[f.Region]].gateways
}

func gatewayLabel(gws []*gateway) string {
	var s []string
	for _, g := range gws {
		s = append(s, g.name)
	}
	return strings.Join(s, " ")
}

func (w *world) allRunning(label string) bool {
	for _, n := range strings.Fields(label) {
		if g := w.gwByName[n]; g != nil && !g.running {
			return false
		}
	}
	return true
}

// gatewaysChanged re-derives what depends on which gateways run.
func (w *world) gatewaysChanged() {
	w.oracleGateways()
	w.recomputeMembership()
	for _, rs := range w.regions {
		w.checkConvergence(rs)
	}
}

func (w *world) restart(gws []*gateway) {
	w.oracleGateways()
	for _, g := range gws {
		if g.running {
			continue
		}
		if err := g.start(); err != nil {
			panic(err) // the config was valid at the first start
		}
		w.noteStarted(g)
		w.log.event(w.now, "gateway", kv("gateway", g.name), kv("phase", "start"))
	}
	w.recomputeMembership()
	for _, g := range gws {
		g.peersChanged()
		g.fed.Kick()
	}
	w.quiet()
}

func (w *world) storeUp(rs *regionSim) {
	rs.down, rs.slow, rs.flaky = false, 0, false
	rs.store.Fail(nil)
	rs.store.LoseReplies(false)
	w.oracleStore(rs)
	for _, g := range rs.gateways {
		g.notifyStore()
	}
	w.quiet()
}

func pickCount(f *scenarios.Fault, total, dflt int) int {
	n := f.Count
	if n == 0 && f.Fraction > 0 {
		n = int(math.Ceil(f.Fraction * float64(total)))
	}
	if n == 0 {
		n = dflt
	}
	return min(n, total)
}

// instancesFault makes the first Count (or Fraction) healthy instances of
// the service in the region fail, flap or slow down.
func (w *world) instancesFault(f *scenarios.Fault) {
	c := w.cfg
	rs := w.regions[c.regionIdx[f.Region]]
	svc := c.serviceIdx[f.Service]
	var ok []*instance
	registered := 0
	for _, in := range rs.bySvc[svc] {
		if in.registered {
			registered++
			if in.state == stateUp {
				ok = append(ok, in)
			}
		}
	}
	n := min(pickCount(f, registered, 0), len(ok))
	picked := ok[:n]
	label := fmt.Sprintf("%s in %s: %d", f.Service, rs.name, n)
	sp := w.openSpan(f.Kind, label)
	gens := make([]int, n)
	for i, in := range picked {
		in := in
		w.changeTruth(in, func() {
			in.faultGen++
			switch f.Kind {
			case scenarios.FaultInstancesFail:
				in.state = stateFailed
			case scenarios.FaultInstancesSlow:
				in.state, in.slow = stateSlow, f.Latency.D()
			case scenarios.FaultInstancesFlap:
				in.state, in.flapDown, in.flapPeriod = stateFlap, true, f.Period.D()
			}
		})
		gens[i] = in.faultGen
		if f.Kind == scenarios.FaultInstancesFlap {
			w.flap(in, in.faultGen)
		}
	}
	w.healAfter(f, picked, gens, sp)
}

func (w *world) flap(in *instance, gen int) {
	w.after(in.flapPeriod, func() {
		if in.faultGen != gen || in.state != stateFlap {
			return
		}
		w.changeTruth(in, func() { in.flapDown = !in.flapDown })
		w.flap(in, gen)
	})
}

// healAfter heals, once the fault's For has passed, the picked instances
// no later fault took over (their faultGen is still gens[i]), and closes
// the fault's span. A fault without For lasts.
func (w *world) healAfter(f *scenarios.Fault, picked []*instance, gens []int, sp int) {
	if dur := f.For.D(); dur > 0 {
		w.after(dur, func() {
			var still []*instance
			for i, in := range picked {
				if in.faultGen == gens[i] {
					still = append(still, in)
				}
			}
			w.healInstances(still)
			w.closeSpan(sp)
			w.quiet()
		})
	}
}

// liveInstances returns the registered instances of service svc in rs.
func liveInstances(rs *regionSim, svc int) []*instance {
	var live []*instance
	for _, in := range rs.bySvc[svc] {
		if in.registered {
			live = append(live, in)
		}
	}
	return live
}

func (w *world) healInstances(ins []*instance) {
	for _, in := range ins {
		w.changeTruth(in, func() {
			in.faultGen++
			in.state, in.slow, in.flapDown = stateUp, 0, false
		})
	}
}

// register registers an instance through a running gateway of its region,
// retrying every 2s (at most 30 times) while that fails. It is
// acknowledged once the store's Put succeeded.
func (w *world) register(in *instance, attempt int) {
	w.registerVia(in, attempt, func(next int) { w.register(in, next) }, nil, func(g *gateway, retry func(string)) {
		reg, err := in.registration(w, in.port()) // the handler's decoding (fault_mutstore.go)
		if err != nil {
			w.registerRefused(in.rs, in.key, err)
			return
		}
		ch, err := g.registrar.Register(w.ctx, reg, "")
		if err != nil {
			retry(err.Error())
			return
		}
		w.acknowledge(in, ch, false)
		w.committed(in.rs, ch, true)
	})
}

// registerVia sends a registration of in through a running gateway of its
// region, picked at random, which send gets once the request has arrived
// there. Until it is sent, or when send calls retry, it tries again in 2s
// (again, with the next attempt number) while attempt < 30; then the
// registration counts as failed and gaveUp (when not nil) runs.
func (w *world) registerVia(in *instance, attempt int, again func(next int), gaveUp func(), send func(g *gateway, retry func(why string))) {
	rs := in.rs
	retry := func(why string) {
		if attempt < 30 {
			w.after(2*time.Second, func() { again(attempt + 1) })
			return
		}
		w.m.registerFail++
		w.log.event(w.now, "register_failed", kv("region", rs.name), kv("instance", in.key.String()), kv("error", why))
		if gaveUp != nil {
			gaveUp()
		}
	}
	gws := rs.runningGateways()
	if len(gws) == 0 {
		retry(errNoGateway.Error())
		return
	}
	g := gws[w.stormRng.IntN(len(gws))]
	inc := g.inc
	w.after(w.cfg.net.intra+rs.slow, func() {
		if !g.running || g.inc != inc {
			retry("gateway went down")
			return
		}
		send(g, retry)
	})
}

// acknowledge records a registration whose Put succeeded.
func (w *world) acknowledge(in *instance, ch region.Change, initial bool) {
	rs := in.rs
	w.changeTruth(in, func() {
		in.registered = true
		in.ackAt = w.now
	})
	rs.acked[in.key] = ackRec{version: ch.Version, at: w.now}
	if !initial {
		if len(w.regions) > 1 { // with one region there is nowhere to converge to
			rs.pending = append(rs.pending, pendingReg{version: ch.Version, at: w.now})
		}
		w.m.registrations++
		w.log.event(w.now, "register", kv("region", rs.name), kv("instance", in.key.String()), kvInt("version", int64(ch.Version)))
	}
	w.startHeartbeats(in)
}

// deregister removes an instance through a running gateway of its region;
// the instance stops with it. Like a client, it asks again (every 2s, for
// up to 5 minutes) while the outcome is unknown; a retry that finds the
// instance gone means the first delete was applied.
func (w *world) deregister(in *instance) { w.deregisterTry(in, 0) }

func (w *world) deregisterTry(in *instance, attempt int) {
	rs := in.rs
	gws := rs.runningGateways()
	if len(gws) == 0 {
		w.log.event(w.now, "deregister_failed", kv("region", rs.name), kv("instance", in.key.String()), kv("error", errNoGateway.Error()))
		return
	}
	g := w.deregisterGateway(in, gws)
	inc := g.inc
	w.after(w.cfg.net.intra+rs.slow, func() {
		if !g.running || g.inc != inc {
			w.log.event(w.now, "deregister_failed", kv("region", rs.name), kv("instance", in.key.String()), kv("error", "gateway went down"))
			return
		}
		ch, err := g.registrar.Deregister(w.ctx, in.key, "")
		if errors.Is(err, region.ErrNotFound) && attempt > 0 {
			if in.registered {
				w.unregistered(in) // the lost attempt was applied
			}
			return // (truthStore recorded it already)
		}
		if errors.Is(err, region.ErrOutcomeUnknown) && attempt < 150 {
			w.after(2*time.Second, func() { w.deregisterTry(in, attempt+1) })
			return
		}
		if err != nil {
			w.log.event(w.now, "deregister_failed", kv("region", rs.name), kv("instance", in.key.String()), kv("error", err.Error()))
			return
		}
		w.committed(rs, ch, true)
	})
}
