package sim

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// Result is what one run of a scenario measured and found.
type Result struct {
	Scenario string
	Seed     uint64
	Duration time.Duration // simulated time run

	Metrics      Metrics
	Expectations []ExpectationResult // one per Scenario.Expect, in order
	Violations   []Violation         // invariant violations: the first MaxViolationExamples of each invariant (the event log has all)
	Invariants   []InvariantResult   // one per invariant, sorted by name: how often it fired
	Timeline     Timeline
	EventsLogged int
}

// MaxViolationExamples is how many violations of one invariant a Result keeps.
const MaxViolationExamples = 20

// Invariant names.
const (
	InvNoLostAck        = "no_lost_ack"         // every acknowledged registration is visible everywhere after settling
	InvVersionMonotonic = "version_monotonic"   // catalog versions never go backwards
	InvStaleness        = "staleness_stated"    // no dead/deregistered instance served beyond the bound unless stated stale
	InvUnreachable      = "no_unreachable_sent" // no traffic to an unreachable region while a reachable healthy one exists
	// InvLiveRegion is the availability oracle (sim/oracles.go): while the
	// world has been steady and an allowed region is reachable with most
	// of its instances serving, under 1% of a stream's lookups get only
	// dead instances.
	InvLiveRegion = "live_region_used"
	// InvInvalidRefused: a registration no client could use (port 0, as
	// from a client whose port setting is unset) is never acknowledged;
	// only register_invalid faults make such registrations.
	InvInvalidRefused = "invalid_refused"
)

// InvariantNames lists the invariants checked.
var InvariantNames = []string{InvNoLostAck, InvConverged, InvStaleness, InvUnreachable, InvVersionMonotonic, InvLiveRegion, InvInvalidRefused}

// Violation is one breach of an invariant.
type Violation struct {
	Invariant string
	At        time.Duration // simulated time since start
	Detail    string
	// Explanation is the router's own account of the decision, for
	// violations made by a lookup (failover.Decision.Explanation).
	Explanation string
}

// ViolationMark is when a violation happened, for the timeline.
type ViolationMark struct {
	Invariant string
	At        time.Duration
}

// InvariantResult says whether an invariant held, how often it did not, and
// whether it could be checked at all.
type InvariantResult struct {
	Name    string
	Count   int    // violations seen (all of them, not just the kept examples)
	Checked bool   // false when the run could not check it (e.g. too short to settle)
	Note    string // why it was not checked, or what was checked
}

// Metrics are the measured quantities of a run.
type Metrics struct {
	Lookups      int64   // lookups judged
	Answered     int64   // lookups whose picked endpoint was really alive and reachable
	Availability float64 // Answered / Lookups (1 when there were no lookups)
	DeadOnly     int64   // lookups whose endpoints were all dead (or none at all)
	DeadShare    float64 // DeadOnly / Lookups
	// MissedLive counts lookups whose picked endpoint was dead although the
	// answer held a live one (the picker's or the health data's fault).
	MissedLive      int64
	UnreachableSent int64 // lookups sent to a region the caller saw unreachable while a reachable healthy one existed (outside panic)

	PerRoute []RouteMetrics // per (region, service) with traffic, sorted

	// Failovers lists local outages and how long until traffic was served
	// by another region's live instance.
	Failovers       []Failover
	FailoverTimeMax time.Duration

	// Convergence of registrations: acknowledged in a region -> visible in
	// every other region's running gateways.
	Convergence    []time.Duration // sorted
	ConvergenceP50 time.Duration
	ConvergenceP99 time.Duration
	NotConverged   int // registrations still not visible everywhere at the end

	SyncBytes  int64 // bytes of the sync responses delivered (JSON as the real endpoint writes it)
	Syncs      int64 // sync responses delivered
	FullSyncs  int64
	SyncFailed int64 // fetches that failed or timed out
	// The push path (catalog watches): answers the watchers applied, and
	// watches that failed (lost to a cut link, a gateway down, aborted).
	// Their bytes count in SyncBytes.
	Watches     int64
	WatchFailed int64
	// SnapshotSyncs counts fetches since a version answered with a
	// snapshot (gap recovery); PeerRefused fetches refused by the peer
	// check; StaleDemoted lookups routed while an allowed remote region was
	// stale past the policy's bound.
	SnapshotSyncs, PeerRefused, StaleDemoted int64
	// OracleJudged counts the lookups the availability oracle judged
	// (live_region_used), OracleDead those of them that got only dead
	// instances.
	OracleJudged, OracleDead int64

	StatusWrites  int64 // health status writes that reached the store
	Registrations int64 // acknowledged registrations (initial population excluded)
	Deregistered  int64
	MemberEvents  int64 // membership events delivered to federation cores
}

// RouteMetrics are the lookup metrics of one (region, service).
type RouteMetrics struct {
	Region, Service string
	Lookups         int64
	Answered        int64
	DeadOnly        int64
	Failover        int64 // lookups answered by another region
	Availability    float64
	DeadShare       float64
}

// Failover is one local outage of a service.
type Failover struct {
	Region, Service string
	Start           time.Duration // when the last local instance died
	Time            time.Duration // until a lookup from the region was served by another region's live instance
	Served          bool          // false: it never was (Time runs to the outage's end or the run's end)
}

// ExpectationResult is one expectation checked against the metrics.
type ExpectationResult struct {
	Expectation scenarios.Expectation
	Value       float64 // the measured value (seconds for durations)
	Pass        bool
	Message     string
}

// Timeline is what the HTML report draws.
type Timeline struct {
	Step    time.Duration
	Regions []string
	// Availability[region][bucket]: share of the region's lookups answered
	// with a live instance, -1 when the bucket had no lookups.
	Availability [][]float64
	Faults       []FaultSpan
	Violations   []ViolationMark // every violation, in time order
}

// FaultSpan is one fault on the timeline.
type FaultSpan struct {
	Kind, Label string
	Start, End  time.Duration
}

// Passed reports whether every expectation passed and no invariant was violated.
func (r *Result) Passed() bool {
	for _, e := range r.Expectations {
		if !e.Pass {
			return false
		}
	}
	for _, inv := range r.Invariants {
		if inv.Count > 0 {
			return false
		}
	}
	return true
}

// WriteSummary writes a deterministic text summary: the metrics per region
// and service, each expectation and each invariant.
func (r *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s  seed %d  simulated %s\n", r.Scenario, r.Seed, r.Duration)
	m := &r.Metrics
	fmt.Fprintf(&b, "\nlookups %d  availability %s  dead_share %s  missed_live %d  unreachable_sent %d\n",
		m.Lookups, fmtRatio(m.Availability), fmtRatio(m.DeadShare), m.MissedLive, m.UnreachableSent)
	fmt.Fprintf(&b, "failover_time max %s (%d outages)  convergence p50 %s p99 %s (%d registrations, %d not converged)\n",
		fmtDur(m.FailoverTimeMax), len(m.Failovers), fmtDur(m.ConvergenceP50), fmtDur(m.ConvergenceP99), len(m.Convergence), m.NotConverged)
	fmt.Fprintf(&b, "syncs %d (%d full, %d failed)  watches %d (%d failed)  sync_bytes %d  status writes %d  member events %d\n",
		m.Syncs, m.FullSyncs, m.SyncFailed, m.Watches, m.WatchFailed, m.SyncBytes, m.StatusWrites, m.MemberEvents)
	if m.SnapshotSyncs+m.PeerRefused+m.StaleDemoted+m.Deregistered > 0 {
		fmt.Fprintf(&b, "snapshot_syncs %d  peer_refused %d  stale_demoted %d  deregistered %d\n",
			m.SnapshotSyncs, m.PeerRefused, m.StaleDemoted, m.Deregistered)
	}

	if len(m.PerRoute) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "REGION\tSERVICE\tLOOKUPS\tAVAILABILITY\tDEAD_SHARE\tFAILOVER")
		for _, rm := range m.PerRoute {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\n", rm.Region, rm.Service, rm.Lookups, fmtRatio(rm.Availability), fmtRatio(rm.DeadShare), rm.Failover)
		}
		tw.Flush()
	}
	if len(m.Failovers) > 0 {
		b.WriteString("\noutages:\n")
		for _, f := range m.Failovers {
			served := "served elsewhere after"
			if !f.Served {
				served = "NOT served elsewhere for"
			}
			fmt.Fprintf(&b, "  %s/%s at %s: %s %s\n", f.Region, f.Service, fmtDur(f.Start), served, fmtDur(f.Time))
		}
	}
	if len(r.Expectations) > 0 {
		b.WriteString("\nexpectations:\n")
		for _, e := range r.Expectations {
			fmt.Fprintf(&b, "  %s  %s\n", passFail(e.Pass), e.Message)
		}
	}
	b.WriteString("\ninvariants:\n")
	for _, inv := range r.Invariants {
		status := passFail(inv.Count == 0)
		if !inv.Checked && inv.Count == 0 {
			status = "SKIP"
		}
		fmt.Fprintf(&b, "  %s  %s  violations=%d", status, inv.Name, inv.Count)
		if inv.Note != "" {
			fmt.Fprintf(&b, "  (%s)", inv.Note)
		}
		b.WriteString("\n")
		for _, v := range r.Violations {
			if v.Invariant == inv.Name {
				fmt.Fprintf(&b, "      first at %s: %s\n", fmtDur(v.At), v.Detail)
				if v.Explanation != "" {
					fmt.Fprintf(&b, "      router: %s\n", v.Explanation)
				}
				if inv.Count > 1 {
					fmt.Fprintf(&b, "      (%d more in the event log)\n", inv.Count-1)
				}
				break
			}
		}
	}
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\nresult: %s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

// fmtDur prints a duration rounded to the millisecond (deterministic).
func fmtDur(d time.Duration) string {
	if d >= time.Millisecond || d <= -time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

// percentile returns the p-th percentile (0..1) of sorted durations by the
// nearest-rank method, 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func sortDurations(ds []time.Duration) { sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] }) }
