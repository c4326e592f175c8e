package failover

import (
	"time"

	"github.com/meridian-sd/meridian/region"
)

// Endpoint is an instance as routed: the instance's fields, plus its region
// and priority (0 is the most preferred).
type Endpoint struct {
	region.Instance
	Region   string `json:"region"`
	Priority int    `json:"priority"`
}

// RegionView is what the router knows of one region for one service.
type RegionView struct {
	Name      string
	Instances []region.Instance // the service's instances, every status
	Version   uint64
	Stale     bool          // the replica may be out of date
	Age       time.Duration // since the replica's last successful sync (0 for the local region)
	Reachable bool          // an alive gateway of the region is known
	RTT       time.Duration // Serf coordinate estimate from the caller's gateway
	HasRTT    bool
}

// Mode names a routing policy.
type Mode string

// Policies.
const (
	// ModeLocal: the caller's region first (its zone before its other
	// zones), then the other regions by RTT.
	ModeLocal Mode = "local"
	// ModeOrdered: the caller's region, then Policy.Regions in order.
	ModeOrdered Mode = "ordered"
	// ModeNearest: the caller's region, then the Policy.NearestN nearest
	// regions by RTT.
	ModeNearest Mode = "nearest"
)

// Policy configures routing for a service or a query.
type Policy struct {
	Mode     Mode     `json:"mode" yaml:"mode"`
	Regions  []string `json:"regions,omitempty" yaml:"regions"`     // ModeOrdered
	NearestN int      `json:"nearest_n,omitempty" yaml:"nearest_n"` // ModeNearest (default 2)
	// Overprovisioning: a priority keeps all traffic while
	// healthy% x Overprovisioning >= 100% (Envoy's 1.4 default).
	Overprovisioning float64 `json:"overprovisioning,omitempty" yaml:"overprovisioning"`
	// PanicThreshold: when the healthy share across all priorities is
	// below it (default 0.5), route across all instances ignoring health.
	// Zero after defaults means never panic is not expressible; use a tiny
	// value instead.
	PanicThreshold float64 `json:"panic_threshold,omitempty" yaml:"panic_threshold"`
	// StalenessBound: replicas older than this rank after fresh ones
	// (default 30s; 0 after defaults is not expressible).
	StalenessBound time.Duration `json:"staleness_bound,omitempty" yaml:"staleness_bound"`
	// ZonePreference splits the local region into the caller's zone
	// (priority 0) and the rest (default true). A pointer so that false
	// can be said.
	ZonePreference *bool `json:"zone_preference,omitempty" yaml:"zone_preference"`
}

// Request is one lookup to route.
type Request struct {
	Service    string
	FromRegion string
	FromZone   string
	Tags       []string // instances must carry all of them
	Policy     Policy
	Limit      int // at most this many endpoints (0: all)
}

// Decision is where a lookup goes, and why.
type Decision struct {
	// Endpoints in order of preference; each carries its region and
	// priority.
	Endpoints []Endpoint `json:"endpoints"`
	// Shares is the fraction of traffic per region; it sums to 1 when
	// there are endpoints.
	Shares map[string]float64 `json:"shares"`
	// Failover is true when any traffic leaves the caller's region.
	Failover bool `json:"failover"`
	// Panic is true when health was ignored (below the panic threshold).
	Panic bool `json:"panic"`
	// Explanation says in words what was decided and why.
	Explanation string `json:"explanation"`
	// StaleRegions lists the regions whose data was stale, sorted.
	StaleRegions []string `json:"stale_regions"`
	// PriorityShares is the fraction of traffic per priority level (index
	// = Endpoint.Priority); Shares is its sum per region. A driver draws a
	// level with Level and then picks an endpoint within it, so that a
	// 0.6% spillover stays 0.6% whatever the picker.
	PriorityShares []float64 `json:"priority_shares,omitempty"`
}
