package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// The faults of the federation's sync paths: log_trimmed (a sync
// endpoint that serves a delta with a gap), watch_unsupported (gateways of
// a release without the push path) and gateway_refused (one gateway's
// certificate misissued).

// mutfedState is what those faults keep, per region (counts, so that
// overlapping faults nest).
type mutfedState struct {
	trimmed []int   // [region]: log_trimmed in force
	noWatch []int   // [region]: watch_unsupported in force
	refused [][]int // [from region][gateway idx]: gateway_refused in force
	resets  []int   // [region]: region_reset faults so far
}

func (w *world) mutfed() *mutfedState {
	s := &w.mf
	if s.trimmed == nil {
		s.trimmed = make([]int, len(w.regions))
		s.noWatch = make([]int, len(w.regions))
		s.resets = make([]int, len(w.regions))
		s.refused = square[int](max(len(w.regions), len(w.gateways)))
	}
	return s
}

// prepareMutfedFault checks the references of a fault of this file.
func (c *config) prepareMutfedFault(f string, ft scenarios.Fault) error {
	switch ft.Kind {
	case scenarios.FaultLogTrimmed, scenarios.FaultWatchUnsupported, scenarios.FaultStoreRestart, scenarios.FaultRegionReset:
		if ft.Region == "" {
			return fmt.Errorf("%s.region: required for %s", f, ft.Kind)
		}
		_, err := c.region(f+".region", ft.Region)
		return err
	case scenarios.FaultGatewayRefused:
		from, err := c.region(f+".from", ft.From)
		if err != nil {
			return err
		}
		reg, _, err := c.gateway(ft.Gateway)
		if err != nil {
			return fmt.Errorf("%s.gateway: %w", f, err)
		}
		if reg == from {
			return fmt.Errorf("%s.gateway: %s is a gateway of %s itself", f, ft.Gateway, ft.From)
		}
	}
	return nil
}

// applyMutfedFault carries out the fault kinds of this file; it reports
// whether f was one of them.
func (w *world) applyMutfedFault(f *scenarios.Fault) bool {
	c := w.cfg
	var counter *int
	var label string
	switch f.Kind {
	case scenarios.FaultLogTrimmed:
		ri := c.regionIdx[f.Region]
		counter, label = &w.mutfed().trimmed[ri], f.Region
	case scenarios.FaultWatchUnsupported:
		ri := c.regionIdx[f.Region]
		counter, label = &w.mutfed().noWatch[ri], f.Region
	case scenarios.FaultStoreRestart:
		w.storeRestart(w.regions[c.regionIdx[f.Region]])
		return true
	case scenarios.FaultRegionReset:
		w.regionReset(w.regions[c.regionIdx[f.Region]], f.For.D())
		return true
	case scenarios.FaultGatewayRefused:
		t := w.gwByName[f.Gateway]
		counter, label = &w.mutfed().refused[c.regionIdx[f.From]][t.idx], f.From+" refuses "+f.Gateway
	default:
		return false
	}
	*counter++
	sp := w.openSpan(f.Kind, label)
	if dur := f.For.D(); dur > 0 {
		w.after(dur, func() {
			*counter--
			w.closeSpan(sp)
			w.quiet()
		})
	}
	return true
}

// syncStore is the store gateway t's sync endpoint reads: the region's,
// or while log_trimmed is in force one whose change log reach check is
// wrong (trimmedStore).
func (w *world) syncStore(t *gateway) region.Store {
	if w.mf.trimmed != nil && w.mf.trimmed[t.rs.idx] > 0 {
		return trimmedStore{Store: t.rs.store}
	}
	return t.rs.store
}

// trimmedStore answers ChangesSince for a version its change log no longer
// reaches with the changes the log still holds (they start after a gap)
// instead of "reload": a store whose reach check is wrong.
type trimmedStore struct{ region.Store }

// ChangesSince implements region.Store.
func (s trimmedStore) ChangesSince(ctx context.Context, since uint64, n int) ([]region.Change, bool, error) {
	chs, ok, err := s.Store.ChangesSince(ctx, since, n)
	if err != nil || ok {
		return chs, ok, err
	}
	snap, err := s.Store.Snapshot(ctx)
	if err != nil || since >= snap.Version {
		return chs, ok, nil // the store went back (data loss): reload, as it should
	}
	// The smallest version from which the log still reaches: the log's
	// first entry is one above it.
	lo, hi := since, snap.Version // ChangesSince(lo) does not reach, ChangesSince(hi) does
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if _, ok, err := s.Store.ChangesSince(ctx, mid, 1); err == nil && ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return s.Store.ChangesSince(ctx, hi, n)
}

// noWatches reports whether t's release holds no watches
// (watch_unsupported).
func (w *world) noWatches(t *gateway) bool {
	return w.mf.noWatch != nil && w.mf.noWatch[t.rs.idx] > 0
}

// errNoWatches is what a watcher makes of an answer without the watch
// header (httpsync.WatchWith).
func errNoWatches(t *gateway) error {
	return fmt.Errorf("gateway %s does not hold watches (no %s header: an older version?)", t.addr, federation.WatchHeader)
}

// gatewayRefused is g's peer check of gateway t (gateway_refused): an
// error while g's region refuses t.
func (w *world) gatewayRefused(g, t *gateway, regionName string) error {
	if w.mf.refused == nil || w.mf.refused[g.rs.idx][t.idx] == 0 {
		return nil
	}
	w.ext.peerRefused++
	return &peerRefusedError{addr: t.addr, region: regionName, names: "gateway.misissued." + t.name + ".meridian"}
}

// checkServed checks an answer of gateway t's sync endpoint against what
// t's own catalog has already reached in this incarnation (its cache
// follows the region's store and never goes back; local lookups were
// answered from it): a snapshot behind that would move other regions'
// replicas back, so serving one is a version_monotonic violation, whether
// or not the client refuses it.
func (w *world) checkServed(t *gateway, ans any) {
	full, ok := ans.(federation.FullResponse)
	if !ok {
		return
	}
	if top, seen := t.lastVer[t.rs.name]; seen && full.Version < top {
		w.m.violate(InvVersionMonotonic, fmt.Sprintf("gateway %s served a snapshot of %s at v%d, behind v%d its own catalog had reached",
			t.name, t.rs.name, full.Version, top))
	}
}

// storeRestart is the store_restart fault: the region's Redis restarts
// without persistence (its data is gone, as store_wipe) and nothing tells
// the gateways: their pub/sub subscriptions reconnect silently and no
// write publishes anything, so each cache finds out at its next catch-up
// read (CacheOptions.CatchUp) or at the next write's notification.
func (w *world) storeRestart(rs *regionSim) {
	w.oracleStore(rs)
	rs.mem.Wipe()
	w.instant(scenarios.FaultStoreRestart, rs.name)
	w.quiet()
}

// regionReset is the region_reset fault: the region's gateways crash, its
// store loses everything, and its registrations are gone (in truth: they
// are no longer acknowledged, and what was pending convergence never
// will). After d the gateways start again over the empty store (their
// caches load it: nobody holds the old catalog to write back) and, a few
// seconds later, every instance that was registered registers again.
func (w *world) regionReset(rs *regionSim, d time.Duration) {
	sp := w.openSpan(scenarios.FaultRegionReset, rs.name)
	gws := rs.gateways
	for _, g := range gws {
		g.crash(false)
	}
	w.gatewaysChanged()
	w.oracleStore(rs)
	rs.mem.Wipe()
	w.mutfed().resets[rs.idx]++
	var lost []*instance
	for _, ins := range rs.bySvc {
		for _, in := range ins {
			if in.registered {
				w.unregistered(in)
				in.deregAt = -never // see below
				delete(rs.acked, in.key)
				lost = append(lost, in)
			}
		}
	}
	rs.pending, rs.commits = nil, nil
	w.after(d, func() {
		// Nobody outside the region can learn of the loss before its
		// gateways are back (until then its gateways look alive until
		// membership sees them fail, then the region is unreachable and
		// its replicas read stale; the instances' processes still run):
		// the instances count as deregistered from now on, for the
		// staleness bound (staleness_stated).
		for _, in := range lost {
			if !in.registered {
				in.deregAt = w.now
			}
		}
		w.restart(gws)
		w.closeSpan(sp)
		w.after(5*time.Second, func() {
			for _, in := range lost {
				if !in.registered {
					w.register(in, 0)
				}
			}
			w.quiet()
		})
	})
}

// followsReset reports whether gateway g's view of the region going back
// from prev follows a region_reset: prev belongs to a life of the region
// that is gone, since g saw it before the region's store, since its last
// reset, committed that version (if it has at all).
func (w *world) followsReset(g *gateway, regionName string, prev uint64) bool {
	rs := w.regionByName(regionName)
	if rs == nil || w.mf.resets == nil || w.mf.resets[rs.idx] == 0 || prev == 0 {
		return false
	}
	at, ok := rs.behindSince(prev - 1) // when the new life committed prev
	return !ok || g.lastAt[regionName] < at
}
