package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// Scenario defaults, as documented in scenarios/schema.go.
var defaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	defaultSettle    = 2 * time.Minute
	defaultLatency   = 40 * time.Millisecond
	defaultIntra     = time.Millisecond
	defaultInstances = 3
	defaultInterval  = 10 * time.Second
	defaultRate      = 10.0
	defaultPicker    = failover.PickerP2C
	defaultSample    = 0.01
)

// config is a scenario with its defaults filled and its names resolved to
// indexes.
type config struct {
	name     string
	start    time.Time
	duration time.Duration
	settle   time.Duration
	profile  gossip.Profile

	antiEntropy time.Duration // 0: the core's default for the profile
	changeLog   int           // changes each store keeps (0: region.DefaultLogMax)
	store       string        // the regions' store kind (topology.store; "": memory)
	regions     []regionCfg
	regionIdx   map[string]int
	net         netCfg
	services    []serviceCfg
	serviceIdx  map[string]int
	traffic     []trafficCfg
	faults      []scenarios.Fault // sorted by At (stable)
	expect      []scenarios.Expectation
}

type regionCfg struct {
	name     string
	gateways int
	zones    []string
}

type netCfg struct {
	intra   time.Duration
	latency [][]time.Duration // one-way, [from][to]
	jitter  [][]time.Duration
	loss    [][]float64
}

type serviceCfg struct {
	name      string
	regions   []int // sorted
	instances int
	check     region.Check // as registered (kind, interval, damping, deregistration)
}

type trafficCfg struct {
	from    int
	zone    string
	service int
	rate    float64
	policy  failover.Policy // with defaults
	picker  string
}

// prepare fills the scenario's defaults and checks it.
func prepare(sc *scenarios.Scenario, opts Options) (*config, error) {
	c := &config{name: sc.Name, start: sc.Start, duration: sc.Duration.D(), settle: sc.Settle.D(),
		antiEntropy: sc.Topology.AntiEntropy.D(), changeLog: sc.Topology.ChangeLog, store: sc.Topology.Store, regionIdx: map[string]int{}, serviceIdx: map[string]int{}}
	if c.name == "" {
		c.name = "unnamed"
	}
	if c.start.IsZero() {
		c.start = defaultStart
	}
	c.start = c.start.UTC()
	if opts.Duration > 0 {
		c.duration = opts.Duration
	}
	if c.duration <= 0 {
		return nil, errors.New("duration: required (a positive duration)")
	}
	if !opts.Truncate {
		for i, f := range sc.Timeline {
			if f.At.D() >= c.duration {
				return nil, fmt.Errorf("duration: %s ends before timeline[%d] (%s at %s): its faults would silently not happen (truncate the timeline explicitly to allow it)",
					c.duration, i, f.Kind, f.At.D())
			}
		}
	}
	if c.settle == 0 {
		c.settle = defaultSettle
	}
	if c.settle < 0 {
		return nil, errors.New("settle: must not be negative")
	}
	if c.antiEntropy < 0 {
		return nil, errors.New("topology.anti_entropy: must not be negative")
	}
	if c.changeLog < 0 || c.changeLog > scenarios.MaxChangeLog {
		return nil, fmt.Errorf("topology.change_log: want 1..%d (0: the default), got %d", scenarios.MaxChangeLog, c.changeLog)
	}
	pname := sc.Topology.GossipProfile
	if pname == "" {
		pname = "lan"
	}
	p, err := gossip.ProfileByName(pname)
	if err != nil {
		return nil, fmt.Errorf("topology.gossip_profile: %w", err)
	}
	c.profile = p

	if len(sc.Topology.Regions) == 0 {
		return nil, errors.New("topology.regions: at least one region is required")
	}
	for i, r := range sc.Topology.Regions {
		if err := region.ValidateService(r.Name); err != nil {
			return nil, fmt.Errorf("topology.regions[%d].name: %q is not a DNS label", i, r.Name)
		}
		if _, dup := c.regionIdx[r.Name]; dup {
			return nil, fmt.Errorf("topology.regions[%d].name: region %q given twice", i, r.Name)
		}
		rc := regionCfg{name: r.Name, gateways: r.Gateways, zones: slices.Clone(r.Zones)}
		if rc.gateways == 0 {
			rc.gateways = 1
		}
		if rc.gateways < 0 || rc.gateways > 100 {
			return nil, fmt.Errorf("topology.regions[%d].gateways: want 1..100, got %d", i, r.Gateways)
		}
		if len(rc.zones) == 0 {
			rc.zones = []string{"a"}
		}
		for j, z := range rc.zones {
			if err := region.ValidateZone(z); err != nil {
				return nil, fmt.Errorf("topology.regions[%d].zones[%d]: %v", i, j, err)
			}
		}
		c.regionIdx[r.Name] = i
		c.regions = append(c.regions, rc)
	}
	if err := c.prepareNetwork(&sc.Topology.Network); err != nil {
		return nil, err
	}
	if err := c.prepareServices(sc.Services); err != nil {
		return nil, err
	}
	if err := c.prepareTraffic(sc.Traffic); err != nil {
		return nil, err
	}
	if err := c.prepareFaults(sc.Timeline); err != nil {
		return nil, err
	}
	for i, e := range sc.Expect {
		if err := c.checkExpectation(e); err != nil {
			return nil, fmt.Errorf("expect[%d]: %w", i, err)
		}
		c.expect = append(c.expect, e)
	}
	return c, nil
}

func (c *config) region(field, name string) (int, error) {
	i, ok := c.regionIdx[name]
	if !ok {
		return 0, fmt.Errorf("%s: unknown region %q", field, name)
	}
	return i, nil
}

func (c *config) prepareNetwork(n *scenarios.Network) error {
	lat, jit, loss, intra := n.Latency.D(), n.Jitter.D(), n.Loss, n.Intra.D()
	if lat == 0 {
		lat = defaultLatency
	}
	if intra == 0 {
		intra = defaultIntra
	}
	if lat < 0 || jit < 0 || intra < 0 {
		return errors.New("topology.network: latency, jitter and intra must not be negative")
	}
	if !(loss >= 0 && loss < 1) {
		return fmt.Errorf("topology.network.loss: want [0,1), got %g", loss)
	}
	k := len(c.regions)
	c.net = netCfg{intra: intra, latency: square[time.Duration](k), jitter: square[time.Duration](k), loss: square[float64](k)}
	for i := range k {
		for j := range k {
			if i != j {
				c.net.latency[i][j], c.net.jitter[i][j], c.net.loss[i][j] = lat, jit, loss
			}
		}
	}
	for i, l := range n.Links {
		f := fmt.Sprintf("topology.network.links[%d]", i)
		a, err := c.region(f+".from", l.From)
		if err != nil {
			return err
		}
		b, err := c.region(f+".to", l.To)
		if err != nil {
			return err
		}
		if a == b {
			return fmt.Errorf("%s: from and to are the same region %q", f, l.From)
		}
		if l.Latency < 0 || l.Jitter < 0 || !(l.Loss >= 0 && l.Loss < 1) {
			return fmt.Errorf("%s: latency and jitter must not be negative, loss must be in [0,1)", f)
		}
		set := func(x, y int) {
			if l.Latency > 0 {
				c.net.latency[x][y] = l.Latency.D()
			}
			if l.Jitter > 0 {
				c.net.jitter[x][y] = l.Jitter.D()
			}
			if l.Loss > 0 {
				c.net.loss[x][y] = l.Loss
			}
		}
		set(a, b)
		if !l.OneWay {
			set(b, a)
		}
	}
	return nil
}

func square[T any](k int) [][]T {
	out := make([][]T, k)
	for i := range out {
		out[i] = make([]T, k)
	}
	return out
}

func (c *config) prepareServices(svcs []scenarios.Service) error {
	for i, s := range svcs {
		f := fmt.Sprintf("services[%d]", i)
		if err := region.ValidateService(s.Name); err != nil {
			return fmt.Errorf("%s.name: %q is not a valid service name", f, s.Name)
		}
		if _, dup := c.serviceIdx[s.Name]; dup {
			return fmt.Errorf("%s.name: service %q given twice", f, s.Name)
		}
		sc := serviceCfg{name: s.Name, instances: s.Instances}
		if sc.instances == 0 {
			sc.instances = defaultInstances
		}
		if sc.instances < 0 || sc.instances > 100000 {
			return fmt.Errorf("%s.instances: want 1..100000, got %d", f, s.Instances)
		}
		if len(s.Regions) == 0 {
			for r := range c.regions {
				sc.regions = append(sc.regions, r)
			}
		}
		for j, name := range s.Regions {
			r, err := c.region(fmt.Sprintf("%s.regions[%d]", f, j), name)
			if err != nil {
				return err
			}
			if slices.Contains(sc.regions, r) {
				return fmt.Errorf("%s.regions[%d]: region %q given twice", f, j, name)
			}
			sc.regions = append(sc.regions, r)
		}
		slices.Sort(sc.regions)
		iv := s.Interval.D()
		if iv == 0 {
			iv = defaultInterval
		}
		if iv < 10*time.Millisecond {
			return fmt.Errorf("%s.interval: must be at least 10ms, got %s", f, iv)
		}
		if s.FailuresBeforeCritical < 0 || s.SuccessBeforePassing < 0 || s.DeregisterCriticalAfter < 0 {
			return fmt.Errorf("%s: failures_before_critical, success_before_passing and deregister_critical_after must not be negative", f)
		}
		ck := region.Check{FailuresBeforeCritical: s.FailuresBeforeCritical, SuccessBeforePassing: s.SuccessBeforePassing,
			DeregisterCriticalAfter: region.Duration(s.DeregisterCriticalAfter.D())}
		switch s.Check {
		case "", "http":
			ck.HTTP = "http://instance/health" // the address is filled per instance
			ck.Interval = region.Duration(iv)
		case "ttl":
			ck.TTL = region.Duration(iv)
		default:
			return fmt.Errorf("%s.check: %q is not http or ttl", f, s.Check)
		}
		sc.check = ck
		c.serviceIdx[s.Name] = len(c.services)
		c.services = append(c.services, sc)
	}
	return nil
}

func (c *config) prepareTraffic(tr []scenarios.Traffic) error {
	for i, t := range tr {
		f := fmt.Sprintf("traffic[%d]", i)
		from, err := c.region(f+".from", t.From)
		if err != nil {
			return err
		}
		s, ok := c.serviceIdx[t.Service]
		if !ok {
			return fmt.Errorf("%s.service: unknown service %q", f, t.Service)
		}
		tc := trafficCfg{from: from, zone: t.Zone, service: s, rate: t.Rate, picker: t.Picker}
		if tc.zone == "" {
			tc.zone = c.regions[from].zones[0]
		}
		if !slices.Contains(c.regions[from].zones, tc.zone) {
			return fmt.Errorf("%s.zone: region %q has no zone %q (zones: %s)", f, t.From, tc.zone, strings.Join(c.regions[from].zones, ", "))
		}
		if tc.rate == 0 {
			tc.rate = defaultRate
		}
		if !(tc.rate > 0 && tc.rate <= 1e6) {
			return fmt.Errorf("%s.rate: want (0, 1e6] lookups per second, got %g", f, t.Rate)
		}
		if err := t.Policy.Validate(); err != nil {
			return fmt.Errorf("%s.policy.%w", f, err)
		}
		tc.policy = t.Policy.WithDefaults()
		for j, r := range tc.policy.Regions {
			if _, err := c.region(fmt.Sprintf("%s.policy.regions[%d]", f, j), r); err != nil {
				return err
			}
		}
		if tc.picker == "" {
			tc.picker = defaultPicker
		}
		switch tc.picker {
		case failover.PickerRoundRobin, failover.PickerWeighted, failover.PickerP2C, failover.PickerHash:
		default:
			return fmt.Errorf("%s.picker: %q is not round_robin, weighted, p2c or hash", f, t.Picker)
		}
		c.traffic = append(c.traffic, tc)
	}
	return nil
}

func (c *config) prepareFaults(tl []scenarios.Fault) error {
	for i, ft := range tl {
		f := fmt.Sprintf("timeline[%d]", i)
		if ft.At < 0 || ft.For < 0 {
			return fmt.Errorf("%s: at and for must not be negative", f)
		}
		needRegion := func() error {
			if ft.Region == "" {
				return fmt.Errorf("%s.region: required for %s", f, ft.Kind)
			}
			_, err := c.region(f+".region", ft.Region)
			return err
		}
		needService := func() error {
			if err := needRegion(); err != nil {
				return err
			}
			if _, ok := c.serviceIdx[ft.Service]; !ok {
				return fmt.Errorf("%s.service: unknown service %q", f, ft.Service)
			}
			return nil
		}
		var err error
		switch ft.Kind {
		case scenarios.FaultPartition:
			if len(ft.Groups) < 1 {
				return fmt.Errorf("%s.groups: a partition needs at least one group", f)
			}
			seen := map[string]bool{}
			for g, grp := range ft.Groups {
				for j, r := range grp {
					if _, err := c.region(fmt.Sprintf("%s.groups[%d][%d]", f, g, j), r); err != nil {
						return err
					}
					if seen[r] {
						return fmt.Errorf("%s.groups[%d][%d]: region %q is in two groups", f, g, j, r)
					}
					seen[r] = true
				}
			}
		case scenarios.FaultCut, scenarios.FaultDegrade, scenarios.FaultPeerRefused:
			if _, err = c.region(f+".from", ft.From); err != nil {
				return err
			}
			if _, err = c.region(f+".to", ft.To); err != nil {
				return err
			}
			if ft.From == ft.To {
				return fmt.Errorf("%s: from and to are the same region", f)
			}
			if ft.Kind == scenarios.FaultDegrade && (ft.Latency < 0 || !(ft.Loss >= 0 && ft.Loss <= 1)) {
				return fmt.Errorf("%s: latency must not be negative, loss must be in [0,1]", f)
			}
		case scenarios.FaultHeal:
		case scenarios.FaultGatewayCrash, scenarios.FaultGatewayRestart:
			switch {
			case ft.Gateway != "":
				if _, _, err := c.gateway(ft.Gateway); err != nil {
					return fmt.Errorf("%s.gateway: %w", f, err)
				}
			default:
				err = needRegion()
			}
		case scenarios.FaultRollingRestart:
			if ft.Region != "" {
				err = needRegion()
			}
			if ft.Every <= 0 || ft.Down <= 0 {
				return fmt.Errorf("%s: rolling_restart needs every and down (positive durations)", f)
			}
		case scenarios.FaultStoreDown, scenarios.FaultStoreFlaky, scenarios.FaultStoreUp, scenarios.FaultStoreWipe:
			err = needRegion()
		case scenarios.FaultStoreSlow:
			err = needRegion()
			if err == nil && ft.Latency <= 0 {
				err = fmt.Errorf("%s.latency: store_slow needs a positive latency", f)
			}
		case scenarios.FaultInstancesFail, scenarios.FaultInstancesHeal, scenarios.FaultInstancesFlap, scenarios.FaultInstancesSlow:
			err = needService()
			if err == nil && (ft.Count < 0 || !(ft.Fraction >= 0 && ft.Fraction <= 1)) {
				err = fmt.Errorf("%s: count must not be negative, fraction must be in [0,1]", f)
			}
			if err == nil && ft.Kind != scenarios.FaultInstancesHeal && ft.Count == 0 && ft.Fraction == 0 {
				err = fmt.Errorf("%s: %s needs count or fraction", f, ft.Kind)
			}
			if err == nil && ft.Kind == scenarios.FaultInstancesFlap && ft.Period <= 0 {
				err = fmt.Errorf("%s.period: instances_flap needs a positive period", f)
			}
			if err == nil && ft.Kind == scenarios.FaultInstancesSlow && ft.Latency <= 0 {
				err = fmt.Errorf("%s.latency: instances_slow needs a positive latency", f)
			}
		case scenarios.FaultRegisterStorm, scenarios.FaultRegisterBad:
			err = needService()
			if err == nil && (ft.Count <= 0 || ft.Count > 1000000 || ft.Over < 0) {
				err = fmt.Errorf("%s: register_storm needs count in 1..1000000 and a non-negative over", f)
			}
		case scenarios.FaultDeregister, scenarios.FaultRedeploy:
			err = needService()
			if err == nil && ft.Count <= 0 {
				err = fmt.Errorf("%s.count: deregister needs a positive count", f)
			}
			if err == nil && ft.Gateway != "" {
				err = c.viaGateway(f, &ft)
			}
		case scenarios.FaultProbeBlocked:
			err = needService()
			if err == nil && (ft.Count < 0 || !(ft.Fraction >= 0 && ft.Fraction <= 1) || (ft.Count == 0 && ft.Fraction == 0)) {
				err = fmt.Errorf("%s: probe_blocked needs count or fraction (fraction in (0,1])", f)
			}
			if err == nil {
				reg, _, gerr := c.gateway(ft.Gateway)
				switch {
				case gerr != nil:
					err = fmt.Errorf("%s.gateway: %w", f, gerr)
				case c.regions[reg].name != ft.Region:
					err = fmt.Errorf("%s.gateway: %s is not a gateway of %s", f, ft.Gateway, ft.Region)
				}
			}
		case scenarios.FaultLogTrimmed, scenarios.FaultWatchUnsupported, scenarios.FaultGatewayRefused, scenarios.FaultStoreRestart,
			scenarios.FaultRegionReset:
			err = c.prepareMutfedFault(f, ft)
		case scenarios.FaultNotifyLost:
			if _, _, gerr := c.gateway(ft.Gateway); gerr != nil {
				err = fmt.Errorf("%s.gateway: %w", f, gerr)
			}
		case scenarios.FaultInstancesOverload:
			err = needService()
			if err == nil && (ft.Count < 0 || !(ft.Fraction >= 0 && ft.Fraction <= 1) || (ft.Count == 0 && ft.Fraction == 0)) {
				err = fmt.Errorf("%s: instances_overload needs count or fraction (fraction in (0,1])", f)
			}
		default:
			return fmt.Errorf("%s.kind: unknown fault kind %q", f, ft.Kind)
		}
		if err != nil {
			return err
		}
		c.faults = append(c.faults, ft)
	}
	slices.SortStableFunc(c.faults, func(a, b scenarios.Fault) int { return int(a.At.D() - b.At.D()) })
	return nil
}

// gateway resolves "<region>-<n>".
func (c *config) gateway(name string) (reg, n int, err error) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return 0, 0, fmt.Errorf("%q is not <region>-<n>", name)
	}
	r, ok := c.regionIdx[name[:i]]
	if !ok {
		return 0, 0, fmt.Errorf("%q: unknown region %q", name, name[:i])
	}
	if _, err := fmt.Sscanf(name[i+1:], "%d", &n); err != nil || n < 1 || n > c.regions[r].gateways || fmt.Sprint(n) != name[i+1:] {
		return 0, 0, fmt.Errorf("%q: region %s has gateways %s-1 to %s-%d", name, c.regions[r].name, c.regions[r].name, c.regions[r].name, c.regions[r].gateways)
	}
	return r, n, nil
}

var knownMetrics = []string{scenarios.MetricAvailability, scenarios.MetricDeadShare, scenarios.MetricFailoverTime,
	scenarios.MetricConvergenceP50, scenarios.MetricConvergenceP99, scenarios.MetricSyncBytes, scenarios.MetricLookups,
	scenarios.MetricUnreachable, scenarios.MetricStatusWrites, scenarios.MetricSyncFailed,
	scenarios.MetricSnapshotSyncs, scenarios.MetricStaleDemoted, scenarios.MetricPeerRefused, scenarios.MetricDeregistered,
	scenarios.MetricRemoteShare}

func (c *config) checkExpectation(e scenarios.Expectation) error {
	if !slices.Contains(knownMetrics, e.Metric) {
		return fmt.Errorf("metric: unknown metric %q (want one of %s)", e.Metric, strings.Join(knownMetrics, ", "))
	}
	if e.Region != "" {
		if _, err := c.region("region", e.Region); err != nil {
			return err
		}
	}
	if e.Service != "" {
		if _, ok := c.serviceIdx[e.Service]; !ok {
			return fmt.Errorf("service: unknown service %q", e.Service)
		}
	}
	switch e.Metric {
	case scenarios.MetricSnapshotSyncs, scenarios.MetricStaleDemoted, scenarios.MetricPeerRefused, scenarios.MetricDeregistered:
		if e.Region != "" || e.Service != "" {
			return fmt.Errorf("metric %s is counted over the whole run: give no region or service", e.Metric)
		}
	}
	if e.Min == nil && e.Max == nil && e.MaxDuration == 0 {
		return errors.New("min, max or max_duration: at least one bound is required")
	}
	return nil
}
