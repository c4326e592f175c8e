package sim

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// benchScenario is the performance scenario: 5 regions x 2
// gateways, 50 services x 10 instances per service per region (2,500
// instances per region, 12,500 in all), 100 lookups/s per region (2/s per
// service), one simulated hour, lan profile.
func benchScenario(d time.Duration) *scenarios.Scenario {
	sc := &scenarios.Scenario{Name: "bench-hour", Duration: dur(d),
		Topology: scenarios.Topology{GossipProfile: "lan"}}
	regions := []string{"us-east", "us-west", "eu-west", "eu-central", "ap-south"}
	for _, r := range regions {
		sc.Topology.Regions = append(sc.Topology.Regions, scenarios.Region{Name: r, Gateways: 2, Zones: []string{"a", "b", "c"}})
	}
	for s := range 50 {
		name := fmt.Sprintf("svc-%02d", s)
		sc.Services = append(sc.Services, scenarios.Service{Name: name, Instances: 10})
		for _, r := range regions {
			sc.Traffic = append(sc.Traffic, scenarios.Traffic{From: r, Service: name, Rate: 2})
		}
	}
	return sc
}

// runBench runs the scenario b.N times and reports simulated time per
// wall time and the peak heap, sampled once per simulated minute from the
// Progress callback (on the simulation's own goroutine: sim/ starts none and
// reads no clock; the wall time is the benchmark's own).
func runBench(b *testing.B, sc *scenarios.Scenario) {
	b.ReportAllocs()
	var peak uint64
	var ms runtime.MemStats
	sample := func(_, _ time.Duration) {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	var r *Result
	runtime.GC()
	for b.Loop() {
		cfg, err := prepare(sc, Options{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		w, err := newWorld(cfg, Options{Seed: 1, Progress: sample})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.run(); err != nil {
			b.Fatal(err)
		}
		r = w.result()
	}
	wall := b.Elapsed() / time.Duration(b.N)
	ratio := float64(r.Duration) / float64(wall)
	b.ReportMetric(ratio, "x_realtime")
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MB")
	b.ReportMetric(float64(r.Metrics.Lookups), "lookups")
	var inv []string
	for _, i := range r.Invariants {
		inv = append(inv, fmt.Sprintf("%s=%d", i.Name, i.Count))
	}
	b.Logf("simulated %s in %s: %.0fx real time, peak heap %.1f MB, %d lookups (availability %.4f), %d syncs, %d status writes, %d registrations (p99 %s); violations: %s",
		r.Duration, wall.Round(time.Millisecond), ratio, float64(peak)/(1<<20), r.Metrics.Lookups, r.Metrics.Availability,
		r.Metrics.Syncs, r.Metrics.StatusWrites, r.Metrics.Registrations, r.Metrics.ConvergenceP99, strings.Join(inv, " "))
	fmt.Printf("BenchmarkSim %s: %.0fx real time (target >= 360x), peak heap %.1f MB (target < 500 MB)\n", sc.Name, ratio, float64(peak)/(1<<20))
}

// BenchmarkSimHour is the target: one simulated hour of
// benchScenario in at most 10s of wall time (>= 360x) and under 500 MB.
func BenchmarkSimHour(b *testing.B) { runBench(b, benchScenario(time.Hour)) }

// BenchmarkSimHourFaults is the same world with a fault every few minutes.
func BenchmarkSimHourFaults(b *testing.B) {
	sc := benchScenario(time.Hour)
	sc.Name = "bench-hour-faults"
	sc.Timeline = []scenarios.Fault{
		{At: dur(5 * time.Minute), Kind: scenarios.FaultInstancesFail, Region: "us-east", Service: "svc-01", Fraction: 1, For: dur(5 * time.Minute)},
		{At: dur(12 * time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"ap-south"}}, For: dur(5 * time.Minute)},
		{At: dur(20 * time.Minute), Kind: scenarios.FaultGatewayCrash, Gateway: "eu-west-1", For: dur(3 * time.Minute)},
		{At: dur(25 * time.Minute), Kind: scenarios.FaultRegisterStorm, Region: "us-west", Service: "svc-02", Count: 5000, Over: dur(time.Minute)},
		{At: dur(30 * time.Minute), Kind: scenarios.FaultInstancesFlap, Region: "eu-central", Service: "svc-03", Fraction: 0.5, Period: dur(15 * time.Second), For: dur(10 * time.Minute)},
		{At: dur(42 * time.Minute), Kind: scenarios.FaultStoreDown, Region: "us-east", For: dur(2 * time.Minute)},
		{At: dur(45 * time.Minute), Kind: scenarios.FaultRollingRestart, Every: dur(30 * time.Second), Down: dur(10 * time.Second)},
	}
	runBench(b, sc)
}
