package sim

import (
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/scenarios"
)

// The availability oracle (invariant live_region_used): the safety
// invariants catch traffic sent where it must not go; this one catches
// traffic not sent where it should. While the world around a stream has
// been steady for longer than oracleSettle — no instance of its service
// changed (in truth or in the registry) in any region its policy allows,
// no reachability flip between the caller and those regions, no store
// fault, no gateway start or crash — and one allowed region is reachable
// with at least 3/4 of its instances of the service really serving (so its
// overprovisioned availability reaches 100% and no panic is due), the
// share of the stream's lookups that got only dead instances must stay
// under oracleEpsilon. Checked at the end of the run for every stream with
// at least oracleMinLookups such lookups.
const (
	oracleEpsilon    = 0.01
	oracleMinLookups = 100
	oracleHealthy    = 0.75 // serving share that makes a region a sure place to go
)

// oracleState is what the oracle keeps.
type oracleState struct {
	settle  time.Duration
	changed [][]time.Duration // [region][service]: last change of the service's instances there
	store   []time.Duration   // [region]: last store fault start or end
	gwAt    time.Duration     // last gateway start or crash anywhere
	streams []oracleStream
}

type oracleStream struct {
	covered, dead int64
	first         time.Duration // first dead covered lookup (-1: none)
	firstWhy      string
	firstDetail   string
}

func (w *world) oracle() *oracleState {
	o := &w.ext.oracle
	if o.changed == nil {
		o.changed = square[time.Duration](len(w.regions))
		for i := range o.changed {
			o.changed[i] = make([]time.Duration, len(w.cfg.services))
			for j := range o.changed[i] {
				o.changed[i][j] = never
			}
		}
		o.store = make([]time.Duration, len(w.regions))
		for i := range o.store {
			o.store[i] = never
		}
		o.gwAt = never
		o.streams = make([]oracleStream, len(w.cfg.traffic))
		for i := range o.streams {
			o.streams[i].first = -1
		}
		o.settle = w.oracleSettle()
	}
	return o
}

// oracleSettle is how long the world must have been steady: the
// membership detection bound, a check's damping at the longest interval,
// then an anti-entropy period and a fetch timeout for the news to reach
// other regions, and a few seconds of slack.
func (w *world) oracleSettle() time.Duration {
	var iv time.Duration
	damp := 1
	for _, s := range w.cfg.services {
		iv = max(iv, s.check.Interval.Std())
		damp = max(damp, s.check.FailuresBeforeCritical+s.check.SuccessBeforePassing)
	}
	cc := w.coreConfig(w.gateways[0])
	return w.detectionBound() + time.Duration(damp+1)*iv + cc.AntiEntropy + cc.FetchTimeout + 5*time.Second
}

// oracleTruth notes a change of an instance of service svc in region rs
// (serving or not, or its registry record).
func (w *world) oracleTruth(rs *regionSim, svc int) { w.oracle().changed[rs.idx][svc] = w.now }

// oracleStore notes a store fault starting or ending in region rs.
func (w *world) oracleStore(rs *regionSim) { w.oracle().store[rs.idx] = w.now }

// oracleGateways notes a gateway starting or crashing.
func (w *world) oracleGateways() { w.oracle().gwAt = w.now }

// oracleLookup judges one lookup that a gateway of the caller's region routed.
func (w *world) oracleLookup(s *stream, m *routeMemo, allDead bool) {
	o := w.oracle()
	d := o.settle
	if w.now-o.gwAt <= d {
		return
	}
	from := s.from.idx
	svc := s.cfg.service
	sure := -1
	for _, rs := range w.regions {
		r := rs.idx
		if !allowedBy(&s.cfg.policy, s.from.name, rs.name) {
			continue
		}
		if w.now-o.changed[r][svc] <= d || w.now-o.store[r] <= d || rs.down || !w.reachLonger(from, r, d) && !w.cutLonger(from, r, d) {
			return // not steady
		}
		if sure < 0 && w.reachLonger(from, r, d) && rs.servingShare(svc) >= oracleHealthy {
			sure = r
		}
	}
	if sure < 0 {
		return
	}
	st := &o.streams[s.idx]
	st.covered++
	if !allDead {
		return
	}
	st.dead++
	if st.first < 0 {
		st.first = w.now
		st.firstWhy = m.d.Explanation
		st.firstDetail = fmt.Sprintf("%s reachable with %d/%d instances serving", w.regions[sure].name,
			w.regions[sure].alive[svc], w.regions[sure].registeredCount(svc))
	}
}

// servingShare is the share of the service's registered instances in the
// region that really serve (0 with none registered).
func (rs *regionSim) servingShare(svc int) float64 {
	n := rs.registeredCount(svc)
	if n == 0 {
		return 0
	}
	return float64(rs.alive[svc]) / float64(n)
}

func (rs *regionSim) registeredCount(svc int) int {
	n := 0
	for _, in := range rs.bySvc[svc] {
		if in.registered {
			n++
		}
	}
	return n
}

// oracleNote says how many lookups the oracle judged.
func (w *world) oracleNote() string {
	n, dead := w.oracleCounts()
	return fmt.Sprintf("%d lookups judged (steady for %s), %d dead", n, fmtDur(w.oracle().settle), dead)
}

// oracleCounts returns the lookups the oracle judged and the dead ones.
func (w *world) oracleCounts() (judged, dead int64) {
	for _, st := range w.oracle().streams {
		judged += st.covered
		dead += st.dead
	}
	return judged, dead
}

// oracleFinish records a live_region_used violation for every stream whose
// dead share over the steady stretches exceeds the bound.
func (w *world) oracleFinish() {
	o := w.oracle()
	for i, st := range o.streams {
		if st.covered < oracleMinLookups || float64(st.dead) <= oracleEpsilon*float64(st.covered) {
			continue
		}
		t := &w.cfg.traffic[i]
		at := w.now
		w.now = st.first // the violation is marked where it started
		w.m.violateWhy(InvLiveRegion, fmt.Sprintf("lookups for %s from %s (%s policy): %d of %d (%.2f%%) got only dead instances while the world had been steady for %s and an allowed region was a sure place to go; first at %s: %s",
			w.cfg.services[t.service].name, w.regions[t.from].name, policyName(&t.policy), st.dead, st.covered,
			100*float64(st.dead)/float64(st.covered), fmtDur(o.settle), fmtDur(st.first), st.firstDetail), st.firstWhy)
		w.now = at
	}
}

func policyName(p *failover.Policy) string {
	if p.Mode == "" {
		return string(failover.ModeLocal)
	}
	return string(p.Mode)
}

// storeFault reports whether the fault kind is a store fault.
func storeFault(kind string) bool {
	switch kind {
	case scenarios.FaultStoreDown, scenarios.FaultStoreFlaky, scenarios.FaultStoreSlow, scenarios.FaultStoreUp, scenarios.FaultStoreWipe:
		return true
	}
	return false
}
