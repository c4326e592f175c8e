package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// Limits that keep a simulation bounded in memory and wall time.
const (
	MaxDuration      = 24 * time.Hour
	MaxRegions       = 16
	MaxGateways      = 16 // per region
	MaxZones         = 8  // per region
	MaxServices      = 100
	MaxInstances     = 10000 // per service and region
	MaxRate          = 10000 // lookups per simulated second, per traffic entry
	MaxStormCount    = 100000
	MaxTimeline      = 1000
	MaxExpectations  = 200
	MaxChangeLog     = 1000000 // changes kept per region's store
	maxNameLen       = 63
	minFlapPeriod    = 100 * time.Millisecond
	minRollingPeriod = 100 * time.Millisecond
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)

// FaultKinds lists the fault kinds, sorted.
var FaultKinds = []string{
	FaultCut, FaultDegrade, FaultDeregister, FaultGatewayCrash, FaultGatewayRestart,
	FaultHeal, FaultInstancesFail, FaultInstancesFlap, FaultInstancesHeal, FaultInstancesSlow,
	FaultPartition, FaultPeerRefused, FaultProbeBlocked, FaultRegisterBad, FaultRegisterStorm, FaultRollingRestart, FaultStoreDown,
	FaultStoreFlaky, FaultStoreSlow, FaultStoreUp, FaultStoreWipe,
	FaultRedeploy,
	FaultGatewayRefused, FaultLogTrimmed, FaultRegionReset, FaultStoreRestart, FaultWatchUnsupported,
}

// Metrics lists the metric names an expectation can bound, sorted.
var Metrics = []string{
	MetricAvailability, MetricConvergenceP50, MetricConvergenceP99, MetricDeadShare, MetricDeregistered,
	MetricFailoverTime, MetricLookups, MetricPeerRefused, MetricRemoteShare, MetricSnapshotSyncs, MetricStaleDemoted,
	MetricStatusWrites, MetricSyncBytes, MetricSyncFailed, MetricUnreachable,
}

// IsTimeMetric reports whether the metric is a duration, bounded by
// max_duration rather than min/max.
func IsTimeMetric(m string) bool {
	return m == MetricFailoverTime || m == MetricConvergenceP50 || m == MetricConvergenceP99
}

// isShareMetric reports whether the metric is a share in [0, 1].
func isShareMetric(m string) bool {
	return m == MetricAvailability || m == MetricDeadShare || m == MetricRemoteShare
}

// faultFields lists, per kind, the optional or required fields it uses
// besides at and kind. A field not listed must be left empty.
var faultFields = map[string][]string{
	FaultPartition:      {"groups", "for"},
	FaultCut:            {"from", "to", "for"},
	FaultHeal:           {},
	FaultDegrade:        {"from", "to", "latency", "loss", "for"},
	FaultGatewayCrash:   {"region", "gateway", "for"},
	FaultGatewayRestart: {"region", "gateway"},
	FaultRollingRestart: {"region", "every", "down"},
	FaultStoreDown:      {"region", "for"},
	FaultStoreFlaky:     {"region", "for"},
	FaultStoreSlow:      {"region", "latency", "for"},
	FaultStoreUp:        {"region"},
	FaultStoreWipe:      {"region"},
	FaultInstancesFail:  {"region", "service", "count", "fraction", "for"},
	FaultInstancesHeal:  {"region", "service", "count", "fraction"},
	FaultInstancesFlap:  {"region", "service", "count", "fraction", "period", "for"},
	FaultInstancesSlow:  {"region", "service", "count", "fraction", "latency", "for"},
	FaultRegisterBad:    {"region", "service", "count", "over"},
	FaultRegisterStorm:  {"region", "service", "count", "over"},
	FaultDeregister:     {"region", "service", "count", "for"},
	FaultPeerRefused:    {"from", "to", "for"},
	FaultProbeBlocked:   {"region", "service", "count", "fraction", "gateway", "for"},
	FaultRedeploy:       {"region", "service", "count", "over"},

	// the federation sync faults of faults_mutfed.go
	FaultLogTrimmed:       {"region", "for"},
	FaultWatchUnsupported: {"region", "for"},
	FaultGatewayRefused:   {"from", "gateway", "for"},
	FaultStoreRestart:     {"region"},
	FaultRegionReset:      {"region", "for"},
}

// validator collects the problems of one scenario.
type validator struct {
	sc   *Scenario
	errs []*FieldError
}

// lineOf finds the line of path, or of its nearest ancestor that has one.
func (v *validator) lineOf(path string) int {
	for path != "" {
		if l, ok := v.sc.Lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	if v.sc.Lines != nil {
		return 1
	}
	return 0
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{File: v.sc.File, Line: v.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// errAt reports at a known line (a fault or expectation built in code keeps
// its Line even without Lines).
func (v *validator) errAt(line int, path, format string, args ...any) {
	if l := v.lineOf(path); l > 1 || line == 0 {
		line = l
	}
	v.errs = append(v.errs, &FieldError{File: v.sc.File, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// present reports whether the file set path (always false for scenarios
// built in code).
func (v *validator) present(path string) bool {
	_, ok := v.sc.Lines[path]
	return ok
}

// Validate checks the scenario after ApplyDefaults and returns every problem
// found (a *FieldError or Errors), each naming the file, line and field.
func (sc *Scenario) Validate() error {
	v := &validator{sc: sc}
	v.scenario()
	if len(v.errs) == 0 {
		return nil
	}
	return finish(v.errs)
}

func (v *validator) scenario() {
	sc := v.sc
	if sc.Name == "" {
		v.errf("name", "required")
	} else if !nameRE.MatchString(sc.Name) || len(sc.Name) > maxNameLen {
		v.errf("name", "%q: want lowercase letters, digits, '-' and '_' (at most %d)", sc.Name, maxNameLen)
	}
	switch {
	case !v.present("duration") && sc.Duration == 0:
		v.errf("duration", "required (e.g. duration: 20m)")
	case sc.Duration <= 0:
		v.errf("duration", "must be > 0, got %s", sc.Duration.D())
	case sc.Duration.D() > MaxDuration:
		v.errf("duration", "%s is longer than the %s allowed", sc.Duration.D(), MaxDuration)
	}
	if sc.Settle < 0 {
		v.errf("settle", "must not be negative, got %s", sc.Settle.D())
	} else if sc.Duration > 0 && sc.Settle >= sc.Duration {
		v.errf("settle", "%s must be shorter than duration %s", sc.Settle.D(), sc.Duration.D())
	}
	v.topology()
	v.services()
	v.traffic()
	v.timeline()
	v.expectations()
}

func (v *validator) name(path, kind, name string) bool {
	switch {
	case name == "":
		v.errf(path, "required")
	case !nameRE.MatchString(name) || len(name) > maxNameLen:
		v.errf(path, "%s name %q: want lowercase letters, digits, '-' and '_' (at most %d)", kind, name, maxNameLen)
	default:
		return true
	}
	return false
}

func (v *validator) topology() {
	t := &v.sc.Topology
	switch t.GossipProfile {
	case "wan", "lan", "local":
	default:
		v.errf("topology.gossip_profile", "unknown profile %q (want wan, lan or local)", t.GossipProfile)
	}
	if t.AntiEntropy < 0 {
		v.errf("topology.anti_entropy", "must not be negative, got %s", t.AntiEntropy.D())
	}
	if t.ChangeLog < 0 || t.ChangeLog > MaxChangeLog {
		v.errf("topology.change_log", "must be within [1, %d] (0: the default), got %d", MaxChangeLog, t.ChangeLog)
	}
	switch t.Store {
	case "", "memory", "redis":
	default:
		v.errf("topology.store", "unknown store %q (want memory or redis)", t.Store)
	}
	switch {
	case len(t.Regions) == 0:
		v.errf("topology.regions", "required: at least one region")
	case len(t.Regions) > MaxRegions:
		v.errf("topology.regions", "%d regions, more than the %d allowed", len(t.Regions), MaxRegions)
	}
	seen := map[string]bool{}
	for i, r := range t.Regions {
		p := fmt.Sprintf("topology.regions[%d]", i)
		if v.name(p+".name", "region", r.Name) {
			if seen[r.Name] {
				v.errf(p+".name", "duplicate region %q", r.Name)
			}
			seen[r.Name] = true
		}
		if r.Gateways < 1 || r.Gateways > MaxGateways {
			v.errf(p+".gateways", "must be within [1, %d], got %d", MaxGateways, r.Gateways)
		}
		if len(r.Zones) > MaxZones {
			v.errf(p+".zones", "%d zones, more than the %d allowed", len(r.Zones), MaxZones)
		}
		zs := map[string]bool{}
		for j, z := range r.Zones {
			zp := fmt.Sprintf("%s.zones[%d]", p, j)
			if v.name(zp, "zone", z) {
				if zs[z] {
					v.errf(zp, "duplicate zone %q", z)
				}
				zs[z] = true
			}
		}
	}
	n := &t.Network
	v.nonNegDur("topology.network.latency", n.Latency)
	v.nonNegDur("topology.network.jitter", n.Jitter)
	v.nonNegDur("topology.network.intra", n.Intra)
	v.loss("topology.network.loss", n.Loss)
	for i, l := range n.Links {
		p := fmt.Sprintf("topology.network.links[%d]", i)
		v.regionRef(p+".from", l.From, true)
		v.regionRef(p+".to", l.To, true)
		if l.From != "" && l.From == l.To {
			v.errf(p+".to", "a link joins two different regions, got %q twice", l.To)
		}
		v.nonNegDur(p+".latency", l.Latency)
		v.nonNegDur(p+".jitter", l.Jitter)
		v.loss(p+".loss", l.Loss)
	}
}

func (v *validator) nonNegDur(path string, d Duration) {
	if d < 0 {
		v.errf(path, "must not be negative, got %s", d.D())
	}
}

func (v *validator) loss(path string, x float64) {
	if !(x >= 0 && x < 1) {
		v.errf(path, "must be within [0, 1), got %g", x)
	}
}

// knownRegions lists the region names for messages.
func (v *validator) knownRegions() string {
	return strings.Join(v.sc.RegionNames(), ", ")
}

func (v *validator) knownServices() string {
	names := make([]string, 0, len(v.sc.Services))
	for _, s := range v.sc.Services {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// regionRef checks that name is a region of the topology.
func (v *validator) regionRef(path, name string, required bool) *Region {
	if name == "" {
		if required {
			v.errf(path, "required (known regions: %s)", v.knownRegions())
		}
		return nil
	}
	r := v.sc.region(name)
	if r == nil {
		v.errf(path, "unknown region %q (known: %s)", name, v.knownRegions())
	}
	return r
}

func (v *validator) serviceRef(path, name string) *Service {
	if name == "" {
		v.errf(path, "required (known services: %s)", v.knownServices())
		return nil
	}
	s := v.sc.service(name)
	if s == nil {
		v.errf(path, "unknown service %q (known: %s)", name, v.knownServices())
	}
	return s
}

func (v *validator) services() {
	sc := v.sc
	switch {
	case len(sc.Services) == 0:
		v.errf("services", "required: at least one service")
	case len(sc.Services) > MaxServices:
		v.errf("services", "%d services, more than the %d allowed", len(sc.Services), MaxServices)
	}
	seen := map[string]bool{}
	for i, s := range sc.Services {
		p := fmt.Sprintf("services[%d]", i)
		if v.name(p+".name", "service", s.Name) {
			if seen[s.Name] {
				v.errf(p+".name", "duplicate service %q", s.Name)
			}
			seen[s.Name] = true
		}
		rs := map[string]bool{}
		for j, r := range s.Regions {
			rp := fmt.Sprintf("%s.regions[%d]", p, j)
			if v.regionRef(rp, r, true) != nil {
				if rs[r] {
					v.errf(rp, "duplicate region %q", r)
				}
				rs[r] = true
			}
		}
		if s.Instances < 1 || s.Instances > MaxInstances {
			v.errf(p+".instances", "must be within [1, %d], got %d", MaxInstances, s.Instances)
		}
		if s.Check != CheckHTTP && s.Check != CheckTTL {
			v.errf(p+".check", "unknown check %q (want http or ttl)", s.Check)
		}
		if s.Interval <= 0 {
			v.errf(p+".interval", "must be > 0, got %s", s.Interval.D())
		}
		if s.FailuresBeforeCritical < 1 || s.FailuresBeforeCritical > 100 {
			v.errf(p+".failures_before_critical", "must be within [1, 100], got %d", s.FailuresBeforeCritical)
		}
		if s.SuccessBeforePassing < 1 || s.SuccessBeforePassing > 100 {
			v.errf(p+".success_before_passing", "must be within [1, 100], got %d", s.SuccessBeforePassing)
		}
		v.nonNegDur(p+".deregister_critical_after", s.DeregisterCriticalAfter)
	}
}

var pickers = []string{PickerHash, PickerP2C, PickerRoundRobin, PickerWeighted}

func (v *validator) traffic() {
	for i, tr := range v.sc.Traffic {
		p := fmt.Sprintf("traffic[%d]", i)
		r := v.regionRef(p+".from", tr.From, true)
		if r != nil && tr.Zone != "" && !contains(r.Zones, tr.Zone) {
			v.errf(p+".zone", "unknown zone %q of region %s (known: %s)", tr.Zone, r.Name, strings.Join(r.Zones, ", "))
		}
		v.serviceRef(p+".service", tr.Service)
		if !(tr.Rate > 0) || tr.Rate > MaxRate {
			v.errf(p+".rate", "must be within (0, %d] lookups per second, got %g", MaxRate, tr.Rate)
		}
		if !contains(pickers, tr.Picker) {
			v.errf(p+".picker", "unknown picker %q (want %s)", tr.Picker, strings.Join(pickers, ", "))
		}
		v.policy(p+".policy", tr.Policy)
	}
}

func (v *validator) policy(path string, pol failover.Policy) {
	if err := pol.Validate(); err != nil {
		// failover's messages start with the field name: "mode: ...".
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if ok && !strings.ContainsAny(field, " ") {
			v.errf(path+"."+field, "%s", msg)
		} else {
			v.errf(path, "%v", err)
		}
		return
	}
	for j, r := range pol.Regions {
		v.regionRef(fmt.Sprintf("%s.regions[%d]", path, j), r, true)
	}
	if pol.NearestN > MaxRegions {
		v.errf(path+".nearest_n", "must be at most %d, got %d", MaxRegions, pol.NearestN)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// set reports, for the fault fields that can be checked for "left empty",
// which ones are non-zero.
func faultSetFields(f *Fault) map[string]bool {
	return map[string]bool{
		"for": f.For != 0, "groups": len(f.Groups) > 0, "from": f.From != "", "to": f.To != "",
		"region": f.Region != "", "gateway": f.Gateway != "", "service": f.Service != "",
		"count": f.Count != 0, "fraction": f.Fraction != 0, "latency": f.Latency != 0,
		"loss": f.Loss != 0, "period": f.Period != 0, "every": f.Every != 0,
		"down": f.Down != 0, "over": f.Over != 0,
	}
}

func (v *validator) timeline() {
	sc := v.sc
	if len(sc.Timeline) > MaxTimeline {
		v.errf("timeline", "%d entries, more than the %d allowed", len(sc.Timeline), MaxTimeline)
		return
	}
	for i := range sc.Timeline {
		v.fault(i, &sc.Timeline[i])
	}
}

func (v *validator) fault(i int, f *Fault) {
	p := fmt.Sprintf("timeline[%d]", i)
	fe := func(field, format string, args ...any) {
		path := p
		if field != "" {
			path += "." + field
		}
		v.errAt(f.Line, path, format, args...)
	}
	if v.sc.Lines != nil && !v.present(p+".at") {
		fe("at", "required (when the fault starts, e.g. at: 5m)")
	} else if f.At < 0 || (v.sc.Duration > 0 && f.At >= v.sc.Duration) {
		fe("at", "%s is not within the run [0s, %s)", f.At.D(), v.sc.Duration.D())
	}
	uses, ok := faultFields[f.Kind]
	if !ok {
		if f.Kind == "" {
			fe("kind", "required (one of %s)", strings.Join(FaultKinds, ", "))
		} else {
			fe("kind", "unknown fault kind %q (known: %s)", f.Kind, strings.Join(FaultKinds, ", "))
		}
		return
	}
	set := faultSetFields(f)
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if set[k] && !contains(uses, k) {
			fe(k, "does not apply to kind %s (it uses: %s)", f.Kind, strings.Join(append([]string{"at", "kind"}, uses...), ", "))
		}
	}
	if f.For < 0 {
		fe("for", "must not be negative, got %s", f.For.D())
	} else if f.For > 0 && v.sc.Duration > 0 && f.At+f.For > v.sc.Duration {
		fe("for", "at %s + for %s ends after the run (%s)", f.At.D(), f.For.D(), v.sc.Duration.D())
	}
	switch f.Kind {
	case FaultLogTrimmed, FaultWatchUnsupported, FaultGatewayRefused, FaultStoreRestart, FaultRegionReset:
		v.mutfedFault(p, f, fe)
	case FaultNotifyLost:
		v.notifyLostFault(f, fe)
	case FaultPartition:
		v.partition(p, f, fe)
	case FaultCut, FaultPeerRefused:
		v.link(p, f, fe)
	case FaultProbeBlocked:
		v.instancesTarget(p, f, fe)
		rn, n, ok := ParseGateway(f.Gateway)
		switch {
		case f.Gateway == "":
			fe("gateway", "required: the gateway (\"<region>-<n>\") whose probes are blocked")
		case !ok || rn != f.Region:
			fe("gateway", "%q: want a gateway of region %s, e.g. %q", f.Gateway, f.Region, GatewayName(f.Region, 1))
		default:
			if r := v.sc.region(rn); r != nil && n > r.Gateways {
				fe("gateway", "%q: region %s has %d gateway(s)", f.Gateway, rn, r.Gateways)
			}
		}
	case FaultDegrade:
		v.link(p, f, fe)
		if f.Latency < 0 {
			fe("latency", "must not be negative, got %s", f.Latency.D())
		}
		if !(f.Loss >= 0 && f.Loss < 1) {
			fe("loss", "must be within [0, 1), got %g", f.Loss)
		}
		if f.Latency == 0 && f.Loss == 0 {
			fe("", "degrade needs latency or loss")
		}
	case FaultGatewayCrash, FaultGatewayRestart:
		v.gatewayTarget(p, f, fe)
	case FaultRollingRestart:
		if f.Region != "" {
			v.regionRef(p+".region", f.Region, false)
		}
		if f.Every < Duration(minRollingPeriod) {
			fe("every", "required: at least %s between two gateways, got %s", minRollingPeriod, f.Every.D())
		}
		if f.Down < Duration(minRollingPeriod) {
			fe("down", "required: how long each gateway is down, at least %s, got %s", minRollingPeriod, f.Down.D())
		}
	case FaultStoreDown, FaultStoreFlaky, FaultStoreUp, FaultStoreWipe:
		v.regionRef(p+".region", f.Region, true)
	case FaultStoreSlow:
		v.regionRef(p+".region", f.Region, true)
		if f.Latency <= 0 {
			fe("latency", "required: must be > 0, got %s", f.Latency.D())
		}
	case FaultInstancesOverload:
		v.instancesTarget(p, f, fe)
	case FaultInstancesFail, FaultInstancesHeal, FaultInstancesFlap, FaultInstancesSlow:
		v.instancesTarget(p, f, fe)
		if f.Kind == FaultInstancesFlap && f.Period < Duration(minFlapPeriod) {
			fe("period", "required: at least %s, got %s", minFlapPeriod, f.Period.D())
		}
		if f.Kind == FaultInstancesSlow && f.Latency <= 0 {
			fe("latency", "required: must be > 0, got %s", f.Latency.D())
		}
	case FaultRegisterStorm, FaultRegisterBad, FaultDeregister, FaultRedeploy:
		v.regionRef(p+".region", f.Region, true)
		v.serviceRef(p+".service", f.Service)
		if f.Count < 1 || f.Count > MaxStormCount {
			fe("count", "required: must be within [1, %d], got %d", MaxStormCount, f.Count)
		}
		if f.Over < 0 {
			fe("over", "must not be negative, got %s", f.Over.D())
		} else if v.sc.Duration > 0 && f.At+f.Over > v.sc.Duration {
			fe("over", "at %s + over %s ends after the run (%s)", f.At.D(), f.Over.D(), v.sc.Duration.D())
		}
	}
	if f.Kind == FaultDeregister && f.Gateway != "" {
		v.viaGateway(f, fe)
	}
}

func (v *validator) partition(p string, f *Fault, fe func(string, string, ...any)) {
	if len(f.Groups) == 0 {
		fe("groups", "required: groups of regions (e.g. [[us-east], [eu-west, ap-south]])")
		return
	}
	seen := map[string]string{}
	for g, grp := range f.Groups {
		if len(grp) == 0 {
			fe(fmt.Sprintf("groups[%d]", g), "empty group")
		}
		for j, r := range grp {
			rp := fmt.Sprintf("%s.groups[%d][%d]", p, g, j)
			if v.regionRef(rp, r, true) == nil {
				continue
			}
			if prev, dup := seen[r]; dup {
				v.errAt(f.Line, rp, "region %q is already in %s", r, prev)
			}
			seen[r] = fmt.Sprintf("groups[%d]", g)
		}
	}
	// Regions not listed form one more group; a partition must separate
	// at least two groups.
	if len(f.Groups) == 1 && len(seen) == len(v.sc.Topology.Regions) {
		fe("groups", "one group with every region separates nothing (regions not listed form one more group)")
	}
}

func (v *validator) link(p string, f *Fault, fe func(string, string, ...any)) {
	v.regionRef(p+".from", f.From, true)
	v.regionRef(p+".to", f.To, true)
	if f.From != "" && f.From == f.To {
		fe("to", "must differ from from (%q)", f.From)
	}
}

// ParseGateway splits a gateway name "<region>-<n>" (n from 1).
func ParseGateway(name string) (region string, n int, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 1 || strconv.Itoa(n) != name[i+1:] {
		return "", 0, false
	}
	return name[:i], n, true
}

// GatewayName returns the name of a region's n-th gateway (n from 1).
func GatewayName(region string, n int) string { return region + "-" + strconv.Itoa(n) }

func (v *validator) gatewayTarget(p string, f *Fault, fe func(string, string, ...any)) {
	switch {
	case f.Gateway == "" && f.Region == "":
		fe("gateway", "required: a gateway (\"<region>-<n>\") or a region (all its gateways)")
	case f.Gateway != "" && f.Region != "":
		fe("region", "give either gateway or region, not both")
	case f.Region != "":
		v.regionRef(p+".region", f.Region, true)
	default:
		rn, n, ok := ParseGateway(f.Gateway)
		if !ok {
			fe("gateway", "%q: want \"<region>-<n>\" with n from 1, e.g. %q", f.Gateway, GatewayName(v.firstRegion(), 1))
			return
		}
		r := v.sc.region(rn)
		if r == nil {
			fe("gateway", "%q: unknown region %q (known: %s)", f.Gateway, rn, v.knownRegions())
			return
		}
		if n > r.Gateways {
			fe("gateway", "%q: region %s has %d gateway(s)", f.Gateway, rn, r.Gateways)
		}
	}
}

func (v *validator) firstRegion() string {
	if len(v.sc.Topology.Regions) > 0 && v.sc.Topology.Regions[0].Name != "" {
		return v.sc.Topology.Regions[0].Name
	}
	return "us-east"
}

func (v *validator) instancesTarget(p string, f *Fault, fe func(string, string, ...any)) {
	r := v.regionRef(p+".region", f.Region, true)
	s := v.serviceRef(p+".service", f.Service)
	if r != nil && s != nil && !contains(s.Regions, r.Name) {
		fe("service", "service %s does not run in region %s (it runs in %s)", s.Name, r.Name, strings.Join(s.Regions, ", "))
	}
	if f.Count != 0 && f.Fraction != 0 {
		fe("fraction", "give either count or fraction, not both")
	}
	if f.Count < 0 || f.Count > MaxInstances {
		fe("count", "must be within [1, %d], got %d", MaxInstances, f.Count)
	}
	if f.Fraction != 0 && !(f.Fraction > 0 && f.Fraction <= 1) {
		fe("fraction", "must be within (0, 1], got %g", f.Fraction)
	}
	if f.Kind != FaultInstancesHeal && f.Count == 0 && f.Fraction == 0 {
		fe("count", "required: count or fraction of the instances")
	}
}

func (v *validator) expectations() {
	sc := v.sc
	if len(sc.Expect) > MaxExpectations {
		v.errf("expect", "%d expectations, more than the %d allowed", len(sc.Expect), MaxExpectations)
		return
	}
	for i := range sc.Expect {
		e := &sc.Expect[i]
		p := fmt.Sprintf("expect[%d]", i)
		fe := func(field, format string, args ...any) {
			path := p
			if field != "" {
				path += "." + field
			}
			v.errAt(e.Line, path, format, args...)
		}
		if e.Metric == "" {
			fe("metric", "required (one of %s)", strings.Join(Metrics, ", "))
			continue
		}
		if !contains(Metrics, e.Metric) {
			fe("metric", "unknown metric %q (known: %s)", e.Metric, strings.Join(Metrics, ", "))
			continue
		}
		if e.Region != "" {
			v.regionRef(p+".region", e.Region, false)
		}
		if e.Service != "" {
			v.serviceRef(p+".service", e.Service)
		}
		if IsTimeMetric(e.Metric) {
			if e.Min != nil || e.Max != nil {
				fe("max_duration", "%s is a time: bound it with max_duration (e.g. max_duration: 30s), not min/max", e.Metric)
			} else if e.MaxDuration <= 0 {
				fe("max_duration", "required for %s: a duration > 0", e.Metric)
			}
			continue
		}
		if e.MaxDuration != 0 {
			fe("max_duration", "applies to time metrics only (%s, %s, %s); use min/max for %s",
				MetricFailoverTime, MetricConvergenceP50, MetricConvergenceP99, e.Metric)
		}
		if e.Min == nil && e.Max == nil {
			fe("", "needs min or max (or both)")
			continue
		}
		for _, b := range []struct {
			name string
			x    *float64
		}{{"min", e.Min}, {"max", e.Max}} {
			if b.x == nil {
				continue
			}
			switch {
			case math.IsNaN(*b.x) || math.IsInf(*b.x, 0):
				fe(b.name, "must be a finite number, got %g", *b.x)
			case isShareMetric(e.Metric) && (*b.x < 0 || *b.x > 1):
				fe(b.name, "%s is a share: must be within [0, 1], got %g", e.Metric, *b.x)
			case *b.x < 0:
				fe(b.name, "must not be negative, got %g", *b.x)
			}
		}
		if e.Min != nil && e.Max != nil && *e.Min > *e.Max {
			fe("min", "min %g is above max %g", *e.Min, *e.Max)
		}
	}
}

// explicitZeros reports fields the file sets to a zero that would be read
// as "use the default": writing them is a mistake the user should hear about.
func (v *validator) explicitZeros() {
	sc := v.sc
	check := func(path string, zero bool, what string) {
		if zero && v.present(path) {
			v.errf(path, "must be > 0 (leave it out for the default, %s)", what)
		}
	}
	for i, r := range sc.Topology.Regions {
		check(fmt.Sprintf("topology.regions[%d].gateways", i), r.Gateways == 0, "1")
	}
	for i, s := range sc.Services {
		p := fmt.Sprintf("services[%d]", i)
		check(p+".instances", s.Instances == 0, strconv.Itoa(DefaultInstances))
		check(p+".interval", s.Interval == 0, DefaultInterval.String())
		check(p+".failures_before_critical", s.FailuresBeforeCritical == 0, "1")
		check(p+".success_before_passing", s.SuccessBeforePassing == 0, "1")
	}
	for i, t := range sc.Traffic {
		check(fmt.Sprintf("traffic[%d].rate", i), t.Rate == 0, "10 per second")
	}
}
