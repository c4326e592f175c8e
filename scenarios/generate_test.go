package scenarios

import (
	"reflect"
	"testing"
	"time"
)

func TestGenerateValidAndDeterministic(t *testing.T) {
	kinds := map[string]int{}
	var wan, big, omits, shortLog, restartTrouble, redis int
	for seed := uint64(0); seed < 500; seed++ {
		sc := Generate(seed)
		if err := sc.Validate(); err != nil {
			t.Fatalf("seed %d: generated scenario invalid: %v", seed, err)
		}
		if again := Generate(seed); !reflect.DeepEqual(sc, again) {
			t.Fatalf("seed %d: two calls differ", seed)
		}
		if n := len(sc.Topology.Regions); n < 2 || n > 5 {
			t.Errorf("seed %d: %d regions, want 2-5", seed, n)
		}
		for _, r := range sc.Topology.Regions {
			if r.Gateways < 1 || r.Gateways > MaxGeneratedGateways {
				t.Errorf("seed %d: %d gateways", seed, r.Gateways)
			}
			if r.Gateways > 2 {
				big++
			}
		}
		if sc.Topology.GossipProfile == "wan" {
			wan++
		}
		if sc.Topology.ChangeLog > 0 {
			shortLog++
		}
		if sc.Topology.Store == StoreRedis {
			redis++
		}
		for _, tr := range sc.Traffic {
			if tr.Policy.Mode == "ordered" && len(tr.Policy.Regions) < len(sc.Topology.Regions)-1 {
				omits++
			}
		}
		for i, f := range sc.Timeline {
			if i > 0 && (sc.Timeline[i-1].Kind == FaultGatewayCrash || sc.Timeline[i-1].Kind == FaultRollingRestart) &&
				(f.Kind == FaultInstancesFlap || f.Kind == FaultProbeBlocked) && f.At == sc.Timeline[i-1].At {
				restartTrouble++
			}
		}
		for _, f := range sc.Timeline {
			// Overloaded instances come back from a crash.
			crashed := false
			for _, x := range sc.Timeline {
				crashed = crashed || x.Kind == FaultInstancesFail && x.Region == f.Region && x.Service == f.Service && x.At < f.At
			}
			if f.Kind == FaultInstancesOverload && !crashed {
				t.Errorf("seed %d: instances_overload of %s in %s at %s without a crash before", seed, f.Service, f.Region, f.At.D())
			}
		}
		if d := sc.Duration.D(); d < 5*time.Minute || d > 15*time.Minute {
			t.Errorf("seed %d: duration %s", seed, d)
		}
		if len(sc.Expect) != 0 {
			t.Errorf("seed %d: generated scenarios check invariants only", seed)
		}
		// Ends with a heal, after which the settle time stays quiet.
		heal := -1
		for i, f := range sc.Timeline {
			kinds[f.Kind]++
			if f.Kind == FaultHeal {
				heal = i
			}
		}
		if heal < 0 {
			t.Fatalf("seed %d: no final heal", seed)
		}
		healAt := sc.Timeline[heal].At
		for _, f := range sc.Timeline {
			end := f.At + f.For + f.Over
			if f.Kind == FaultRollingRestart {
				gws := 0
				for _, r := range sc.Topology.Regions {
					if f.Region == "" || r.Name == f.Region {
						gws += r.Gateways
					}
				}
				end = f.At + Duration(gws-1)*f.Every + f.Down
			}
			if end > healAt {
				t.Errorf("seed %d: %s at %s ends after the final heal at %s", seed, f.Kind, f.At.D(), healAt.D())
			}
		}
		if sc.Duration-healAt < sc.Settle {
			t.Errorf("seed %d: heal at %s leaves less than settle %s", seed, healAt.D(), sc.Settle.D())
		}
	}
	// The shapes the swarm must reach, each in some of 500 seeds.
	for name, n := range map[string]int{"wan profile": wan, "regions of 3-16 gateways": big,
		"ordered lists that omit regions": omits, "short change logs": shortLog, "restarts during checks": restartTrouble, "the Redis store": redis} {
		if n < 10 {
			t.Errorf("%s: %d in 500 seeds, want at least 10", name, n)
		}
	}
	// Swarm: every kind appears somewhere in 500 seeds.
	for _, k := range SwarmKinds {
		if kinds[k] == 0 {
			t.Errorf("fault kind %s never generated", k)
		}
	}
	if reflect.DeepEqual(Generate(1), Generate(2)) {
		t.Error("seeds 1 and 2 give the same scenario")
	}
}
