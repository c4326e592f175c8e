package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// metricsState accumulates what a run measures.
type metricsState struct {
	w *world

	lookups, answered, deadOnly, unreachableSent int64
	missedLive                                   int64
	perStream                                    []streamAcc

	step    time.Duration
	buckets [][]bucketAcc // [region][bucket]
	minute  []bucketAcc   // per region, this minute

	hasTraffic [][]bool // [region][service]
	outages    []Failover

	convergence []convSample

	syncBytes                    []int64 // per fetching region
	syncFailedBy                 []int64 // per fetching region
	statusWritesBy               []int64 // per region
	syncs, fullSyncs, syncFailed int64
	watches, watchFailed         int64 // push path: answers applied, watches failed
	statusWrites                 int64
	registrations, registerFail  int64
	deregistered, memberEvents   int64
	routes                       int64

	// TTL heartbeats forwarded to their check's owner, and not taken.
	heartbeatsForwarded, heartbeatFailed int64

	viol       map[string]*violAcc
	violAt     []ViolationMark
	lostNote   string
	convNote   string // replicas_converged: what was compared
	lostCheck  bool
	lostChecks int
}

type streamAcc struct {
	lookups, answered, deadOnly, failover, unreach int64
}

type bucketAcc struct {
	lookups, answered, deadOnly int64
}

type convSample struct {
	region int
	d      time.Duration
}

type violAcc struct {
	count    int
	examples []Violation
}

func newMetricsState(w *world) *metricsState {
	c := w.cfg
	m := &metricsState{w: w, perStream: make([]streamAcc, len(c.traffic)), viol: map[string]*violAcc{},
		syncBytes: make([]int64, len(c.regions)), syncFailedBy: make([]int64, len(c.regions)), statusWritesBy: make([]int64, len(c.regions)), minute: make([]bucketAcc, len(c.regions))}
	m.step = timelineStep(c.duration)
	nb := int((c.duration + m.step - 1) / m.step)
	m.buckets = make([][]bucketAcc, len(c.regions))
	for i := range m.buckets {
		m.buckets[i] = make([]bucketAcc, nb)
	}
	m.hasTraffic = make([][]bool, len(c.regions))
	for i := range m.hasTraffic {
		m.hasTraffic[i] = make([]bool, len(c.services))
	}
	for _, t := range c.traffic {
		m.hasTraffic[t.from][t.service] = true
	}
	for _, name := range InvariantNames {
		m.viol[name] = &violAcc{}
	}
	return m
}

// timelineStep picks about 240 buckets, in whole seconds.
func timelineStep(d time.Duration) time.Duration {
	s := (d / 240).Round(time.Second)
	return max(s, time.Second)
}

func (m *metricsState) lookup(s *stream, g *gateway, _ int, alive, allDead bool) {
	w := m.w
	m.lookups++
	acc := &m.perStream[s.idx]
	acc.lookups++
	b := min(int(w.now/m.step), len(m.buckets[s.from.idx])-1)
	bk := &m.buckets[s.from.idx][b]
	bk.lookups++
	mn := &m.minute[s.from.idx]
	mn.lookups++
	if alive {
		m.answered++
		acc.answered++
		bk.answered++
		mn.answered++
	}
	if !alive && !allDead {
		m.missedLive++
	}
	if allDead {
		m.deadOnly++
		acc.deadOnly++
		bk.deadOnly++
		mn.deadOnly++
	}
}

// failoverServed records a lookup answered by another region's live instance.
func (m *metricsState) failoverServed(s *stream) {
	m.perStream[s.idx].failover++
	rs := s.from
	if o := rs.outage[s.cfg.service]; o > 0 {
		f := &m.outages[o-1]
		if !f.Served && f.Time == 0 {
			f.Served, f.Time = true, m.w.now-f.Start
		}
	}
}

// aliveChanged tracks local outages: every instance of a service in a region
// with traffic dead.
func (m *metricsState) aliveChanged(rs *regionSim, svc, before, after int) {
	w := m.w
	if !m.hasTraffic[rs.idx][svc] {
		return
	}
	switch {
	case before > 0 && after == 0 && rs.outage[svc] == 0:
		m.outages = append(m.outages, Failover{Region: rs.name, Service: w.cfg.services[svc].name, Start: w.now})
		rs.outage[svc] = len(m.outages)
		w.log.event(w.now, "outage", kv("region", rs.name), kv("service", w.cfg.services[svc].name), kv("phase", "start"))
	case before == 0 && after > 0 && rs.outage[svc] > 0:
		f := &m.outages[rs.outage[svc]-1]
		if !f.Served {
			f.Time = w.now - f.Start
		}
		rs.outage[svc] = 0
		w.log.event(w.now, "outage", kv("region", rs.name), kv("service", w.cfg.services[svc].name), kv("phase", "end"))
	}
}

// violate records a breach of an invariant.
func (m *metricsState) violate(inv, detail string) { m.violateWhy(inv, detail, "") }

// violateWhy records a breach of an invariant with the router's own
// explanation of the decision that breached it. Every violation goes to
// the event log; the Result keeps the first MaxViolationExamples of each
// invariant and the times of all (the report's timeline marks them).
func (m *metricsState) violateWhy(inv, detail, why string) {
	w := m.w
	a := m.viol[inv]
	a.count++
	if len(a.examples) < MaxViolationExamples {
		a.examples = append(a.examples, Violation{Invariant: inv, At: w.now, Detail: detail, Explanation: why})
	}
	m.violAt = append(m.violAt, ViolationMark{Invariant: inv, At: w.now})
	if why != "" {
		w.log.event(w.now, "violation", kv("invariant", inv), kv("detail", detail), kv("explanation", why))
	} else {
		w.log.event(w.now, "violation", kv("invariant", inv), kv("detail", detail))
	}
}

func (m *metricsState) logMinute() {
	w := m.w
	for i, rs := range w.regions {
		mn := m.minute[i]
		if mn.lookups == 0 {
			continue
		}
		w.log.event(w.now, "traffic", kv("region", rs.name), kvInt("lookups", mn.lookups), kvInt("answered", mn.answered),
			kvInt("dead_only", mn.deadOnly))
		m.minute[i] = bucketAcc{}
	}
}

// finish closes what is open at the end and checks that nothing
// acknowledged was lost.
func (w *world) finish() {
	m := w.m
	for _, rs := range w.regions {
		for svc, o := range rs.outage {
			if o > 0 {
				f := &m.outages[o-1]
				if !f.Served {
					f.Time = w.now - f.Start
				}
				rs.outage[svc] = 0
			}
		}
	}
	for i := range w.faultSpans {
		if w.faultSpans[i].End < 0 {
			w.faultSpans[i].End = w.now
		}
	}
	w.trc.endFaults(w.now)
	w.oracleFinish()
	w.checkLostAcks()
	w.log.flush()
}

// checkLostAcks: after healing and settling, every acknowledged
// registration that was not deregistered is visible, at its version or
// later, in every running gateway's view of its region.
func (w *world) checkLostAcks() {
	m := w.m
	var active []string
	if w.net.anyCut() {
		active = append(active, "a partition or cut")
	}
	for _, rs := range w.regions {
		if rs.down {
			active = append(active, "store of "+rs.name+" down")
		}
	}
	cutoff := w.now - w.cfg.settle
	switch {
	case len(active) > 0:
		m.lostNote = "not checked: still active at the end: " + strings.Join(active, ", ")
		return
	case w.quietAt > cutoff:
		m.lostNote = fmt.Sprintf("not checked: the last fault ended at %s, less than settle %s before the end", fmtDur(w.quietAt), fmtDur(w.cfg.settle))
		return
	}
	m.lostCheck = true
	for _, src := range w.regions {
		if len(src.runningGateways()) == 0 {
			continue // nobody serves its catalog: nothing to see
		}
		keys := make([]region.Key, 0, len(src.acked))
		for k, a := range src.acked {
			if a.at <= cutoff {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, keyCmp)
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
			if w.hooks.beforeFinalCheck != nil && cat != nil {
				w.hooks.beforeFinalCheck(g.name, src.name, cat)
			}
			for _, k := range keys {
				a := src.acked[k]
				m.lostChecks++
				switch {
				case cat == nil:
					w.m.violate(InvNoLostAck, fmt.Sprintf("gateway %s has no replica of %s: %s (acknowledged at v%d) not visible", g.name, src.name, k, a.version))
				case cat.Version() < a.version:
					w.m.violate(InvNoLostAck, fmt.Sprintf("gateway %s holds %s at v%d < v%d acknowledging %s", g.name, src.name, cat.Version(), a.version, k))
				default:
					if _, ok := cat.Get(k); !ok {
						w.m.violate(InvNoLostAck, fmt.Sprintf("gateway %s: %s/%s (acknowledged at v%d) missing at v%d", g.name, src.name, k, a.version, cat.Version()))
					}
				}
			}
		}
	}
	m.lostNote = fmt.Sprintf("%d (registration, gateway) pairs checked", m.lostChecks)
	w.checkConverged()
}

// result assembles the Result.
func (w *world) result() *Result {
	m := w.m
	c := w.cfg
	r := &Result{Scenario: c.name, Seed: w.seed, Duration: w.end, EventsLogged: int(w.log.seq)}
	mt := &r.Metrics
	mt.Lookups, mt.Answered, mt.DeadOnly, mt.UnreachableSent = m.lookups, m.answered, m.deadOnly, m.unreachableSent
	mt.Availability, mt.DeadShare = ratio(m.answered, m.lookups, 1), ratio(m.deadOnly, m.lookups, 0)
	mt.MissedLive = m.missedLive
	type rk struct{ r, s string }
	per := map[rk]*RouteMetrics{}
	for i, t := range c.traffic {
		k := rk{c.regions[t.from].name, c.services[t.service].name}
		rm := per[k]
		if rm == nil {
			rm = &RouteMetrics{Region: k.r, Service: k.s}
			per[k] = rm
		}
		a := m.perStream[i]
		rm.Lookups += a.lookups
		rm.Answered += a.answered
		rm.DeadOnly += a.deadOnly
		rm.Failover += a.failover
	}
	for _, rm := range per {
		rm.Availability, rm.DeadShare = ratio(rm.Answered, rm.Lookups, 1), ratio(rm.DeadOnly, rm.Lookups, 0)
		mt.PerRoute = append(mt.PerRoute, *rm)
	}
	slices.SortFunc(mt.PerRoute, func(a, b RouteMetrics) int {
		if a.Region != b.Region {
			return strings.Compare(a.Region, b.Region)
		}
		return strings.Compare(a.Service, b.Service)
	})
	mt.Failovers = slices.Clone(m.outages)
	for _, f := range mt.Failovers {
		mt.FailoverTimeMax = max(mt.FailoverTimeMax, f.Time)
	}
	for _, s := range m.convergence {
		mt.Convergence = append(mt.Convergence, s.d)
	}
	sortDurations(mt.Convergence)
	mt.ConvergenceP50, mt.ConvergenceP99 = percentile(mt.Convergence, 0.5), percentile(mt.Convergence, 0.99)
	for _, rs := range w.regions {
		mt.NotConverged += len(rs.pending)
	}
	for _, b := range m.syncBytes {
		mt.SyncBytes += b
	}
	mt.Syncs, mt.FullSyncs, mt.SyncFailed = m.syncs, m.fullSyncs, m.syncFailed
	mt.Watches, mt.WatchFailed = m.watches, m.watchFailed
	mt.SnapshotSyncs, mt.StaleDemoted, mt.PeerRefused = w.ext.snapshotSyncs, w.ext.staleDemoted, w.ext.peerRefused
	mt.StatusWrites, mt.Registrations, mt.Deregistered, mt.MemberEvents = m.statusWrites, m.registrations, m.deregistered, m.memberEvents

	for _, name := range InvariantNames {
		a := m.viol[name]
		ir := InvariantResult{Name: name, Count: a.count, Checked: true}
		switch name {
		case InvNoLostAck:
			ir.Checked, ir.Note = m.lostCheck, m.lostNote
		case InvConverged:
			ir.Checked, ir.Note = m.lostCheck, m.convNote
			if !m.lostCheck {
				ir.Note = m.lostNote
			}
		}
		if name == InvLiveRegion {
			ir.Note = w.oracleNote()
			mt.OracleJudged, mt.OracleDead = w.oracleCounts()
		}
		r.Invariants = append(r.Invariants, ir)
		r.Violations = append(r.Violations, a.examples...)
	}
	for _, e := range c.expect {
		r.Expectations = append(r.Expectations, w.expectation(e, r))
	}
	r.Timeline = Timeline{Step: m.step, Faults: slices.Clone(w.faultSpans), Violations: slices.Clone(m.violAt)}
	for i, rs := range w.regions {
		r.Timeline.Regions = append(r.Timeline.Regions, rs.name)
		row := make([]float64, len(m.buckets[i]))
		for b, bk := range m.buckets[i] {
			row[b] = -1
			if bk.lookups > 0 {
				row[b] = float64(bk.answered) / float64(bk.lookups)
			}
		}
		r.Timeline.Availability = append(r.Timeline.Availability, row)
	}
	return r
}

func ratio(a, b int64, empty float64) float64 {
	if b == 0 {
		return empty
	}
	return float64(a) / float64(b)
}

// expectation measures one expectation's metric and checks its bounds.
func (w *world) expectation(e scenarios.Expectation, r *Result) ExpectationResult {
	c := w.cfg
	m := w.m
	match := func(reg, svc string) bool {
		return (e.Region == "" || e.Region == reg) && (e.Service == "" || e.Service == svc)
	}
	var v float64
	isDur := false
	empty := "" // what never happened, when the metric measured nothing
	switch e.Metric {
	case scenarios.MetricAvailability, scenarios.MetricDeadShare, scenarios.MetricLookups, scenarios.MetricRemoteShare:
		var n, ok, dead, remote int64
		for _, rm := range r.Metrics.PerRoute {
			if match(rm.Region, rm.Service) {
				n += rm.Lookups
				ok += rm.Answered
				dead += rm.DeadOnly
				remote += rm.Failover
			}
		}
		if n == 0 && e.Metric != scenarios.MetricLookups {
			empty = "no lookup"
		}
		switch e.Metric {
		case scenarios.MetricAvailability:
			v = ratio(ok, n, 1)
		case scenarios.MetricDeadShare:
			v = ratio(dead, n, 0)
		case scenarios.MetricRemoteShare:
			v = ratio(remote, n, 0)
		default:
			v = float64(n)
		}
	case scenarios.MetricUnreachable:
		var n int64
		for i, t := range c.traffic {
			if match(c.regions[t.from].name, c.services[t.service].name) {
				n += m.perStream[i].unreach
			}
		}
		v = float64(n)
	case scenarios.MetricFailoverTime:
		isDur = true
		var mx time.Duration
		empty = "no local outage of a service with traffic"
		for _, f := range r.Metrics.Failovers {
			if match(f.Region, f.Service) {
				mx = max(mx, f.Time)
				empty = ""
			}
		}
		v = mx.Seconds()
	case scenarios.MetricConvergenceP50, scenarios.MetricConvergenceP99:
		isDur = true
		var ds []time.Duration
		for _, s := range m.convergence {
			if e.Region == "" || c.regions[s.region].name == e.Region {
				ds = append(ds, s.d)
			}
		}
		sortDurations(ds)
		if len(ds) == 0 {
			empty = "no registration converged"
		}
		p := 0.5
		if e.Metric == scenarios.MetricConvergenceP99 {
			p = 0.99
		}
		v = percentile(ds, p).Seconds()
	case scenarios.MetricStatusWrites:
		if e.Region != "" {
			v = float64(m.statusWritesBy[c.regionIdx[e.Region]])
		} else {
			v = float64(r.Metrics.StatusWrites)
		}
	case scenarios.MetricSyncBytes:
		if e.Region != "" {
			v = float64(m.syncBytes[c.regionIdx[e.Region]])
		} else {
			v = float64(r.Metrics.SyncBytes)
		}
	case scenarios.MetricSyncFailed:
		if e.Region != "" {
			v = float64(m.syncFailedBy[c.regionIdx[e.Region]])
		} else {
			v = float64(r.Metrics.SyncFailed)
		}
	default:
		v, _ = w.extMetric(e)
	}
	name := e.Metric
	var labels []string
	if e.Region != "" {
		labels = append(labels, "region="+e.Region)
	}
	if e.Service != "" {
		labels = append(labels, "service="+e.Service)
	}
	if len(labels) > 0 {
		name += "{" + strings.Join(labels, ",") + "}"
	}
	pass := true
	var want []string
	if e.Min != nil {
		want = append(want, ">= "+fmtNum(*e.Min))
		pass = pass && v >= *e.Min
	}
	if e.Max != nil {
		want = append(want, "<= "+fmtNum(*e.Max))
		pass = pass && v <= *e.Max
	}
	if e.MaxDuration > 0 {
		want = append(want, "<= "+e.MaxDuration.D().String())
		pass = pass && v <= e.MaxDuration.D().Seconds()
	}
	val := fmtNum(v)
	if isDur {
		val = fmtDur(time.Duration(v * float64(time.Second)))
	}
	if math.IsNaN(v) {
		pass = false
	}
	msg := fmt.Sprintf("%s = %s, want %s", name, val, strings.Join(want, " and "))
	switch {
	case empty != "" && e.AllowEmpty:
		pass = true
		msg = fmt.Sprintf("%s not measured (%s), allowed (allow_empty)", name, empty)
	case empty != "":
		pass = false
		msg = fmt.Sprintf("%s not measured: %s (want %s; say allow_empty: true if that is expected)", name, empty, strings.Join(want, " and "))
	}
	return ExpectationResult{Expectation: e, Value: v, Pass: pass, Message: msg}
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.4g", v)
}
