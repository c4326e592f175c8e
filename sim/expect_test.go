package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// A partition loses fetches (requests and responses that never arrive,
// which the core times out): sync_failed counts them, and a bound on it
// fails the run. A quiet run loses none.
func TestSyncFailedCounted(t *testing.T) {
	sc := twoRegions(4 * time.Minute)
	sc.Expect = []scenarios.Expectation{{Metric: scenarios.MetricSyncFailed, Max: fptr(0)},
		{Metric: scenarios.MetricSyncFailed, Region: "us-east", Max: fptr(0)}}
	r, _ := runOK(t, sc, Options{Seed: 1})
	if r.Metrics.SyncFailed != 0 || !r.Passed() {
		t.Fatalf("quiet run: sync_failed %d, passed %v: %+v", r.Metrics.SyncFailed, r.Passed(), r.Expectations)
	}
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}, For: dur(time.Minute)}}
	r, sum := runOK(t, sc, Options{Seed: 1})
	if r.Metrics.SyncFailed == 0 {
		t.Fatalf("a 1m partition lost no fetch:\n%s", sum)
	}
	for _, e := range r.Expectations {
		if e.Pass {
			t.Errorf("%s passed", e.Message)
		}
	}
	if r.Expectations[1].Value == 0 || r.Expectations[1].Value > float64(r.Metrics.SyncFailed) {
		t.Errorf("us-east's sync_failed %v, total %d", r.Expectations[1].Value, r.Metrics.SyncFailed)
	}
	if !strings.Contains(sum, "failed)") || strings.Contains(sum, " 0 failed)") {
		t.Errorf("summary does not show the failures:\n%s", sum)
	}
	t.Logf("sync_failed %d (us-east %v)", r.Metrics.SyncFailed, r.Expectations[1].Value)
}

// An expectation over nothing (no outage, no registration, no lookup)
// fails as not measured unless it allows it.
func TestEmptyExpectationNotMeasured(t *testing.T) {
	sc := twoRegions(2 * time.Minute)
	sc.Services = append(sc.Services, scenarios.Service{Name: "idle", Instances: 2})
	sc.Expect = []scenarios.Expectation{
		{Metric: scenarios.MetricFailoverTime, MaxDuration: dur(time.Millisecond)},
		{Metric: scenarios.MetricConvergenceP99, MaxDuration: dur(time.Millisecond)},
		{Metric: scenarios.MetricAvailability, Service: "idle", Min: fptr(1)},
		{Metric: scenarios.MetricDeadShare, Service: "idle", Max: fptr(0)},
		{Metric: scenarios.MetricLookups, Service: "idle", Max: fptr(0)}, // a count: 0 is a measurement
		{Metric: scenarios.MetricAvailability, Service: "web", Min: fptr(0.99)},
	}
	r, _ := runOK(t, sc, Options{Seed: 1})
	want := []bool{false, false, false, false, true, true}
	for i, e := range r.Expectations {
		if e.Pass != want[i] {
			t.Errorf("%s: pass %v, want %v", e.Message, e.Pass, want[i])
		}
		if !want[i] && !strings.Contains(e.Message, "not measured") {
			t.Errorf("message %q does not say not measured", e.Message)
		}
	}
	for i := range sc.Expect {
		sc.Expect[i].AllowEmpty = true
	}
	r, _ = runOK(t, sc, Options{Seed: 1})
	for _, e := range r.Expectations {
		if !e.Pass {
			t.Errorf("allow_empty: %s failed", e.Message)
		}
	}
	// allow_empty does not excuse a measured value out of bounds.
	sc.Timeline = []scenarios.Fault{{At: dur(30 * time.Second), Kind: scenarios.FaultRegisterStorm, Region: "eu-west", Service: "web", Count: 5}}
	r, _ = runOK(t, sc, Options{Seed: 1})
	if e := r.Expectations[1]; e.Pass || strings.Contains(e.Message, "not measured") {
		t.Errorf("convergence measured with allow_empty: %s (pass %v)", e.Message, e.Pass)
	}
}

// A Duration that ends before a fault is an error unless Truncate says so.
func TestDurationCutsTimeline(t *testing.T) {
	sc := twoRegions(4 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(2 * time.Minute), Kind: scenarios.FaultGatewayCrash, Region: "eu-west", For: dur(10 * time.Second)}}
	if _, err := Run(sc, Options{Seed: 1, Duration: time.Minute}); err == nil || !strings.Contains(err.Error(), "timeline[0]") {
		t.Fatalf("a 1m run of a timeline with a fault at 2m: err %v", err)
	}
	if _, err := Run(sc, Options{Seed: 1, Duration: time.Minute, Truncate: true}); err != nil {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := Run(sc, Options{Seed: 1, Duration: 3 * time.Minute}); err != nil {
		t.Fatalf("a 3m run keeps the fault: %v", err)
	}
}
