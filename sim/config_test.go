package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// A scenario built in code with only the required fields runs with the
// documented defaults.
func TestDefaults(t *testing.T) {
	sc := &scenarios.Scenario{Duration: dur(2 * time.Minute),
		Topology: scenarios.Topology{Regions: []scenarios.Region{{Name: "r1"}, {Name: "r2"}}},
		Services: []scenarios.Service{{Name: "web"}},
		Traffic:  []scenarios.Traffic{{From: "r1", Service: "web"}}}
	cfg, err := prepare(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.profile.Name != "lan" || cfg.settle != 2*time.Minute || !cfg.start.Equal(defaultStart) {
		t.Errorf("profile %s settle %s start %s", cfg.profile.Name, cfg.settle, cfg.start)
	}
	if cfg.regions[0].gateways != 1 || cfg.regions[0].zones[0] != "a" || cfg.net.latency[0][1] != 40*time.Millisecond || cfg.net.intra != time.Millisecond {
		t.Errorf("topology defaults: %+v %+v", cfg.regions[0], cfg.net)
	}
	s := cfg.services[0]
	if s.instances != 3 || len(s.regions) != 2 || s.check.Kind() != "http" || s.check.Interval.Std() != 10*time.Second {
		t.Errorf("service defaults: %+v", s)
	}
	tr := cfg.traffic[0]
	if tr.rate != 10 || tr.picker != "p2c" || tr.zone != "a" || tr.policy.Mode != "local" || tr.policy.StalenessBound != 30*time.Second {
		t.Errorf("traffic defaults: %+v", tr)
	}
	var progress []time.Duration
	r, err := Run(sc, Options{Seed: 1, Progress: func(done, total time.Duration) {
		if total != 2*time.Minute {
			t.Errorf("progress total %s", total)
		}
		progress = append(progress, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 2 || progress[0] != time.Minute || progress[1] != 2*time.Minute {
		t.Errorf("progress calls %v, want [1m 2m]", progress)
	}
	// 10 lookups/s for 2 minutes.
	if r.Metrics.Lookups < 1000 || r.Metrics.Lookups > 1400 || r.Metrics.Availability != 1 {
		t.Errorf("lookups %d availability %v", r.Metrics.Lookups, r.Metrics.Availability)
	}
	if r.Scenario != "unnamed" || r.Duration != 2*time.Minute {
		t.Errorf("result %q %s", r.Scenario, r.Duration)
	}
	// Options.Duration overrides the scenario's.
	r, err = Run(sc, Options{Seed: 1, Duration: 30 * time.Second})
	if err != nil || r.Duration != 30*time.Second {
		t.Fatalf("duration override: %v %v", r, err)
	}
}

func TestInvalidScenarios(t *testing.T) {
	base := func() *scenarios.Scenario {
		return &scenarios.Scenario{Duration: dur(time.Minute),
			Topology: scenarios.Topology{Regions: []scenarios.Region{{Name: "r1", Gateways: 2}, {Name: "r2"}}},
			Services: []scenarios.Service{{Name: "web"}},
			Traffic:  []scenarios.Traffic{{From: "r1", Service: "web"}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*scenarios.Scenario)
		want string
	}{
		{"no duration", func(s *scenarios.Scenario) { s.Duration = 0 }, "duration"},
		{"no regions", func(s *scenarios.Scenario) { s.Topology.Regions = nil }, "topology.regions"},
		{"dup region", func(s *scenarios.Scenario) { s.Topology.Regions[1].Name = "r1" }, "given twice"},
		{"bad profile", func(s *scenarios.Scenario) { s.Topology.GossipProfile = "xxl" }, "gossip_profile"},
		{"unknown traffic region", func(s *scenarios.Scenario) { s.Traffic[0].From = "r9" }, `traffic[0].from: unknown region "r9"`},
		{"unknown traffic service", func(s *scenarios.Scenario) { s.Traffic[0].Service = "api" }, `traffic[0].service`},
		{"bad picker", func(s *scenarios.Scenario) { s.Traffic[0].Picker = "random" }, "picker"},
		{"bad zone", func(s *scenarios.Scenario) { s.Traffic[0].Zone = "z" }, "zone"},
		{"bad check", func(s *scenarios.Scenario) { s.Services[0].Check = "grpc" }, "check"},
		{"loss", func(s *scenarios.Scenario) { s.Topology.Network.Loss = 1 }, "loss"},
		{"unknown fault", func(s *scenarios.Scenario) {
			s.Timeline = []scenarios.Fault{{Kind: "meteor"}}
		}, "unknown fault kind"},
		{"bad gateway", func(s *scenarios.Scenario) {
			s.Timeline = []scenarios.Fault{{Kind: scenarios.FaultGatewayCrash, Gateway: "r2-2"}}
		}, "r2-2"},
		{"flap without period", func(s *scenarios.Scenario) {
			s.Timeline = []scenarios.Fault{{Kind: scenarios.FaultInstancesFlap, Region: "r1", Service: "web", Count: 1}}
		}, "period"},
		{"unknown metric", func(s *scenarios.Scenario) {
			s.Expect = []scenarios.Expectation{{Metric: "latency", Max: fptr(1)}}
		}, "unknown metric"},
		{"unbounded expectation", func(s *scenarios.Scenario) {
			s.Expect = []scenarios.Expectation{{Metric: scenarios.MetricLookups}}
		}, "bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := base()
			tc.mod(sc)
			_, err := Run(sc, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := Run(nil, Options{}); err == nil {
		t.Fatal("nil scenario accepted")
	}
}

func TestExpectations(t *testing.T) {
	sc := threeRegions(2 * time.Minute)
	sc.Expect = []scenarios.Expectation{
		{Metric: scenarios.MetricLookups, Region: "us-east", Min: fptr(1000), Max: fptr(5000)},
		{Metric: scenarios.MetricAvailability, Service: "web", Min: fptr(1.5)},
		{Metric: scenarios.MetricSyncBytes, Max: fptr(1)},
		{Metric: scenarios.MetricDeadShare, Max: fptr(0)},
	}
	r, _ := runOK(t, sc, Options{Seed: 1})
	want := []bool{true, false, false, true}
	for i, e := range r.Expectations {
		if e.Pass != want[i] {
			t.Errorf("expectation %d: %s: pass %v, want %v", i, e.Message, e.Pass, want[i])
		}
	}
	if m := r.Expectations[1].Message; m != "availability{service=web} = 1, want >= 1.5" {
		t.Errorf("message %q", m)
	}
	if !strings.HasPrefix(r.Expectations[0].Message, "lookups{region=us-east} = ") || r.Passed() {
		t.Errorf("message %q, passed %v", r.Expectations[0].Message, r.Passed())
	}
}
