package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/scenarios"
)

func dur(d time.Duration) scenarios.Duration { return scenarios.Duration(d) }

func fptr(v float64) *float64 { return &v }

// threeRegions is a small world: three regions, two gateways each, one
// service with four instances per region, traffic from every region.
func threeRegions(d time.Duration) *scenarios.Scenario {
	sc := &scenarios.Scenario{
		Name:     "three-regions",
		Duration: dur(d),
		Topology: scenarios.Topology{
			GossipProfile: "lan",
			Regions: []scenarios.Region{
				{Name: "us-east", Gateways: 2, Zones: []string{"a", "b"}},
				{Name: "eu-west", Gateways: 2},
				{Name: "ap-south", Gateways: 2},
			},
			Network: scenarios.Network{Latency: dur(40 * time.Millisecond), Jitter: dur(5 * time.Millisecond)},
		},
		Services: []scenarios.Service{{Name: "web", Instances: 4, Interval: dur(5 * time.Second)}},
	}
	for _, r := range []string{"us-east", "eu-west", "ap-south"} {
		sc.Traffic = append(sc.Traffic, scenarios.Traffic{From: r, Service: "web", Rate: 20})
	}
	return sc
}

func runOK(t *testing.T, sc *scenarios.Scenario, opts Options) (*Result, string) {
	t.Helper()
	r, err := Run(sc, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var b bytes.Buffer
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	return r, b.String()
}

func invariant(r *Result, name string) InvariantResult {
	for _, inv := range r.Invariants {
		if inv.Name == name {
			return inv
		}
	}
	return InvariantResult{}
}

func failoverOrdered(regions ...string) failover.Policy {
	return failover.Policy{Mode: failover.ModeOrdered, Regions: regions}
}
