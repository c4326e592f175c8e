package scenarios

import (
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// Scenario is one simulation: a topology, services, traffic, a timeline of
// faults and the expectations the run must meet. Every field is documented
// with its YAML key; durations are Go duration strings ("250ms", "3m").
type Scenario struct {
	// Name is the scenario's name (defaults to the file name without .yaml).
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Start is the simulated wall-clock time of t=0 (UTC, RFC 3339). It
	// stamps the event log and trace spans. Default 2026-01-01T00:00:00Z.
	Start time.Time `yaml:"start"`
	// Duration is the simulated time the run lasts (required).
	Duration Duration `yaml:"duration"`
	// Settle is the quiet time at the end of the run (after the last fault
	// healed) after which the "nothing acknowledged is lost" invariant is
	// checked. Default 2m.
	Settle Duration `yaml:"settle"`

	Topology Topology       `yaml:"topology"`
	Services []Service      `yaml:"services"`
	Traffic  []Traffic      `yaml:"traffic"`
	Timeline []Fault        `yaml:"timeline"`
	Expect   []Expectation  `yaml:"expect"`
	Lines    map[string]int `yaml:"-"` // field path -> line in the file, for errors found after parsing
	File     string         `yaml:"-"` // the file it was loaded from ("" when built in code)
}

// Topology is the set of regions, their gateways and the network between them.
type Topology struct {
	// GossipProfile is the Serf/memberlist profile the membership model
	// follows: wan, lan or local (default lan).
	GossipProfile string   `yaml:"gossip_profile"`
	Regions       []Region `yaml:"regions"`
	Network       Network  `yaml:"network"`
	// SyncInterval is the federation anti-entropy interval (default: the
	// federation core's default for the profile).
	AntiEntropy Duration `yaml:"anti_entropy"`
	// ChangeLog is how many changes each region's store keeps in its
	// change log (default region.DefaultLogMax, 10000). A small log makes
	// a replica that fell further behind take a snapshot instead of a
	// delta (gap recovery).
	ChangeLog int `yaml:"change_log"`
	// Store is the regions' store: memory (default, the in-memory twin
	// region.MemStore) or redis (the production Redis store, its Lua
	// scripts included, over an in-process Redis; available in the
	// meridian binary, see sim.RegisterStore).
	Store string `yaml:"store"`
}

// Region is one region of the topology.
type Region struct {
	Name     string   `yaml:"name"`
	Gateways int      `yaml:"gateways"` // default 1
	Zones    []string `yaml:"zones"`    // default ["a"]; instances are spread over them round robin
}

// Network is the simulated WAN: one-way latency per region pair, jitter and loss.
type Network struct {
	Latency Duration `yaml:"latency"` // default one-way latency between two regions (default 40ms)
	Jitter  Duration `yaml:"jitter"`  // uniform extra delay in [0, jitter) (default 0)
	Loss    float64  `yaml:"loss"`    // packet loss probability in [0,1) on every link (default 0)
	Links   []Link   `yaml:"links"`   // overrides per pair (symmetric unless one_way)
	// Intra is the latency inside a region (gateway to gateway, gateway to
	// its store and instances). Default 1ms.
	Intra Duration `yaml:"intra"`
}

// Link overrides the latency/loss between two regions.
type Link struct {
	From    string   `yaml:"from"`
	To      string   `yaml:"to"`
	Latency Duration `yaml:"latency"`
	Jitter  Duration `yaml:"jitter"`
	Loss    float64  `yaml:"loss"`
	OneWay  bool     `yaml:"one_way"`
}

// Service is a service registered in some regions.
type Service struct {
	Name string `yaml:"name"`
	// Regions where it runs (default: every region).
	Regions []string `yaml:"regions"`
	// Instances per region (default 3).
	Instances int `yaml:"instances"`
	// Check: "ttl" (heartbeats) or "http" (probed by the owning gateway).
	// Default http.
	Check string `yaml:"check"`
	// Interval of the probe or TTL of the heartbeat (default 10s).
	Interval Duration `yaml:"interval"`
	// FailuresBeforeCritical and SuccessBeforePassing: flap damping (defaults 1, 1).
	FailuresBeforeCritical int `yaml:"failures_before_critical"`
	SuccessBeforePassing   int `yaml:"success_before_passing"`
	// DeregisterCriticalAfter removes instances critical for that long (0: never).
	DeregisterCriticalAfter Duration `yaml:"deregister_critical_after"`
}

// Traffic is a stream of lookups from one region for one service.
type Traffic struct {
	From    string `yaml:"from"`    // caller's region (required)
	Zone    string `yaml:"zone"`    // caller's zone (default: the region's first zone)
	Service string `yaml:"service"` // required
	// Rate in lookups per simulated second (default 10).
	Rate float64 `yaml:"rate"`
	// Policy of the lookup (default: local first).
	Policy failover.Policy `yaml:"policy"`
	// Picker: round_robin, weighted, p2c or hash (default p2c).
	Picker string `yaml:"picker"`
}

// Fault kinds, the value of Fault.Kind.
const (
	FaultPartition      = "partition"        // Groups: regions in different groups cannot talk
	FaultCut            = "cut"              // From -> To only (asymmetric): packets from From to To are dropped
	FaultHeal           = "heal"             // every partition and cut ends, degraded links restored
	FaultDegrade        = "degrade"          // From <-> To link: Latency added, Loss set
	FaultGatewayCrash   = "gateway_crash"    // Gateway (e.g. "us-east-1") or every gateway of Region stops without leaving
	FaultGatewayRestart = "gateway_restart"  // Gateway or every gateway of Region comes back
	FaultRollingRestart = "rolling_restart"  // every gateway of Region (or all regions when empty), one at a time, Every apart, each down for Down
	FaultStoreDown      = "store_down"       // Region's Store rejects every operation
	FaultStoreSlow      = "store_slow"       // Region's Store answers after Latency
	FaultStoreUp        = "store_up"         // Region's Store recovers
	FaultStoreWipe      = "store_wipe"       // Region's Store loses all its data (Redis restarted without persistence)
	FaultStoreFlaky     = "store_flaky"      // Region's Store connection resets mid-write: every write's outcome is unknown to the caller (alternately applied and not)
	FaultInstancesFail  = "instances_fail"   // Count (or Fraction) of Service's instances in Region stop answering checks
	FaultInstancesHeal  = "instances_heal"   // they answer again
	FaultInstancesFlap  = "instances_flap"   // they alternate down/up every Period until healed
	FaultInstancesSlow  = "instances_slow"   // they answer after Latency (probes may time out)
	FaultRegisterStorm  = "register_storm"   // Count new instances of Service in Region registered over Over
	FaultRegisterBad    = "register_invalid" // Count registrations of Service in Region from misconfigured clients (port 0), over Over: each must be refused
	FaultDeregister     = "deregister"       // Count instances of Service in Region deregistered (and registered again after For)
	FaultPeerRefused    = "peer_refused"     // From's gateways refuse To's gateways as catalog sources (their certificate names another region)
	FaultProbeBlocked   = "probe_blocked"    // Gateway's probes of Count (or Fraction) of Service's instances in Region time out; the other gateways' pass
	FaultRedeploy       = "redeploy"         // Count of Service's instances in Region, spread over Over, register again (same id) on the next port; each old process stops once that is acknowledged
)

// Fault is one entry of the timeline.
type Fault struct {
	At   Duration `yaml:"at"`   // when it starts (required)
	Kind string   `yaml:"kind"` // one of the Fault* constants (required)
	// For, when set, ends the fault after that long (heal, restart, store_up
	// or instances_heal, as fits the kind).
	For Duration `yaml:"for"`

	Groups   [][]string `yaml:"groups"`   // partition
	From     string     `yaml:"from"`     // cut, degrade
	To       string     `yaml:"to"`       // cut, degrade
	Region   string     `yaml:"region"`   // gateway_*, rolling_restart, store_*, instances_*, register_storm, deregister
	Gateway  string     `yaml:"gateway"`  // gateway_crash, gateway_restart: "<region>-<n>", n from 1
	Service  string     `yaml:"service"`  // instances_*, register_storm, deregister
	Count    int        `yaml:"count"`    // instances_*, register_storm, deregister
	Fraction float64    `yaml:"fraction"` // instances_*: share of the instances instead of Count
	Latency  Duration   `yaml:"latency"`  // degrade, store_slow, instances_slow
	Loss     float64    `yaml:"loss"`     // degrade
	Period   Duration   `yaml:"period"`   // instances_flap
	Every    Duration   `yaml:"every"`    // rolling_restart: time between two gateways
	Down     Duration   `yaml:"down"`     // rolling_restart: how long each one is down
	Over     Duration   `yaml:"over"`     // register_storm: spread over this long
	Line     int        `yaml:"-"`        // line in the file
}

// Metric names an Expectation can bound.
const (
	MetricAvailability   = "availability"     // share of lookups answered with at least one really alive instance; per Region/Service when given
	MetricDeadShare      = "dead_share"       // share of lookups that returned only dead instances
	MetricFailoverTime   = "failover_time"    // longest time from a local outage to lookups being served by another region
	MetricConvergenceP50 = "convergence_p50"  // registration visible in every region, p50
	MetricConvergenceP99 = "convergence_p99"  // same, p99
	MetricSyncBytes      = "sync_bytes"       // bytes moved by federation syncs
	MetricStatusWrites   = "status_writes"    // health status writes that reached the store (all regions, or one region's)
	MetricSyncFailed     = "sync_failed"      // federation fetches that failed: lost, unanswered, late or answered with an error (all regions, or the fetching region's)
	MetricLookups        = "lookups"          // number of lookups judged
	MetricUnreachable    = "unreachable_sent" // lookups sent to an unreachable region while a reachable healthy one existed
	MetricSnapshotSyncs  = "snapshot_syncs"   // fetches that asked for changes since a version and got a full snapshot (the log no longer reached back, or the store lost data)
	MetricStaleDemoted   = "stale_demoted"    // lookups routed while an allowed remote region was stale past the policy's bound (and so ranked after fresh ones)
	MetricPeerRefused    = "peer_refused"     // fetches refused by the peer check (peer_refused fault)
	MetricDeregistered   = "deregistered"     // instances deregistered (deregister faults, deregister_critical_after)
	MetricRemoteShare    = "remote_share"     // share of lookups answered by a live instance of another region than the caller's (cross-region traffic)
)

// Expectation bounds one metric: the run fails when the value is below Min
// or above Max (either may be omitted).
type Expectation struct {
	Metric  string   `yaml:"metric"`
	Region  string   `yaml:"region"`
	Service string   `yaml:"service"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
	// MaxDuration bounds a time metric (failover_time, convergence_*).
	MaxDuration Duration `yaml:"max_duration"`
	// AllowEmpty lets the expectation pass when what it measures never
	// happened (no outage for failover_time, no registration for
	// convergence_*, no lookup for availability and dead_share): without
	// it such a run fails as "not measured".
	AllowEmpty bool `yaml:"allow_empty"`
	Line       int  `yaml:"-"`
}

// Duration is a time.Duration written as a Go duration string in YAML.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses "250ms", "3m", ...
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
