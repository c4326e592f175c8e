package sim

import (
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// extState is what the faults and metrics of this file keep: peer
// refusals in force and the counters behind snapshot_syncs,
// stale_demoted and peer_refused.
type extState struct {
	// refused[a][b] > 0: region a's gateways refuse region b's gateways as
	// sources of b's catalog (peer_refused; counts overlapping faults).
	refused [][]int

	snapshotSyncs int64
	staleDemoted  int64
	peerRefused   int64

	oracle oracleState // oracles.go

	// startedAt is when each gateway last started (0: at the start of the run).
	startedAt []time.Duration
}

// noteStarted records that gateway g (re)started now.
func (w *world) noteStarted(g *gateway) {
	if w.ext.startedAt == nil {
		w.ext.startedAt = make([]time.Duration, len(w.gateways))
	}
	w.ext.startedAt[g.idx] = w.now
}

// gatewayUpLonger reports whether a gateway of region ri has been running
// for longer than d: a region with none cannot be seen reachable by
// anyone (its gateways' crash looks like a cut), so no invariant may
// expect traffic to go there rather than to another unreachable region.
func (w *world) gatewayUpLonger(ri int, d time.Duration) bool {
	for _, g := range w.regions[ri].gateways {
		var at time.Duration
		if w.ext.startedAt != nil {
			at = w.ext.startedAt[g.idx]
		}
		if g.running && w.now-at > d {
			return true
		}
	}
	return false
}

// peerRefusedError is what a gateway's per-region peer check returns for a
// response from a gateway whose certificate does not name the region it
// serves (meridiantls.Gateway.CheckPeer; its PeerError has the same
// PeerRefused marker, which the federator's logging looks for).
type peerRefusedError struct {
	addr, region, names string
}

func (e *peerRefusedError) Error() string {
	return fmt.Sprintf("gateway %s: certificate does not name %s (gateway.%s.meridian); it names %s",
		e.addr, e.region, e.region, e.names)
}

// PeerRefused marks the error as a refusal by the peer check.
func (e *peerRefusedError) PeerRefused() bool { return true }

// peerCheck is the fetching gateway g's check of the answer of gateway t
// for region regionName: an error while a peer_refused fault makes g's
// region refuse t's. It runs on the client, after the response arrived.
func (w *world) peerCheck(g, t *gateway, regionName string) error {
	if err := w.gatewayRefused(g, t, regionName); err != nil {
		return err
	}
	if w.ext.refused == nil || w.ext.refused[g.rs.idx][t.rs.idx] == 0 {
		return nil
	}
	w.ext.peerRefused++
	return &peerRefusedError{addr: t.addr, region: regionName, names: "gateway.misissued." + t.rs.name + ".meridian"}
}

// noteSync counts what a delivered sync answer was: a snapshot that
// answered a fetch since a version is a gap recovery (the change log no
// longer reached back, or the store lost data).
func (w *world) noteSync(since uint64, full bool) {
	if full && since > 0 {
		w.ext.snapshotSyncs++
	}
}

// applyMoreFault carries out the fault kinds of this file; it reports
// whether f was one of them.
func (w *world) applyMoreFault(f *scenarios.Fault) bool {
	c := w.cfg
	switch f.Kind {
	case scenarios.FaultPeerRefused:
		a, b := c.regionIdx[f.From], c.regionIdx[f.To]
		if w.ext.refused == nil {
			w.ext.refused = square[int](len(w.regions))
		}
		w.ext.refused[a][b]++
		sp := w.openSpan(f.Kind, f.From+" refuses "+f.To)
		if dur := f.For.D(); dur > 0 {
			w.after(dur, func() {
				w.ext.refused[a][b]--
				w.closeSpan(sp)
				w.quiet()
			})
		}
		return true
	case scenarios.FaultProbeBlocked:
		rs := w.regions[c.regionIdx[f.Region]]
		svc := c.serviceIdx[f.Service]
		g := w.gwByName[f.Gateway]
		live := liveInstances(rs, svc)
		n := pickCount(f, len(live), 0)
		picked := live[:n]
		sp := w.openSpan(f.Kind, fmt.Sprintf("%s in %s: %d, probes from %s", f.Service, rs.name, n, g.name))
		for _, in := range picked {
			w.changeTruth(in, func() { in.blockedBy = append(in.blockedBy, g.idx) })
		}
		if dur := f.For.D(); dur > 0 {
			w.after(dur, func() {
				for _, in := range picked {
					w.changeTruth(in, func() { in.unblock(g.idx) })
				}
				w.closeSpan(sp)
				w.quiet()
			})
		}
		return true
	}
	return false
}

// reregisterAfter registers the deregistered instances again after d (a
// deregister fault with for): the same ids, as a redeployed process does.
func (w *world) reregisterAfter(ins []*instance, d time.Duration, sp int) {
	w.after(d, func() {
		for _, in := range ins {
			if !in.registered {
				w.register(in, 0)
			}
		}
		w.closeSpan(sp)
		w.quiet()
	})
}

// unblock removes one blocking of gateway gi's probes.
func (in *instance) unblock(gi int) {
	for i, x := range in.blockedBy {
		if x == gi {
			in.blockedBy = append(in.blockedBy[:i], in.blockedBy[i+1:]...)
			return
		}
	}
}

// probeBy is what gateway g's probe sent now sees: the instance's answer,
// or a timeout when a probe_blocked fault keeps g's probes from it.
func (in *instance) probeBy(w *world, g *gateway, timeout time.Duration) (region.ProbeResult, time.Duration) {
	for _, x := range in.blockedBy {
		if x == g.idx && in.registered {
			return region.ProbeResult{Status: region.StatusCritical, Output: probeTimeoutOutput}, timeout
		}
	}
	return in.probe(w, timeout)
}

// extMetric measures the metrics of this file for an expectation.
func (w *world) extMetric(e scenarios.Expectation) (float64, bool) {
	switch e.Metric {
	case scenarios.MetricSnapshotSyncs:
		return float64(w.ext.snapshotSyncs), true
	case scenarios.MetricStaleDemoted:
		return float64(w.ext.staleDemoted), true
	case scenarios.MetricPeerRefused:
		return float64(w.ext.peerRefused), true
	case scenarios.MetricDeregistered:
		return float64(w.m.deregistered), true
	}
	return 0, false
}

// registerInvalid sends the registration of a misconfigured client (port
// 0: nobody can dial it) through a running gateway of rs. It must be
// refused; one that is acknowledged is an invalid_refused violation, and
// is deleted again so that it does not haunt the rest of the run.
func (w *world) registerInvalid(rs *regionSim, svc, i int) {
	gws := rs.runningGateways()
	if len(gws) == 0 {
		return
	}
	g := gws[w.stormRng.IntN(len(gws))]
	ck := w.cfg.services[svc].check.WithDefaults()
	name := w.cfg.services[svc].name
	id := fmt.Sprintf("%s-%s-misconfigured-%d", name, rs.name, i)
	// Through the handler's decoding and validation, then the registrar.
	in, err := w.decodeRegistration(region.Registration{Address: "10.255.0.1", Port: 0, Check: &ck}, name, id)
	var ch region.Change
	if err == nil {
		ch, err = g.registrar.Register(w.ctx, in, "")
	}
	if err != nil {
		in = region.Instance{Service: name, ID: id}
		w.log.event(w.now, "register_refused", kv("region", rs.name), kv("instance", in.Key().String()), kv("error", err.Error()))
		return
	}
	w.m.violate(InvInvalidRefused, fmt.Sprintf("gateway %s acknowledged %s with port 0 at v%d", g.name, in.Key(), ch.Version))
	w.committed(rs, ch, false)
	if dch, derr := g.registrar.Deregister(w.ctx, in.Key(), ""); derr == nil {
		w.committed(rs, dch, false)
	}
}
