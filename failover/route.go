package failover

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// Policy defaults (WithDefaults).
const (
	DefaultMode             = ModeLocal
	DefaultNearestN         = 2
	DefaultOverprovisioning = 1.4
	DefaultPanicThreshold   = 0.5
	DefaultStalenessBound   = 30 * time.Second
)

// boundaryEps absorbs float rounding at the spillover boundary, so that 5/7
// healthy x 1.4 counts as 100% whichever way the product rounds.
const boundaryEps = 1e-9

// WithDefaults returns p with its zero fields filled: mode local, nearest_n
// 2, overprovisioning 1.4, panic_threshold 0.5, staleness_bound 30s, zone
// preference on.
func (p Policy) WithDefaults() Policy {
	if p.Mode == "" {
		p.Mode = DefaultMode
	}
	if p.NearestN == 0 {
		p.NearestN = DefaultNearestN
	}
	if p.Overprovisioning == 0 {
		p.Overprovisioning = DefaultOverprovisioning
	}
	if p.PanicThreshold == 0 {
		p.PanicThreshold = DefaultPanicThreshold
	}
	if p.StalenessBound == 0 {
		p.StalenessBound = DefaultStalenessBound
	}
	if p.ZonePreference == nil {
		on := true
		p.ZonePreference = &on
	}
	return p
}

// Validate reports the first problem with p, naming the field. Zero fields
// mean "default" and are valid: Validate checks p.WithDefaults().
func (p Policy) Validate() error {
	q := p.WithDefaults()
	switch q.Mode {
	case ModeLocal, ModeOrdered, ModeNearest:
	default:
		return fmt.Errorf("mode: unknown mode %q (want local, ordered or nearest)", string(q.Mode))
	}
	if q.Mode == ModeOrdered && len(q.Regions) == 0 {
		return errors.New("regions: mode ordered needs at least one region")
	}
	for i, r := range q.Regions {
		if r == "" {
			return fmt.Errorf("regions[%d]: empty region name", i)
		}
	}
	if q.NearestN < 1 {
		return fmt.Errorf("nearest_n: must be at least 1, got %d", q.NearestN)
	}
	if !(q.Overprovisioning >= 1) || math.IsInf(q.Overprovisioning, 1) {
		return fmt.Errorf("overprovisioning: must be a finite number >= 1, got %g", q.Overprovisioning)
	}
	if !(q.PanicThreshold >= 0 && q.PanicThreshold <= 1) {
		return fmt.Errorf("panic_threshold: must be within [0, 1], got %g", q.PanicThreshold)
	}
	if q.StalenessBound < 0 {
		return fmt.Errorf("staleness_bound: must not be negative, got %s", q.StalenessBound)
	}
	return nil
}

// Ref returns "region/service/id", the endpoint's identity across regions.
// Pickers key their state by it.
func (e Endpoint) Ref() string {
	return e.Region + "/" + e.Service + "/" + e.ID
}

// Level returns the endpoints of one priority level, drawn by u in [0, 1)
// in proportion to PriorityShares among the levels present in Endpoints
// (after Limit). A driver calls d.Level(rng.Float64()) and then a Picker on
// the result, so that each level gets its share whatever the picker; for
// consistent hashing, derive u from the key instead. The result aliases
// d.Endpoints; it is nil when there are none.
func (d Decision) Level(u float64) []Endpoint {
	eps := d.Endpoints
	if len(eps) == 0 {
		return nil
	}
	share := func(p int) float64 {
		if p >= 0 && p < len(d.PriorityShares) {
			return d.PriorityShares[p]
		}
		return 0
	}
	run := func(i int) int { // end of the run of equal priority starting at i
		j := i + 1
		for j < len(eps) && eps[j].Priority == eps[i].Priority {
			j++
		}
		return j
	}
	var sum float64
	for i := 0; i < len(eps); i = run(i) {
		sum += share(eps[i].Priority)
	}
	if !(sum > 0) {
		return eps[:run(0)]
	}
	x := u * sum
	last := eps[:run(0)]
	for i := 0; i < len(eps); {
		j := run(i)
		if s := share(eps[i].Priority); s > 0 {
			last = eps[i:j]
			if x -= s; x < 0 {
				return last
			}
		}
		i = j
	}
	return last
}

// level is one priority: the caller's zone, the rest of its region, or one
// remote region.
type level struct {
	region  string
	label   string // "us-east zone a", "us-east other zones", "eu-west"
	local   bool
	stale   bool   // the region's data is marked stale
	unreach bool   // no gateway of the region looks alive from here
	note    string // remote regions: why the region ranks here
	insts   []*region.Instance
	healthy int     // passing or warning
	avail   float64 // min(1, healthy/total x O); 1 in panic
	share   float64
}

// Route decides where a lookup for req.Service goes, given what is known of
// each region. It is pure: the same views and request give the same
// Decision whatever the order of views and of their instances.
//
// Instances qualify when they are of req.Service (an instance with an empty
// Service is taken to be of it) and carry every tag in req.Tags. Passing
// and warning instances are healthy; warning ones are listed after passing
// ones of the same level. Critical instances are only returned in panic.
//
// Priority levels, most preferred first (empty levels are left out, so
// Endpoint.Priority counts the levels that have instances):
//   - the caller's zone (with ZonePreference, when FromZone has instances
//     there), then the rest of the caller's region; or the whole region;
//   - then remote regions, one level each: ModeLocal takes all of them by
//     RTT (regions without an estimate after, by name), ModeOrdered takes
//     Policy.Regions in order (unknown names, duplicates and the caller's
//     region are skipped), ModeNearest takes the NearestN first by RTT;
//   - remote regions marked Stale with Age over StalenessBound rank after
//     the fresh ones, and unreachable regions after all others, keeping
//     their relative order. For ModeNearest the demotion happens before the
//     NearestN cut, so a stale region only takes a slot when there are not
//     enough fresh ones. The caller's own region is never demoted.
//
// Traffic is split as Envoy splits it between priorities: level i has
// availability a_i = min(1, healthy_i/total_i x Overprovisioning) and takes
// min(a_i, what the levels before it left); when the availabilities sum to
// less than 1 they are scaled up so that the shares sum to 1. When the
// healthy fraction over all levels is below PanicThreshold (equal is not
// below) and the availabilities sum to less than 1 (Envoy's normalized
// total health under 100%: the levels together lack healthy instances),
// health is ignored: every level counts as fully available, so the first
// level takes everything, critical instances included.
//
// Limit cuts the endpoint list only; Shares, PriorityShares and Failover
// describe the split before the cut. Returned endpoints share Tags and Meta
// with views: treat them as read-only. Of two views with the same name the
// first one given is used. An invalid policy routes nowhere and says why.
func Route(views []RegionView, req Request) Decision {
	d := Decision{Endpoints: []Endpoint{}, Shares: map[string]float64{}, StaleRegions: []string{}}
	if err := req.Policy.Validate(); err != nil {
		d.Explanation = "invalid policy: " + err.Error()
		return d
	}
	p := req.Policy.WithDefaults()
	rs := sortedViews(views)
	levels := buildLevels(rs, &req, &p)

	total, healthy := 0, 0
	for i := range levels {
		total += len(levels[i].insts)
		healthy += levels[i].healthy
	}
	if total == 0 {
		d.Explanation = explainNothing(rs, &req, &p)
		return d
	}
	frac := float64(healthy) / float64(total)

	// Outside panic, an unreachable region gets traffic only when no
	// reachable region has a healthy instance: the reachable ones take it
	// all between them (scaled up below) rather than spill into a region
	// that cannot be reached.
	reachableHealthy := false
	for i := range levels {
		reachableHealthy = reachableHealthy || (!levels[i].unreach && levels[i].healthy > 0)
	}
	sumA := 0.0
	for i := range levels {
		l := &levels[i]
		if l.unreach && reachableHealthy {
			l.avail = 0
		} else {
			a := float64(l.healthy) * p.Overprovisioning / float64(len(l.insts))
			if a >= 1-boundaryEps {
				a = 1
			}
			l.avail = a
		}
		sumA += l.avail
	}
	// As Envoy does: when the levels' normalized health sums to 100%
	// there are enough healthy instances between them, and the panic
	// threshold is disregarded (a few healthy instances in a big dead
	// local region must not send everything to it while a failover region
	// is fully healthy).
	panicking := healthy == 0 || (frac < p.PanicThreshold && sumA < 1-boundaryEps)
	if panicking {
		sumA = 0
		for i := range levels {
			levels[i].avail = 1
			sumA++
		}
	}
	norm := sumA
	if norm >= 1-boundaryEps {
		norm = 1
	}
	remaining := 1.0
	d.PriorityShares = make([]float64, len(levels))
	n := 0
	for i := range levels {
		l := &levels[i]
		s := min(remaining, l.avail/norm)
		if s < boundaryEps {
			s = 0
		}
		l.share = s
		d.PriorityShares[i] = s
		if remaining -= s; remaining < boundaryEps {
			remaining = 0
		}
		if s > 0 {
			d.Shares[l.region] += s
			if l.region != req.FromRegion {
				d.Failover = true
			}
			if panicking {
				n += len(l.insts)
			} else {
				n += l.healthy
			}
		}
	}
	d.Panic = panicking
	// Shares are fractions a person reads: drop float noise such as
	// 0.30000000000000004 (1e-9 is far below any meaningful share).
	for i := range levels {
		d.PriorityShares[i] = roundShare(d.PriorityShares[i])
		if v, ok := d.Shares[levels[i].region]; ok {
			d.Shares[levels[i].region] = roundShare(v)
		}
	}

	if req.Limit > 0 && n > req.Limit {
		n = req.Limit
	}
	d.Endpoints = make([]Endpoint, 0, n)
fill:
	for i := range levels {
		l := &levels[i]
		if l.share == 0 {
			continue
		}
		slices.SortFunc(l.insts, compareInstances)
		for _, in := range l.insts {
			if len(d.Endpoints) == n {
				break fill
			}
			if !panicking && !isHealthy(in) {
				break // instances are sorted healthy first
			}
			d.Endpoints = append(d.Endpoints, Endpoint{Instance: *in, Region: l.region, Priority: i})
		}
	}

	for i := range levels {
		if levels[i].stale {
			d.StaleRegions = append(d.StaleRegions, levels[i].region)
		}
	}
	slices.Sort(d.StaleRegions)
	d.StaleRegions = slices.Compact(d.StaleRegions)

	d.Explanation = explain(levels, &req, &p, panicking, norm, frac)
	return d
}

// sortedViews returns the views by name, the first of each name kept.
func sortedViews(views []RegionView) []*RegionView {
	rs := make([]*RegionView, len(views))
	for i := range views {
		rs[i] = &views[i]
	}
	slices.SortStableFunc(rs, func(a, b *RegionView) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(rs, func(a, b *RegionView) bool { return a.Name == b.Name })
}

func findView(rs []*RegionView, name string) *RegionView {
	i, ok := slices.BinarySearchFunc(rs, name, func(v *RegionView, n string) int { return strings.Compare(v.Name, n) })
	if !ok {
		return nil
	}
	return rs[i]
}

func isHealthy(in *region.Instance) bool {
	return in.Status == region.StatusPassing || in.Status == region.StatusWarning
}

func statusRank(s region.Status) int {
	switch s {
	case region.StatusPassing:
		return 0
	case region.StatusWarning:
		return 1
	case region.StatusCritical:
		return 2
	}
	return 3
}

// compareInstances orders passing, warning, critical (then anything else),
// then by id; address, port and zone break ties between duplicate ids.
func compareInstances(a, b *region.Instance) int {
	if c := statusRank(a.Status) - statusRank(b.Status); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Address, b.Address); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return a.Port - b.Port
	}
	return strings.Compare(a.Zone, b.Zone)
}

// eligible returns the view's instances of the service that carry every
// required tag, in the view's order (Route sorts only the levels it uses).
// Drained instances (weight 0) are left out: they take no traffic and do
// not count towards a region's health, so draining one never triggers
// spillover or panic.
func eligible(v *RegionView, req *Request) []*region.Instance {
	out := make([]*region.Instance, 0, len(v.Instances))
	for i := range v.Instances {
		in := &v.Instances[i]
		if req.Service != "" && in.Service != "" && in.Service != req.Service {
			continue
		}
		if in.Weight == 0 {
			continue
		}
		ok := true
		for _, t := range req.Tags {
			if !in.HasTag(t) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, in)
		}
	}
	return out
}

func newLevel(v *RegionView, label string, local bool, insts []*region.Instance) level {
	l := level{region: v.Name, label: label, local: local, stale: v.Stale, unreach: !local && !v.Reachable, insts: insts}
	for _, in := range insts {
		if isHealthy(in) {
			l.healthy++
		}
	}
	return l
}

// Demotion classes of remote regions.
const (
	classFresh       = 0
	classStale       = 1
	classUnreachable = 2
)

type candidate struct {
	v     *RegionView
	insts []*region.Instance
	class int
	pos   int // position in Policy.Regions (ModeOrdered)
}

func buildLevels(rs []*RegionView, req *Request, p *Policy) []level {
	levels := make([]level, 0, len(rs)+1)
	if lv := findView(rs, req.FromRegion); lv != nil && req.FromRegion != "" {
		ins := eligible(lv, req)
		split := false
		if len(ins) > 0 && *p.ZonePreference && req.FromZone != "" {
			var zone, rest []*region.Instance
			for _, in := range ins {
				if in.Zone == req.FromZone {
					zone = append(zone, in)
				} else {
					rest = append(rest, in)
				}
			}
			if len(zone) > 0 {
				split = true
				levels = append(levels, newLevel(lv, lv.Name+" zone "+req.FromZone, true, zone))
				if len(rest) > 0 {
					levels = append(levels, newLevel(lv, lv.Name+" other zones", true, rest))
				}
			}
		}
		if len(ins) > 0 && !split {
			levels = append(levels, newLevel(lv, lv.Name, true, ins))
		}
	}

	classOf := func(v *RegionView) int {
		switch {
		case !v.Reachable:
			return classUnreachable
		case v.Stale && v.Age > p.StalenessBound:
			return classStale
		}
		return classFresh
	}
	var cands []candidate
	switch p.Mode {
	case ModeOrdered:
		seen := make(map[string]bool, len(p.Regions))
		for i, name := range p.Regions {
			if name == req.FromRegion || seen[name] {
				continue
			}
			seen[name] = true
			v := findView(rs, name)
			if v == nil {
				continue
			}
			if ins := eligible(v, req); len(ins) > 0 {
				cands = append(cands, candidate{v: v, insts: ins, class: classOf(v), pos: i})
			}
		}
	default:
		for _, v := range rs {
			if v.Name == req.FromRegion {
				continue
			}
			if ins := eligible(v, req); len(ins) > 0 {
				cands = append(cands, candidate{v: v, insts: ins, class: classOf(v)})
			}
		}
		slices.SortStableFunc(cands, func(a, b candidate) int { return compareRTT(a.v, b.v) })
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.class - b.class })
	if p.Mode == ModeNearest && len(cands) > p.NearestN {
		cands = cands[:p.NearestN]
	}
	for _, c := range cands {
		l := newLevel(c.v, c.v.Name, false, c.insts)
		l.note = remoteNote(c, p)
		levels = append(levels, l)
	}
	return levels
}

// compareRTT orders regions with an RTT estimate first, nearest first, then
// by name.
func compareRTT(a, b *RegionView) int {
	switch {
	case a.HasRTT && !b.HasRTT:
		return -1
	case !a.HasRTT && b.HasRTT:
		return 1
	case a.HasRTT && a.RTT != b.RTT:
		if a.RTT < b.RTT {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

func remoteNote(c candidate, p *Policy) string {
	var b strings.Builder
	switch {
	case p.Mode == ModeOrdered:
		fmt.Fprintf(&b, "failover list #%d", c.pos+1)
	case !c.v.HasRTT:
		b.WriteString("no RTT estimate")
	case p.Mode == ModeNearest:
		b.WriteString("nearest by RTT " + fmtDur(c.v.RTT))
	default:
		b.WriteString("RTT " + fmtDur(c.v.RTT))
	}
	switch c.class {
	case classUnreachable:
		b.WriteString(", unreachable: ranked last")
	case classStale:
		fmt.Fprintf(&b, ", stale %s > %s bound: ranked after fresh regions", FormatAge(c.v.Age), fmtDur(p.StalenessBound))
	default:
		if c.v.Stale {
			fmt.Fprintf(&b, ", stale %s (within the %s bound)", FormatAge(c.v.Age), fmtDur(p.StalenessBound))
		}
	}
	return b.String()
}

// explainNothing explains a lookup that found no instance at all.
func explainNothing(rs []*RegionView, req *Request, p *Policy) string {
	what := instancesOf(req)
	if p.Mode == ModeOrdered {
		where := "its failover list (" + strings.Join(p.Regions, ", ") + ")"
		if req.FromRegion != "" {
			where = req.FromRegion + " or " + where
		}
		return fmt.Sprintf("no %s in %s.", what, where)
	}
	if len(rs) == 0 {
		return fmt.Sprintf("no %s anywhere (no region known).", what)
	}
	return fmt.Sprintf("no %s anywhere.", what)
}

func instancesOf(req *Request) string {
	s := "instances"
	if req.Service != "" {
		s += " of " + req.Service
	}
	if len(req.Tags) > 0 {
		s += " tagged " + strings.Join(req.Tags, ", ")
	}
	return s
}

// explain tells the decision in words; levels carry their shares.
func explain(levels []level, req *Request, p *Policy, panicking bool, norm, frac float64) string {
	var out []string
	say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	if req.FromRegion != "" && !levels[0].local {
		say("%s has no %s.", req.FromRegion, instancesOf(req))
	}
	describe := func(l *level) string { // "eu-west (nearest by RTT 12ms, 3/3 healthy)"
		h := fmt.Sprintf("%d/%d healthy", l.healthy, len(l.insts))
		if l.note != "" {
			return l.label + " (" + l.note + ", " + h + ")"
		}
		return l.label + " (" + h + ")"
	}

	if panicking {
		n := len(levels[0].insts)
		say("healthy share %s is below the panic threshold %s: routing to all %d instances of %s ignoring health.",
			pct(frac), pct(p.PanicThreshold), n, levels[0].label)
		return strings.Join(out, " ")
	}
	if norm < 1 {
		say("total availability is only %s (< 100%%): shares are scaled up to sum to 100%%.", pct(norm))
	}

	in := 1.0 // traffic reaching level i
	served := false
	passedOn := false // the previous level already described this one
	for i := range levels {
		if in <= 0 {
			break
		}
		l := &levels[i]
		var next string
		if i+1 < len(levels) {
			next = describe(&levels[i+1])
		}
		if l.share == 0 {
			if next != "" {
				say("%s has %d/%d instances healthy: passes %s on to %s.", l.label, l.healthy, len(l.insts), pct(in), next)
				passedOn = true
			} else {
				say("%s has %d/%d instances healthy.", l.label, l.healthy, len(l.insts))
			}
			continue
		}
		rest := in - l.share
		if rest < boundaryEps {
			rest = 0
		}
		if rest == 0 {
			if !served {
				h := fmt.Sprintf("%d/%d healthy", l.healthy, len(l.insts))
				if l.healthy < len(l.insts) {
					h += fmt.Sprintf(" (%s) x %g = %s >= 100%%", pct(float64(l.healthy)/float64(len(l.insts))), p.Overprovisioning,
						pct(float64(l.healthy)*p.Overprovisioning/float64(len(l.insts))))
				}
				switch {
				case l.local && i == 0:
					say("%s has %s: all traffic stays local.", l.label, h)
				case l.local:
					say("%s has %s: all traffic goes there.", l.label, h)
				case passedOn:
					say("%s takes all of it.", l.label)
				default:
					say("all traffic goes to %s.", describe(l))
				}
			}
			break
		}
		a := pct(l.avail)
		if norm < 1 {
			a += fmt.Sprintf(" (scaled: %s)", pct(l.avail/norm))
		}
		limit := "100%"
		if in < 1 {
			limit = pct(in) + " sent to it"
		}
		say("%s: %d/%d instances healthy (%s) x %g = %s < %s: keeps %s, spills %s to %s.",
			l.label, l.healthy, len(l.insts), pct(float64(l.healthy)/float64(len(l.insts))), p.Overprovisioning, a, limit,
			pct(l.share), pct(rest), next)
		served = true
		in = rest
	}

	for i := range levels {
		if l := &levels[i]; l.unreach && l.share == 0 && l.healthy > 0 {
			say("%s gets no traffic: it cannot be reached from here and reachable regions have healthy instances.", describe(l))
		}
	}

	var parts []string // per region, in priority order (a region's levels are adjacent)
	for i := 0; i < len(levels); {
		j, s := i, 0.0
		for ; j < len(levels) && levels[j].region == levels[i].region; j++ {
			s += levels[j].share
		}
		if s > 0 {
			parts = append(parts, levels[i].region+" "+pct(s))
		}
		i = j
	}
	if len(parts) > 1 {
		say("shares: %s.", strings.Join(parts, ", "))
	}
	return strings.Join(out, " ")
}

// pct formats a fraction as a percentage with at most two decimals.
func pct(v float64) string {
	s := strconv.FormatFloat(v*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s + "%"
}

func fmtDur(d time.Duration) string {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// roundShare rounds a traffic share to nine decimals.
func roundShare(v float64) float64 { return math.Round(v*1e9) / 1e9 }

// FormatAge writes a replica's age as the explanation shows it: whole
// seconds from one second up, milliseconds below. A Decision depends on a
// stale region's age only through this text and through the staleness
// bound, which lets callers reuse a decision while both stay the same.
func FormatAge(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
