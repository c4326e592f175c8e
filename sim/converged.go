package sim

import (
	"fmt"
	"reflect"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// InvConverged: after healing and settling, every running gateway's view of
// every region (its cache for its own region, its replica for the others)
// is the region's store: the same version and the same instances, field for
// field. no_lost_ack only asks that acknowledged registrations be visible;
// this also catches views that kept what the store no longer has (a lost
// delete, a snapshot merged into old contents), hold a status the store
// does not, or skipped a change (a gap applied).
const InvConverged = "replicas_converged"

// checkConverged runs with checkLostAcks, under the same settle conditions.
func (w *world) checkConverged() {
	views := 0
	defer func() { w.m.convNote = fmt.Sprintf("%d (gateway, region) views compared with the stores", views) }()
	for _, src := range w.regions {
		if len(src.runningGateways()) == 0 {
			continue
		}
		truth, err := src.store.Snapshot(w.ctx)
		if err != nil {
			continue // the store is failing: nothing to compare with
		}
		want := make(map[region.Key]region.Instance, len(truth.Instances))
		for _, in := range truth.Instances {
			want[in.Key()] = in
		}
		for _, g := range w.gateways {
			if !g.running {
				continue
			}
			var cat *region.Catalog
			if g.rs == src {
				g.cache.Read(func(c *region.Catalog) { cat = c })
			} else if rep := g.core.Replica(src.name); rep != nil {
				cat = rep.Catalog
			}
			if cat == nil {
				continue // no replica at all: no_lost_ack reports what it misses
			}
			views++
			if why := diffCatalog(cat, truth.Version, want); why != "" {
				w.m.violate(InvConverged, fmt.Sprintf("gateway %s: its view of %s differs from the store after settling: %s", g.name, src.name, why))
			}
		}
	}
}

// diffCatalog describes the first difference between cat and the store's
// catalog (version v, instances want), or returns "".
func diffCatalog(cat *region.Catalog, v uint64, want map[region.Key]region.Instance) string {
	if cat.Version() != v {
		return fmt.Sprintf("it holds v%d, the store v%d", cat.Version(), v)
	}
	all := cat.All()
	for _, in := range all {
		st, ok := want[in.Key()]
		if !ok {
			return fmt.Sprintf("%s is not in the store (kept after a delete?)", in.Key())
		}
		if !sameInstance(in, st) {
			return fmt.Sprintf("%s differs: status %s, index %d; the store has status %s, index %d",
				in.Key(), in.Status, in.ModifyIndex, st.Status, st.ModifyIndex)
		}
	}
	if len(all) != len(want) {
		return fmt.Sprintf("it holds %d instances, the store %d", len(all), len(want))
	}
	return ""
}

func sameInstance(a, b region.Instance) bool {
	if !a.RegisteredAt.Equal(b.RegisteredAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.RegisteredAt, a.UpdatedAt, b.RegisteredAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
