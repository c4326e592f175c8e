package failover

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// insts returns passing, then warning, then critical instances of web with
// ids prefix-00, prefix-01, ... in zone.
func insts(prefix, zone string, passing, warning, critical int, tags ...string) []region.Instance {
	var out []region.Instance
	add := func(n int, st region.Status) {
		for range n {
			out = append(out, region.Instance{
				ID: fmt.Sprintf("%s-%02d", prefix, len(out)), Service: "web", Address: "10.0.0.1",
				Port: 8080 + len(out), Zone: zone, Tags: tags, Weight: 100, Status: st,
			})
		}
	}
	add(passing, region.StatusPassing)
	add(warning, region.StatusWarning)
	add(critical, region.StatusCritical)
	return out
}

// rv is a reachable, fresh region view without an RTT estimate.
// rv builds a reachable region's view; instances written without a weight
// get region.DefaultWeight (weight 0 is drained: build those with drained).
func rv(name string, groups ...[]region.Instance) RegionView {
	v := RegionView{Name: name, Reachable: true}
	for _, g := range groups {
		for _, in := range g {
			if in.Weight == 0 {
				in.Weight = region.DefaultWeight
			}
			v.Instances = append(v.Instances, in)
		}
	}
	return v
}

// drained adds instances with weight 0 to a view.
func drained(v RegionView, ins ...region.Instance) RegionView {
	for _, in := range ins {
		in.Weight = 0
		v.Instances = append(v.Instances, in)
	}
	return v
}

func rtt(v RegionView, d time.Duration) RegionView { v.RTT, v.HasRTT = d, true; return v }
func stale(v RegionView, age time.Duration) RegionView {
	v.Stale, v.Age = true, age
	return v
}
func unreachable(v RegionView) RegionView { v.Reachable = false; return v }

func boolp(b bool) *bool { return &b }

// eps renders endpoints as "region/id@priority".
func epStrings(eps []Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = fmt.Sprintf("%s/%s@%d", e.Region, e.ID, e.Priority)
	}
	return out
}

func sharesEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || math.Abs(v-w) > 1e-9 {
			return false
		}
	}
	return true
}

func TestRoute(t *testing.T) {
	web := func(from, zone string, pol Policy) Request {
		return Request{Service: "web", FromRegion: from, FromZone: zone, Policy: pol}
	}
	nearest := Policy{Mode: ModeNearest}
	tiny := 0.001 // a panic threshold that never triggers in these cases

	tests := []struct {
		name         string
		views        []RegionView
		req          Request
		shares       map[string]float64
		failover     bool
		panic        bool
		endpoints    []string // nil: not checked
		prioShares   []float64
		stale        []string
		explain      string   // exact, when set
		explainHas   []string // substrings
		explainHasnt []string
	}{
		{
			name:      "3/4 healthy local: 105% >= 100%, no spill",
			views:     []RegionView{rv("us-east", insts("use", "a", 3, 0, 1)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:       web("us-east", "", Policy{}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/use-00@0", "us-east/use-01@0", "us-east/use-02@0"},
			explain:   "us-east has 3/4 healthy (75%) x 1.4 = 105% >= 100%: all traffic stays local.",
		},
		{
			name:       "5/7 healthy: 71.43% x 1.4 = 100% exactly, no spill",
			views:      []RegionView{rv("us-east", insts("use", "a", 5, 0, 2)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:        web("us-east", "", Policy{}),
			shares:     map[string]float64{"us-east": 1},
			prioShares: []float64{1, 0},
			explain:    "us-east has 5/7 healthy (71.43%) x 1.4 = 100% >= 100%: all traffic stays local.",
		},
		{
			name:       "71/100 healthy: 99.4%, spills 0.6%",
			views:      []RegionView{rv("us-east", insts("use", "a", 71, 0, 29)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:        web("us-east", "", Policy{}),
			shares:     map[string]float64{"us-east": 0.994, "eu-west": 0.006},
			failover:   true,
			prioShares: []float64{0.994, 0.006},
			explain:    "us-east: 71/100 instances healthy (71%) x 1.4 = 99.4% < 100%: keeps 99.4%, spills 0.6% to eu-west (RTT 12ms, 3/3 healthy). shares: us-east 99.4%, eu-west 0.6%.",
		},
		{
			name:      "1/4 healthy spills 65% to the nearest region",
			views:     []RegionView{rv("us-east", insts("use", "a", 1, 0, 3)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:       web("us-east", "", nearest),
			shares:    map[string]float64{"us-east": 0.35, "eu-west": 0.65},
			failover:  true,
			endpoints: []string{"us-east/use-00@0", "eu-west/euw-00@1", "eu-west/euw-01@1", "eu-west/euw-02@1"},
			explain:   "us-east: 1/4 instances healthy (25%) x 1.4 = 35% < 100%: keeps 35%, spills 65% to eu-west (nearest by RTT 12ms, 3/3 healthy). shares: us-east 35%, eu-west 65%.",
		},
		{
			name:       "total availability below 100%: shares scaled up",
			views:      []RegionView{rv("us-east", insts("use", "a", 1, 0, 4)), rtt(rv("eu-west", insts("euw", "a", 1, 0, 4)), 12*time.Millisecond)},
			req:        web("us-east", "", Policy{PanicThreshold: tiny}),
			shares:     map[string]float64{"us-east": 0.5, "eu-west": 0.5},
			failover:   true,
			prioShares: []float64{0.5, 0.5},
			explain: "total availability is only 56% (< 100%): shares are scaled up to sum to 100%. " +
				"us-east: 1/5 instances healthy (20%) x 1.4 = 28% (scaled: 50%) < 100%: keeps 50%, spills 50% to eu-west (RTT 12ms, 1/5 healthy). " +
				"shares: us-east 50%, eu-west 50%.",
		},
		{
			name: "zone preference: the caller's zone first",
			views: []RegionView{rv("us-east", insts("a", "a", 2, 0, 0), insts("b", "b", 2, 0, 0)),
				rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:        web("us-east", "b", Policy{}),
			shares:     map[string]float64{"us-east": 1},
			endpoints:  []string{"us-east/b-00@0", "us-east/b-01@0"},
			prioShares: []float64{1, 0, 0},
			explain:    "us-east zone b has 2/2 healthy: all traffic stays local.",
		},
		{
			name: "zone preference: a weak zone spills to the other zones, not out of the region",
			views: []RegionView{rv("us-east", insts("a", "a", 3, 0, 0), insts("b", "b", 1, 0, 2)),
				rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:        web("us-east", "b", Policy{}),
			shares:     map[string]float64{"us-east": 1},
			endpoints:  []string{"us-east/b-00@0", "us-east/a-00@1", "us-east/a-01@1", "us-east/a-02@1"},
			prioShares: []float64{1.4 / 3, 1 - 1.4/3, 0},
			explain:    "us-east zone b: 1/3 instances healthy (33.33%) x 1.4 = 46.67% < 100%: keeps 46.67%, spills 53.33% to us-east other zones (3/3 healthy).",
		},
		{
			name: "zone preference off: the whole region is one level",
			views: []RegionView{rv("us-east", insts("a", "a", 2, 0, 0), insts("b", "b", 2, 0, 0)),
				rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:       web("us-east", "b", Policy{ZonePreference: boolp(false)}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/a-00@0", "us-east/a-01@0", "us-east/b-00@0", "us-east/b-01@0"},
		},
		{
			name: "zone preference with no instances in the caller's zone",
			views: []RegionView{rv("us-east", insts("a", "a", 2, 0, 0)),
				rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:       web("us-east", "c", Policy{}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/a-00@0", "us-east/a-01@0"},
			explain:   "us-east has 2/2 healthy: all traffic stays local.",
		},
		{
			name: "ordered list: listed regions in order; unknown, duplicate and local names skipped; others unused",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				rtt(rv("us-west", insts("usw", "a", 2, 0, 0)), time.Millisecond),
				rtt(rv("eu-west", insts("euw", "a", 2, 0, 0)), 80*time.Millisecond),
				rtt(rv("ap-south", insts("aps", "a", 2, 0, 0)), 200*time.Millisecond)},
			req:        web("us-east", "", Policy{Mode: ModeOrdered, Regions: []string{"mars", "us-east", "ap-south", "ap-south", "eu-west"}}),
			shares:     map[string]float64{"ap-south": 1},
			failover:   true,
			endpoints:  []string{"ap-south/aps-00@1", "ap-south/aps-01@1"},
			prioShares: []float64{0, 1, 0},
			explain:    "us-east has 0/2 instances healthy: passes 100% on to ap-south (failover list #3, 2/2 healthy). ap-south takes all of it.",
		},
		{
			name: "nearest 2 by RTT: the third nearest and regions without RTT are not used",
			views: []RegionView{rv("us-east", insts("use", "a", 1, 0, 3)),
				rtt(rv("far", insts("far", "a", 3, 0, 0)), 100*time.Millisecond),
				rtt(rv("near1", insts("n1", "a", 1, 0, 2)), 10*time.Millisecond),
				rtt(rv("near2", insts("n2", "a", 3, 0, 0)), 20*time.Millisecond),
				rv("nortt", insts("nr", "a", 3, 0, 0))},
			req:        web("us-east", "", nearest),
			shares:     map[string]float64{"us-east": 0.35, "near1": 1.4 / 3, "near2": 0.65 - 1.4/3},
			failover:   true,
			prioShares: []float64{0.35, 1.4 / 3, 0.65 - 1.4/3},
			endpoints:  []string{"us-east/use-00@0", "near1/n1-00@1", "near2/n2-00@2", "near2/n2-01@2", "near2/n2-02@2"},
			explain: "us-east: 1/4 instances healthy (25%) x 1.4 = 35% < 100%: keeps 35%, spills 65% to near1 (nearest by RTT 10ms, 1/3 healthy). " +
				"near1: 1/3 instances healthy (33.33%) x 1.4 = 46.67% < 65% sent to it: keeps 46.67%, spills 18.33% to near2 (nearest by RTT 20ms, 3/3 healthy). " +
				"shares: us-east 35%, near1 46.67%, near2 18.33%.",
		},
		{
			name: "local mode: all other regions by RTT, those without an estimate last by name",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				rv("zz", insts("zz", "a", 1, 0, 3)), rv("aa", insts("aa", "a", 1, 0, 3)),
				rtt(rv("b", insts("b", "a", 1, 0, 3)), 50*time.Millisecond),
				rtt(rv("c", insts("c", "a", 1, 0, 3)), 5*time.Millisecond)},
			req:        web("us-east", "", Policy{PanicThreshold: tiny}),
			shares:     map[string]float64{"c": 0.35, "b": 0.35, "aa": 0.30},
			failover:   true,
			prioShares: []float64{0, 0.35, 0.35, 0.30, 0},
			endpoints:  []string{"c/c-00@1", "b/b-00@2", "aa/aa-00@3"},
		},
		{
			name: "stale region older than the bound ranks after a fresher one",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				stale(rtt(rv("eu-west", insts("euw", "a", 2, 0, 0)), 5*time.Millisecond), 45*time.Second),
				stale(rtt(rv("eu-north", insts("eun", "a", 2, 0, 0)), 40*time.Millisecond), 10*time.Second),
				rtt(rv("ap-south", insts("aps", "a", 2, 0, 0)), 80*time.Millisecond)},
			req:        web("us-east", "", Policy{}),
			shares:     map[string]float64{"eu-north": 1},
			failover:   true,
			prioShares: []float64{0, 1, 0, 0},
			stale:      []string{"eu-north", "eu-west"},
			explainHas: []string{"eu-north (RTT 40ms, stale 10s (within the 30s bound), 2/2 healthy)"},
		},
		{
			name: "stale order: demoted regions keep their RTT order after the fresh ones",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				stale(rtt(rv("s1", insts("s1", "a", 1, 0, 3)), 5*time.Millisecond), time.Minute),
				stale(rtt(rv("s2", insts("s2", "a", 1, 0, 3)), 6*time.Millisecond), time.Minute),
				rtt(rv("f1", insts("f1", "a", 1, 0, 3)), 90*time.Millisecond)},
			req:        web("us-east", "", Policy{PanicThreshold: tiny, StalenessBound: 20 * time.Second}),
			shares:     map[string]float64{"f1": 0.35, "s1": 0.35, "s2": 0.30},
			failover:   true,
			endpoints:  []string{"f1/f1-00@1", "s1/s1-00@2", "s2/s2-00@3"},
			stale:      []string{"s1", "s2"},
			explainHas: []string{"s1 (RTT 5ms, stale 1m0s > 20s bound: ranked after fresh regions, 1/4 healthy)"},
		},
		{
			name: "unreachable ranks last of all, after stale",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				unreachable(rtt(rv("u", insts("u", "a", 1, 0, 3)), time.Millisecond)),
				stale(rtt(rv("s", insts("s", "a", 1, 0, 3)), 2*time.Millisecond), time.Minute),
				rtt(rv("f", insts("f", "a", 1, 0, 3)), 90*time.Millisecond)},
			req: web("us-east", "", Policy{PanicThreshold: tiny}),
			// u is never spilled into while f and s have healthy instances:
			// they take it all between them, scaled up.
			shares:     map[string]float64{"f": 0.5, "s": 0.5},
			failover:   true,
			endpoints:  []string{"f/f-00@1", "s/s-00@2"},
			stale:      []string{"s"},
			explainHas: []string{"u (RTT 1ms, unreachable: ranked last, 1/4 healthy) gets no traffic"},
		},
		{
			name: "unreachable region takes traffic when no reachable one has healthy instances",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				unreachable(rtt(rv("u", insts("u", "a", 2, 0, 0)), time.Millisecond)),
				rtt(rv("f", insts("f", "a", 0, 0, 2)), 90*time.Millisecond)},
			req:       web("us-east", "", Policy{PanicThreshold: tiny}),
			shares:    map[string]float64{"u": 1},
			failover:  true,
			endpoints: []string{"u/u-00@2", "u/u-01@2"},
		},
		{
			name: "nearest: demotion happens before the N cut",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 2)),
				unreachable(rtt(rv("u", insts("u", "a", 2, 0, 0)), time.Millisecond)),
				rtt(rv("f1", insts("f1", "a", 2, 0, 0)), 50*time.Millisecond),
				rtt(rv("f2", insts("f2", "a", 2, 0, 0)), 60*time.Millisecond)},
			req:        web("us-east", "", nearest),
			shares:     map[string]float64{"f1": 1},
			failover:   true,
			prioShares: []float64{0, 1, 0},
		},
		{
			name:       "panic exactly at the threshold: not panic",
			views:      []RegionView{rv("us-east", insts("use", "a", 5, 0, 5))},
			req:        web("us-east", "", Policy{}),
			shares:     map[string]float64{"us-east": 1},
			endpoints:  []string{"us-east/use-00@0", "us-east/use-01@0", "us-east/use-02@0", "us-east/use-03@0", "us-east/use-04@0"},
			explainHas: []string{"total availability is only 70% (< 100%)"},
		},
		{
			name:   "panic below the threshold: all instances, critical included",
			views:  []RegionView{rv("us-east", insts("use", "a", 4, 0, 6)), rtt(rv("eu-west", insts("euw", "a", 0, 0, 4)), time.Millisecond)},
			req:    web("us-east", "", Policy{}),
			shares: map[string]float64{"us-east": 1},
			panic:  true,
			endpoints: []string{"us-east/use-00@0", "us-east/use-01@0", "us-east/use-02@0", "us-east/use-03@0", "us-east/use-04@0",
				"us-east/use-05@0", "us-east/use-06@0", "us-east/use-07@0", "us-east/use-08@0", "us-east/use-09@0"},
			explain: "healthy share 28.57% is below the panic threshold 50%: routing to all 10 instances of us-east ignoring health.",
		},
		{
			name:  "panic counts every considered region",
			views: []RegionView{rv("us-east", insts("use", "a", 0, 0, 4)), rtt(rv("eu-west", insts("euw", "a", 4, 0, 0)), time.Millisecond)},
			req:   web("us-east", "", Policy{}),
			// 4/8 = 50%: not panic, everything spills to eu-west.
			shares:   map[string]float64{"eu-west": 1},
			failover: true,
		},
		{
			name: "tags: only instances carrying every tag count, for health too",
			views: []RegionView{rv("us-east", insts("v2", "a", 2, 0, 0, "v2"), insts("both", "a", 1, 0, 1, "v2", "canary")),
				rtt(rv("eu-west", insts("euw", "a", 2, 0, 0, "canary", "v2")), 9*time.Millisecond)},
			req: Request{Service: "web", FromRegion: "us-east", Tags: []string{"canary", "v2"}, Policy: Policy{}},
			// us-east: 1/2 healthy x 1.4 = 70%.
			shares:    map[string]float64{"us-east": 0.7, "eu-west": 0.3},
			failover:  true,
			endpoints: []string{"us-east/both-00@0", "eu-west/euw-00@1", "eu-west/euw-01@1"},
		},
		{
			name:      "warning is healthy but listed after passing",
			views:     []RegionView{rv("us-east", []region.Instance{{ID: "a", Status: region.StatusWarning}, {ID: "b", Status: region.StatusPassing}, {ID: "c", Status: region.StatusCritical}})},
			req:       web("us-east", "", Policy{}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/b@0", "us-east/a@0"},
		},
		{
			name:      "drained instances take no traffic and do not count towards health",
			views:     []RegionView{drained(rv("us-east", []region.Instance{{ID: "a", Status: region.StatusPassing}}), region.Instance{ID: "d1", Status: region.StatusPassing}, region.Instance{ID: "d2", Status: region.StatusCritical})},
			req:       web("us-east", "", Policy{}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/a@0"},
		},
		{
			name:      "other services' instances are ignored",
			views:     []RegionView{rv("us-east", []region.Instance{{ID: "a", Service: "api", Status: region.StatusPassing}, {ID: "b", Service: "web", Status: region.StatusPassing}})},
			req:       web("us-east", "", Policy{}),
			shares:    map[string]float64{"us-east": 1},
			endpoints: []string{"us-east/b@0"},
		},
		{
			name:      "limit cuts the list after ordering, not the shares",
			views:     []RegionView{rv("us-east", insts("use", "a", 1, 0, 3)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)},
			req:       Request{Service: "web", FromRegion: "us-east", Policy: Policy{}, Limit: 2},
			shares:    map[string]float64{"us-east": 0.35, "eu-west": 0.65},
			failover:  true,
			endpoints: []string{"us-east/use-00@0", "eu-west/euw-00@1"},
		},
		{
			name:      "no instances anywhere",
			views:     []RegionView{rv("us-east"), rv("eu-west", []region.Instance{{ID: "a", Service: "api", Status: region.StatusPassing}})},
			req:       web("us-east", "", Policy{}),
			shares:    map[string]float64{},
			endpoints: []string{},
			explain:   "no instances of web anywhere.",
		},
		{
			name:      "no instances with the tags",
			views:     []RegionView{rv("us-east", insts("use", "a", 3, 0, 0))},
			req:       Request{Service: "web", FromRegion: "us-east", Tags: []string{"gpu"}},
			shares:    map[string]float64{},
			endpoints: []string{},
			explain:   "no instances of web tagged gpu anywhere.",
		},
		{
			name:      "no instances in the ordered list",
			views:     []RegionView{rv("us-east"), rv("eu-west", insts("euw", "a", 3, 0, 0))},
			req:       web("us-east", "", Policy{Mode: ModeOrdered, Regions: []string{"ap-south"}}),
			shares:    map[string]float64{},
			endpoints: []string{},
			explain:   "no instances of web in us-east or its failover list (ap-south).",
		},
		{
			name:      "local region missing entirely: all traffic to others",
			views:     []RegionView{rtt(rv("eu-west", insts("euw", "a", 2, 0, 0)), 12*time.Millisecond), rv("ap-south", insts("aps", "a", 2, 0, 0))},
			req:       web("us-east", "a", Policy{}),
			shares:    map[string]float64{"eu-west": 1},
			failover:  true,
			endpoints: []string{"eu-west/euw-00@0", "eu-west/euw-01@0"},
			explain:   "us-east has no instances of web. all traffic goes to eu-west (RTT 12ms, 2/2 healthy).",
		},
		{
			name:      "invalid policy routes nowhere",
			views:     []RegionView{rv("us-east", insts("use", "a", 3, 0, 0))},
			req:       web("us-east", "", Policy{Mode: "random"}),
			shares:    map[string]float64{},
			endpoints: []string{},
			explain:   `invalid policy: mode: unknown mode "random" (want local, ordered or nearest)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Route(tc.views, tc.req)
			if !sharesEqual(d.Shares, tc.shares) {
				t.Errorf("shares: got %v, want %v", d.Shares, tc.shares)
			}
			if d.Failover != tc.failover || d.Panic != tc.panic {
				t.Errorf("failover, panic: got %v, %v; want %v, %v", d.Failover, d.Panic, tc.failover, tc.panic)
			}
			if got := epStrings(d.Endpoints); tc.endpoints != nil && !slices.Equal(got, tc.endpoints) {
				t.Errorf("endpoints:\n got  %v\n want %v", got, tc.endpoints)
			}
			if tc.prioShares != nil {
				ok := len(d.PriorityShares) == len(tc.prioShares)
				for i := 0; ok && i < len(tc.prioShares); i++ {
					ok = math.Abs(d.PriorityShares[i]-tc.prioShares[i]) < 1e-9
				}
				if !ok {
					t.Errorf("priority shares: got %v, want %v", d.PriorityShares, tc.prioShares)
				}
			}
			want := tc.stale
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(d.StaleRegions, want) {
				t.Errorf("stale regions: got %v, want %v", d.StaleRegions, want)
			}
			if tc.explain != "" && d.Explanation != tc.explain {
				t.Errorf("explanation:\n got  %q\n want %q", d.Explanation, tc.explain)
			}
			for _, s := range tc.explainHas {
				if !strings.Contains(d.Explanation, s) {
					t.Errorf("explanation:\n got  %q\n want it to contain %q", d.Explanation, s)
				}
			}
			if !d.Panic {
				for _, e := range d.Endpoints {
					if e.Status == region.StatusCritical {
						t.Errorf("critical endpoint %s outside panic", e.Ref())
					}
				}
			}
			if t.Failed() {
				t.Logf("explanation: %s", d.Explanation)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	got := Policy{}.WithDefaults()
	if got.Mode != ModeLocal || got.NearestN != 2 || got.Overprovisioning != 1.4 || got.PanicThreshold != 0.5 ||
		got.StalenessBound != 30*time.Second || got.ZonePreference == nil || !*got.ZonePreference {
		t.Errorf("WithDefaults: got %+v (zone preference %v), want local, 2, 1.4, 0.5, 30s, true", got, got.ZonePreference)
	}
	kept := Policy{Mode: ModeNearest, NearestN: 3, Overprovisioning: 2, PanicThreshold: 0.1, StalenessBound: time.Minute, ZonePreference: boolp(false)}.WithDefaults()
	if kept.Mode != ModeNearest || kept.NearestN != 3 || kept.Overprovisioning != 2 || kept.PanicThreshold != 0.1 ||
		kept.StalenessBound != time.Minute || *kept.ZonePreference {
		t.Errorf("WithDefaults changed set fields: got %+v", kept)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     Policy
		field string // "" for valid
	}{
		{"zero is valid (defaults)", Policy{}, ""},
		{"ordered with regions", Policy{Mode: ModeOrdered, Regions: []string{"eu-west"}}, ""},
		{"unknown mode", Policy{Mode: "closest"}, "mode:"},
		{"ordered without regions", Policy{Mode: ModeOrdered}, "regions:"},
		{"empty region name", Policy{Mode: ModeOrdered, Regions: []string{"a", ""}}, "regions[1]:"},
		{"nearest_n negative", Policy{Mode: ModeNearest, NearestN: -1}, "nearest_n:"},
		{"overprovisioning below 1", Policy{Overprovisioning: 0.9}, "overprovisioning:"},
		{"overprovisioning NaN", Policy{Overprovisioning: math.NaN()}, "overprovisioning:"},
		{"overprovisioning 1 is fine", Policy{Overprovisioning: 1}, ""},
		{"panic_threshold above 1", Policy{PanicThreshold: 1.5}, "panic_threshold:"},
		{"panic_threshold negative", Policy{PanicThreshold: -0.1}, "panic_threshold:"},
		{"panic_threshold 1 is fine", Policy{PanicThreshold: 1}, ""},
		{"staleness_bound negative", Policy{StalenessBound: -time.Second}, "staleness_bound:"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: got %v, want nil", tc.name, err)
		case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field)):
			t.Errorf("%s: got %v, want an error starting with %q", tc.name, err, tc.field)
		}
	}
}

func TestDecisionLevel(t *testing.T) {
	views := []RegionView{rv("us-east", insts("use", "a", 1, 0, 3)), rtt(rv("eu-west", insts("euw", "a", 3, 0, 0)), 12*time.Millisecond)}
	d := Route(views, Request{Service: "web", FromRegion: "us-east"})
	tests := []struct {
		u    float64
		want []string
	}{
		{0, []string{"us-east/use-00@0"}},
		{0.3499, []string{"us-east/use-00@0"}},
		{0.35, []string{"eu-west/euw-00@1", "eu-west/euw-01@1", "eu-west/euw-02@1"}},
		{0.9999, []string{"eu-west/euw-00@1", "eu-west/euw-01@1", "eu-west/euw-02@1"}},
	}
	for _, tc := range tests {
		if got := epStrings(d.Level(tc.u)); !slices.Equal(got, tc.want) {
			t.Errorf("Level(%g): got %v, want %v", tc.u, got, tc.want)
		}
	}
	// With Limit cutting eu-west out, every draw lands on us-east.
	d = Route(views, Request{Service: "web", FromRegion: "us-east", Limit: 1})
	if got := epStrings(d.Level(0.9)); !slices.Equal(got, []string{"us-east/use-00@0"}) {
		t.Errorf("Level(0.9) after Limit 1: got %v, want [us-east/use-00@0]", got)
	}
	if got := (Decision{}).Level(0.5); got != nil {
		t.Errorf("Level on an empty decision: got %v, want nil", got)
	}
}

// TestRouteDoesNotModifyViews guards the purity of Route.
func TestRouteDoesNotModifyViews(t *testing.T) {
	views := []RegionView{rv("b", insts("b", "a", 1, 1, 1)), rv("a", insts("a", "a", 0, 1, 2))}
	views[0].Instances[0], views[0].Instances[2] = views[0].Instances[2], views[0].Instances[0]
	before := fmt.Sprintf("%+v", views)
	_ = Route(views, Request{Service: "web", FromRegion: "a"})
	if after := fmt.Sprintf("%+v", views); after != before {
		t.Errorf("Route modified its input:\n got  %s\n want %s", after, before)
	}
	if !reflect.DeepEqual(Route(views, Request{FromRegion: "a"}), Route(views, Request{FromRegion: "a"})) {
		t.Errorf("Route is not deterministic")
	}
}
