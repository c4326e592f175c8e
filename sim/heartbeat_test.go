package sim

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// TTL heartbeats reach the gateway that owns the check: an instance sends
// them to one fixed gateway of its region, which forwards those of checks
// the other gateway owns (region.HeartbeatRoute), and the owner's
// HealthRunner takes them. No TTL may expire in a fault-free run, and the
// forwarding path must really have been taken.
func TestHeartbeatsReachTheOwner(t *testing.T) {
	sc := &scenarios.Scenario{Name: "ttl-owners", Duration: dur(4 * time.Minute),
		Topology: scenarios.Topology{GossipProfile: "lan",
			Regions: []scenarios.Region{{Name: "us-east", Gateways: 3}, {Name: "eu-west", Gateways: 1}}},
		Services: []scenarios.Service{{Name: "api", Instances: 12, Check: "ttl", Interval: dur(6 * time.Second)}},
		Traffic:  []scenarios.Traffic{{From: "us-east", Service: "api", Rate: 5}},
	}
	w := testWorld(t, sc, 3)
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	if w.m.heartbeatsForwarded == 0 {
		t.Fatalf("no heartbeat was forwarded to its check's owner: the test did not exercise the owner path")
	}
	if w.m.heartbeatFailed != 0 || w.m.statusWrites != 0 {
		t.Fatalf("heartbeats failed %d times and %d status writes happened; want none in a fault-free run",
			w.m.heartbeatFailed, w.m.statusWrites)
	}
	for _, rs := range w.regions {
		snap, err := rs.store.Snapshot(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range snap.Instances {
			if in.Status != region.StatusPassing {
				t.Errorf("%s in %s: status %q (%s), want passing", in.Key(), rs.name, in.Status, in.Output)
			}
		}
	}
	t.Logf("%d heartbeats forwarded to the owner", w.m.heartbeatsForwarded)
}
