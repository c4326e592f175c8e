package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// A region cut off from the others: the others' replicas of it go stale
// and theirs of the others too, lookups keep being answered from the local
// region, and after the heal everything converges with no invariant broken.
func TestRegionCutOffAndHeal(t *testing.T) {
	sc := threeRegions(8 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"ap-south"}, {"us-east", "eu-west"}}},
		// Registrations in the cut-off region while it is cut off.
		{At: dur(90 * time.Second), Kind: scenarios.FaultRegisterStorm, Region: "ap-south", Service: "web", Count: 20, Over: dur(20 * time.Second)},
		{At: dur(4 * time.Minute), Kind: scenarios.FaultHeal},
	}
	sc.Expect = []scenarios.Expectation{
		{Metric: scenarios.MetricAvailability, Min: fptr(0.99)},
		{Metric: scenarios.MetricConvergenceP99, MaxDuration: dur(4 * time.Minute)},
	}
	var log bytes.Buffer
	r, sum := runOK(t, sc, Options{Seed: 7, EventLog: &log})
	t.Logf("\n%s", sum)
	if !r.Passed() {
		t.Fatalf("run failed:\n%s", sum)
	}
	if inv := invariant(r, InvNoLostAck); !inv.Checked {
		t.Fatalf("no_lost_ack was not checked: %s", inv.Note)
	}
	if r.Metrics.Registrations != 20 || len(r.Metrics.Convergence) != 20 || r.Metrics.NotConverged != 0 {
		t.Fatalf("registrations %d, converged %d, not converged %d; want 20, 20, 0",
			r.Metrics.Registrations, len(r.Metrics.Convergence), r.Metrics.NotConverged)
	}
	// The registrations made during the partition became visible only
	// after the heal (2m30s later at least for the first).
	if r.Metrics.ConvergenceP99 < 2*time.Minute {
		t.Errorf("convergence p99 %s: registrations in a cut-off region cannot converge before the heal", r.Metrics.ConvergenceP99)
	}
	// Membership saw the cut: gateways were marked failed and alive again.
	for _, want := range []string{`"kind":"member","observer":"us-east-1","subject":"ap-south-1","status":"failed"`,
		`"kind":"member","observer":"us-east-1","subject":"ap-south-1","status":"alive"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("event log lacks %s", want)
		}
	}
}

// All of a service's instances in one region fail: lookups from there
// fail over to another region, and come home when the instances heal.
func TestServiceFailsOverAndReturns(t *testing.T) {
	sc := threeRegions(6 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "us-east", Service: "web", Fraction: 1, For: dur(2 * time.Minute)},
	}
	sc.Expect = []scenarios.Expectation{
		{Metric: scenarios.MetricFailoverTime, Region: "us-east", MaxDuration: dur(30 * time.Second)},
	}
	r, sum := runOK(t, sc, Options{Seed: 3})
	t.Logf("\n%s", sum)
	if len(r.Metrics.Failovers) != 1 {
		t.Fatalf("outages %+v, want one (us-east/web)", r.Metrics.Failovers)
	}
	f := r.Metrics.Failovers[0]
	if !f.Served || f.Region != "us-east" || f.Service != "web" {
		t.Fatalf("outage %+v: want us-east/web served by another region", f)
	}
	// Detection takes at least one failed probe (interval 5s, timeout 2s).
	if f.Time < time.Second || f.Time > 30*time.Second {
		t.Errorf("failover time %s, want within (1s, 30s]", f.Time)
	}
	if !r.Passed() {
		t.Errorf("run failed:\n%s", sum)
	}
	var us RouteMetrics
	for _, rm := range r.Metrics.PerRoute {
		if rm.Region == "us-east" {
			us = rm
		}
	}
	if us.Failover == 0 || us.Failover > us.Lookups/2 {
		t.Errorf("us-east failover lookups %d of %d: want some, and not most (it came home)", us.Failover, us.Lookups)
	}
	// After the heal, lookups from us-east are local again: the last
	// buckets of the timeline have full availability and the summary has
	// the status changes back.
	row := r.Timeline.Availability[0]
	if last := row[len(row)-1]; last != 1 {
		t.Errorf("last availability bucket of us-east = %v, want 1", last)
	}
}

// A gateway crash moves its checks to the region's other gateway, which
// then writes the status of an instance that failed.
func TestGatewayCrashMovesCheckOwnership(t *testing.T) {
	sc := threeRegions(5 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultGatewayCrash, Gateway: "eu-west-1"},
		{At: dur(2 * time.Minute), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Count: 4},
	}
	var log bytes.Buffer
	r, sum := runOK(t, sc, Options{Seed: 5, EventLog: &log})
	t.Logf("\n%s", sum)
	if !strings.Contains(log.String(), `"kind":"shard","gateway":"eu-west-2","gateways":["eu-west-2"]`) {
		t.Fatalf("eu-west-2 never took over the checks of eu-west-1:\n%s", grep(log.String(), "shard"))
	}
	// All four failures were written by eu-west-2 (the only one running).
	n := strings.Count(log.String(), `"kind":"status","region":"eu-west"`)
	if n != 4 {
		t.Errorf("%d status changes in eu-west, want 4 (each failed instance marked critical):\n%s", n, grep(log.String(), `"status"`))
	}
	if r.Metrics.StatusWrites < 4 {
		t.Errorf("status writes %d, want >= 4", r.Metrics.StatusWrites)
	}
}

// With its store down, a region keeps answering lookups from its
// gateways' caches, and other regions keep syncing from those caches.
func TestStoreDownKeepsServingReads(t *testing.T) {
	sc := threeRegions(5 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultStoreDown, Region: "eu-west", For: dur(2 * time.Minute)},
		// The instances fail while the store is down: no status can be written.
		{At: dur(90 * time.Second), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Count: 1},
	}
	sc.Expect = []scenarios.Expectation{{Metric: scenarios.MetricAvailability, Region: "eu-west", Min: fptr(0.97)}}
	var log bytes.Buffer
	r, sum := runOK(t, sc, Options{Seed: 11, EventLog: &log})
	t.Logf("\n%s", sum)
	if !r.Passed() {
		t.Fatalf("run failed:\n%s", sum)
	}
	// The failed instance's critical status is written once the store is back.
	lines := grep(log.String(), `"kind":"status","region":"eu-west"`)
	if !strings.Contains(lines, `"t":"3m0`) && !strings.Contains(lines, `"t":"3m1`) {
		t.Errorf("status write in eu-west should land right after the store came back at 3m:\n%s", lines)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A TTL instance that stops heartbeating turns critical after its TTL and
// is deregistered after deregister_critical_after; everybody converges.
func TestTTLExpiryAndDeregistration(t *testing.T) {
	sc := threeRegions(5 * time.Minute)
	sc.Services = []scenarios.Service{{Name: "web", Instances: 3, Check: "ttl", Interval: dur(10 * time.Second),
		DeregisterCriticalAfter: dur(time.Minute)}}
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "web", Count: 1}}
	var log bytes.Buffer
	r, sum := runOK(t, sc, Options{Seed: 12, EventLog: &log})
	t.Logf("\n%s", sum)
	if r.Metrics.Deregistered != 1 {
		t.Fatalf("deregistered %d, want 1:\n%s", r.Metrics.Deregistered, grep(log.String(), "web-eu-west-1"))
	}
	st := grep(log.String(), `"instance":"web/web-eu-west-1"`)
	// Critical between 1m10s and 1m16s (TTL 10s after the last heartbeat,
	// sent every 5s), deregistered a minute later.
	if !strings.Contains(st, `"kind":"status","region":"eu-west","instance":"web/web-eu-west-1","from":"passing","to":"critical"`) ||
		!strings.Contains(st, `"kind":"deregister"`) {
		t.Fatalf("missing critical status or deregistration:\n%s", st)
	}
	if !r.Passed() {
		t.Fatalf("run failed:\n%s", sum)
	}
}

// A storm of thousands of registrations converges everywhere.
func TestRegisterStorm(t *testing.T) {
	sc := threeRegions(5 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultRegisterStorm, Region: "us-east", Service: "web", Count: 2000, Over: dur(20 * time.Second)},
		{At: dur(100 * time.Second), Kind: scenarios.FaultDeregister, Region: "us-east", Service: "web", Count: 500}}
	r, sum := runOK(t, sc, Options{Seed: 13})
	t.Logf("\n%s", sum)
	m := r.Metrics
	if m.Registrations != 2000 || len(m.Convergence) != 2000 || m.NotConverged != 0 || m.Deregistered != 500 {
		t.Fatalf("registrations %d converged %d not converged %d deregistered %d", m.Registrations, len(m.Convergence), m.NotConverged, m.Deregistered)
	}
	if m.ConvergenceP99 > 5*time.Second {
		t.Errorf("convergence p99 %s, want a few seconds at most (lan gossip, 40ms links)", m.ConvergenceP99)
	}
	if inv := invariant(r, InvNoLostAck); !inv.Checked || !r.Passed() {
		t.Fatalf("no_lost_ack %+v; run:\n%s", inv, sum)
	}
}
