package sim

import (
	"context"
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
	live := liveInstances(rs, svc)
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
	w.healAfter(f, picked, gens, sp)
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

// faultGateway is the gateway a fault names (nil: none).
func (w *world) faultGateway(f *scenarios.Fault) *gateway {
	if f.Gateway == "" {
		return nil
	}
	return w.gwByName[f.Gateway]
}

// deregisterGateway picks the running gateway of gws that in's
// deregistration goes through: the one its deregister fault named while
// it runs, else one at random.
func (w *world) deregisterGateway(in *instance, gws []*gateway) *gateway {
	if g := in.deregVia; g != nil && g.running {
		return g
	}
	return gws[w.stormRng.IntN(len(gws))]
}

// viaGateway checks the gateway a deregister fault goes through (field
// path f): a gateway of the fault's region.
func (c *config) viaGateway(f string, ft *scenarios.Fault) error {
	reg, _, err := c.gateway(ft.Gateway)
	switch {
	case err != nil:
		return fmt.Errorf("%s.gateway: %w", f, err)
	case c.regions[reg].name != ft.Region:
		return fmt.Errorf("%s.gateway: %s is not a gateway of %s", f, ft.Gateway, ft.Region)
	}
	return nil
}

// restoreWatch is the store as a gateway's cache sees it, watched for
// restores: after a store data loss the cache writes its catalog back
// (Store.Restore). The restored catalog's version must be above every
// version of the region that any running gateway saw (its cache, its
// replica): else versions go back for readers (version_monotonic), judged
// by the store's own version, not the gateways' beliefs.
type restoreWatch struct {
	region.Store
	g *gateway
}

// Restore implements region.Store.
func (s restoreWatch) Restore(ctx context.Context, expect string, r region.RestoreRequest) (bool, error) {
	ok, err := s.Store.Restore(ctx, expect, r)
	if ok && err == nil {
		s.g.w.checkRestore(s.g)
	}
	return ok, err
}

// checkRestore checks the version of g's region's store right after g
// restored it.
func (w *world) checkRestore(g *gateway) {
	rs := g.rs
	snap, err := rs.mem.Snapshot(w.ctx)
	if err != nil {
		return
	}
	for _, o := range w.gateways {
		if !o.running {
			continue
		}
		seen, ok := o.lastVer[rs.name]
		if rep := o.core.Replica(rs.name); o.rs != rs && rep != nil {
			seen, ok = max(seen, rep.Version()), true
		}
		if ok && snap.Version < seen {
			w.m.violate(InvVersionMonotonic, fmt.Sprintf("gateway %s restored the store of %s at v%d, below v%d that gateway %s had seen: versions go back",
				g.name, rs.name, snap.Version, seen, o.name))
			return
		}
	}
}
