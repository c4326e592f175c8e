package scenarios

import (
	"time"
)

// Defaults applied by ApplyDefaults to fields left empty (zero).
const (
	DefaultGossipProfile = "lan"
	DefaultSettle        = 2 * time.Minute
	DefaultGateways      = 1
	DefaultZone          = "a"
	DefaultLatency       = 40 * time.Millisecond
	DefaultIntra         = time.Millisecond
	DefaultInstances     = 3
	DefaultCheck         = CheckHTTP
	DefaultInterval      = 10 * time.Second
	DefaultRate          = 10.0
	DefaultPicker        = PickerP2C
)

// DefaultStart is the simulated wall-clock time of t=0 when Start is empty.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Check kinds of a Service.
const (
	CheckHTTP = "http"
	CheckTTL  = "ttl"
)

// Picker names of a Traffic.
const (
	PickerRoundRobin = "round_robin"
	PickerWeighted   = "weighted"
	PickerP2C        = "p2c"
	PickerHash       = "hash"
)

// ApplyDefaults fills every empty field that has a documented default (see
// the package documentation). It is idempotent; Parse and Generate call it.
// Topology.AntiEntropy stays 0 when not given: the simulator then uses the
// federation core's default for the gossip profile.
func (sc *Scenario) ApplyDefaults() {
	if sc.Start.IsZero() {
		sc.Start = DefaultStart
	}
	if sc.Settle == 0 {
		sc.Settle = Duration(DefaultSettle)
	}
	t := &sc.Topology
	if t.GossipProfile == "" {
		t.GossipProfile = DefaultGossipProfile
	}
	for i := range t.Regions {
		r := &t.Regions[i]
		if r.Gateways == 0 {
			r.Gateways = DefaultGateways
		}
		if len(r.Zones) == 0 {
			r.Zones = []string{DefaultZone}
		}
	}
	if t.Network.Latency == 0 {
		t.Network.Latency = Duration(DefaultLatency)
	}
	if t.Network.Intra == 0 {
		t.Network.Intra = Duration(DefaultIntra)
	}
	for i := range sc.Services {
		s := &sc.Services[i]
		if len(s.Regions) == 0 {
			s.Regions = sc.RegionNames()
		}
		if s.Instances == 0 {
			s.Instances = DefaultInstances
		}
		if s.Check == "" {
			s.Check = DefaultCheck
		}
		if s.Interval == 0 {
			s.Interval = Duration(DefaultInterval)
		}
		if s.FailuresBeforeCritical == 0 {
			s.FailuresBeforeCritical = 1
		}
		if s.SuccessBeforePassing == 0 {
			s.SuccessBeforePassing = 1
		}
	}
	for i := range sc.Traffic {
		tr := &sc.Traffic[i]
		if tr.Zone == "" {
			if r := sc.region(tr.From); r != nil && len(r.Zones) > 0 {
				tr.Zone = r.Zones[0]
			}
		}
		if tr.Rate == 0 {
			tr.Rate = DefaultRate
		}
		if tr.Picker == "" {
			tr.Picker = DefaultPicker
		}
		tr.Policy = tr.Policy.WithDefaults()
	}
}

// RegionNames returns the regions' names in file order.
func (sc *Scenario) RegionNames() []string {
	names := make([]string, 0, len(sc.Topology.Regions))
	for _, r := range sc.Topology.Regions {
		names = append(names, r.Name)
	}
	return names
}

func (sc *Scenario) region(name string) *Region {
	for i := range sc.Topology.Regions {
		if sc.Topology.Regions[i].Name == name {
			return &sc.Topology.Regions[i]
		}
	}
	return nil
}

func (sc *Scenario) service(name string) *Service {
	for i := range sc.Services {
		if sc.Services[i].Name == name {
			return &sc.Services[i]
		}
	}
	return nil
}
