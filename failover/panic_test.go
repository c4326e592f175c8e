package failover

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// TestPanicDisregardedWhenFailoverIsHealthy: as in Envoy, the panic
// threshold is disregarded while the levels' normalized health sums to
// 100%. Found by the simulator (scenario stale-demotion): us-east 0/4
// healthy, eu-west 1/4, ap-south 4/4 is 5/12 = 42% healthy over all
// levels, below the 50% threshold, and Route used to panic and send every
// lookup to us-east's four dead instances while ap-south was fully healthy.
func TestPanicDisregardedWhenFailoverIsHealthy(t *testing.T) {
	views := []RegionView{
		rv("us-east", insts("use", "a", 0, 0, 4)),
		rv("eu-west", insts("euw", "a", 1, 0, 3)),
		rv("ap-south", insts("aps", "a", 4, 0, 0)),
	}
	req := Request{Service: "web", FromRegion: "us-east", FromZone: "a",
		Policy: Policy{Mode: ModeOrdered, Regions: []string{"eu-west", "ap-south"}}}
	d := Route(views, req)
	if d.Panic {
		t.Fatalf("panic with ap-south fully healthy: %s", d.Explanation)
	}
	if d.Shares["us-east"] != 0 || d.Shares["ap-south"] < 0.6 {
		t.Errorf("shares %v, want none to us-east and the most to ap-south (%s)", d.Shares, d.Explanation)
	}
	for _, e := range d.Endpoints {
		if e.Status == region.StatusCritical {
			t.Errorf("critical endpoint %s outside panic", e.Ref())
		}
	}

	// Below 100% normalized health the threshold still applies: 1/4
	// healthy locally and 1/4 in the only failover region is 2/8 = 25%,
	// and 0.35 + 0.35 < 1.
	views = []RegionView{
		rv("us-east", insts("use", "a", 1, 0, 3)),
		rv("ap-south", insts("aps", "a", 1, 0, 3)),
	}
	req.Policy.Regions = []string{"ap-south"}
	if d := Route(views, req); !d.Panic {
		t.Errorf("no panic at 25%% healthy and 70%% normalized health: %s", d.Explanation)
	}
	// A stale failover region still counts toward the normalized health.
	views = []RegionView{
		rv("us-east", insts("use", "a", 0, 0, 4)),
		stale(rv("ap-south", insts("aps", "a", 4, 0, 0)), time.Hour),
	}
	if d := Route(views, req); d.Panic || d.Shares["ap-south"] != 1 {
		t.Errorf("got panic %v, shares %v; want ap-south to take everything: %s", d.Panic, d.Shares, d.Explanation)
	}
}
