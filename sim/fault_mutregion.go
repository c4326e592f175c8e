package sim

import (
	"fmt"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// InvHeartbeatStored: a TTL heartbeat that a gateway acknowledges is in
// the store. Checked on the heartbeat that resumes an instance's
// heartbeats (the first one after it was down, which brings an instance
// whose TTL expired back to passing): when it is acknowledged, the store
// (the simulated world's registry, not the gateway's belief) must hold the
// status it carried. A gateway whose cache is behind the store (another
// gateway wrote meanwhile) cannot know better and is not blamed; one whose
// cache shows that the store does not hold the heartbeat's status must not
// acknowledge it (the write failed: the store is down).
const InvHeartbeatStored = "heartbeat_stored"

func init() { InvariantNames = append(InvariantNames, InvHeartbeatStored) }

// applyMutregionFault carries out the fault kinds of this file; it
// reports whether f was one of them.
func (w *world) applyMutregionFault(f *scenarios.Fault) bool {
	if f.Kind != scenarios.FaultInstancesOverload {
		return false
	}
	c := w.cfg
	rs := w.regions[c.regionIdx[f.Region]]
	svc := c.serviceIdx[f.Service]
	var live []*instance
	for _, in := range rs.bySvc[svc] {
		if in.registered {
			live = append(live, in)
		}
	}
	n := pickCount(f, len(live), 0)
	picked := live[:n]
	sp := w.openSpan(f.Kind, fmt.Sprintf("%s in %s: %d", f.Service, rs.name, n))
	gens := make([]int, n)
	for i, in := range picked {
		w.changeTruth(in, func() {
			in.faultGen++
			in.state, in.slow, in.flapDown = stateBusy, 0, false
		})
		gens[i] = in.faultGen
	}
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
	return true
}

// heartbeatAcked checks a heartbeat of in with status st that gateway g
// acknowledged (heartbeat_stored); resumed says it was the first sent
// after the instance was down.
func (w *world) heartbeatAcked(in *instance, g *gateway, resumed bool, st region.Status) {
	if !resumed || !in.registered || in.regStatus == st {
		return
	}
	var cached region.Instance
	var ok bool
	g.cache.Read(func(c *region.Catalog) { cached, ok = c.Get(in.key) })
	if !ok || cached.Status != in.regStatus {
		return // the gateway's cache is behind the store: it could not know
	}
	w.m.violate(InvHeartbeatStored, fmt.Sprintf("gateway %s acknowledged a %s heartbeat of %s while the store holds it %s (its cache says so too): the status was not written",
		g.name, st, in.key, in.regStatus))
}
