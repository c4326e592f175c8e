package sim

import "github.com/meridian-sd/meridian/scenarios"

// The notify_lost fault: one gateway's subscription to its region's store
// notifications is lost, so its cache follows the store only by its
// periodic catch-up read (region.CacheOptions.CatchUp) and lags changes the
// store already served to others (a fetch or a watch is answered from the
// store, ahead of every cache).

// applyResetFault carries out the fault kinds of this file; it reports
// whether f was one of them.
func (w *world) applyResetFault(f *scenarios.Fault) bool {
	if f.Kind != scenarios.FaultNotifyLost {
		return false
	}
	if w.notifyLost == nil {
		w.notifyLost = make([]int, len(w.gateways))
	}
	t := w.gwByName[f.Gateway]
	w.notifyLost[t.idx]++
	sp := w.openSpan(f.Kind, f.Gateway)
	if dur := f.For.D(); dur > 0 {
		w.after(dur, func() {
			w.notifyLost[t.idx]--
			w.closeSpan(sp)
			w.quiet()
		})
	}
	return true
}

// lostNotify reports whether g's store notifications are lost
// (notify_lost): gateway.notifyStore drops them.
func (w *world) lostNotify(g *gateway) bool {
	return w.notifyLost != nil && w.notifyLost[g.idx] > 0
}
