package gossip

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// checkCase is one kind of event measured on real Serf and sampled from
// the model, for a pool of n with the observer on a side of side members.
type checkCase struct {
	name  string
	model func(p Profile, rng *rand.Rand, m measured) time.Duration
}

// Case names; the cases' order is the table's.
const (
	caseSpread     = "tag change: spread to each other member"
	caseCrash      = "crash: each survivor sees it failed"
	caseCutMajor   = "cut 1|n-1: the n-1 see the isolated failed"
	caseCutIso     = "cut 1|n-1: the isolated sees the n-1 failed"
	caseHealMajor  = "heal 1|n-1: the n-1 see the isolated alive"
	caseHealIso    = "heal 1|n-1: the isolated sees the n-1 alive"
	caseCutHalves  = "cut halves: each sees the other side failed"
	caseHealHalves = "heal halves: each sees the other side alive"
	caseRestart    = "restart: each survivor sees it alive"

	caseOneWayMajor = "one-way cut 1->n-1: the n-1 see it failed"
	caseOneWayIso   = "one-way cut 1->n-1: it sees the n-1 failed"
	caseOneWayHeal  = "one-way cut 1->n-1 heals: the n-1 see it alive"
)

var checkCases = []checkCase{
	{caseSpread, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.Spread(rng, m.n) }},
	{caseCrash, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectFailure(rng, m.n) }},
	{caseCutMajor, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectCut(rng, m.n, m.side) }},
	{caseCutIso, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectCut(rng, m.n, m.side) }},
	{caseHealMajor, func(p Profile, rng *rand.Rand, m measured) time.Duration {
		return p.RejoinCut(rng, m.n, m.side, m.cutFor)
	}},
	{caseHealIso, func(p Profile, rng *rand.Rand, m measured) time.Duration {
		return p.RejoinCut(rng, m.n, m.side, m.cutFor)
	}},
	{caseCutHalves, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectCut(rng, m.n, m.side) }},
	{caseHealHalves, func(p Profile, rng *rand.Rand, m measured) time.Duration {
		return p.RejoinCut(rng, m.n, m.side, m.cutFor)
	}},
	{caseRestart, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.Restart(rng, m.n) }},
	// The simulator treats a one-way cut as a cut (sim/membership.go
	// pathOK): the same model functions.
	{caseOneWayMajor, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectCut(rng, m.n, m.side) }},
	{caseOneWayIso, func(p Profile, rng *rand.Rand, m measured) time.Duration { return p.DetectCut(rng, m.n, m.side) }},
	{caseOneWayHeal, func(p Profile, rng *rand.Rand, m measured) time.Duration {
		return p.RejoinCut(rng, m.n, m.side, m.cutFor)
	}},
}

// measured is one real delay with its circumstances: pool size, the
// observer's side, how long the cut before a heal lasted.
type measured struct {
	n, side int
	cutFor  time.Duration
	event   string // the event it measures (samples of one event are correlated)
	d       time.Duration
}

// runSerf runs one scenario on a fresh pool of n real Serf nodes in a
// synctest bubble and adds the measured delays to got, by case name.
// Virtual time starts at the same instant for every node, so the nodes
// are started, and the events injected, after random pauses drawn from
// rng: otherwise every memberlist ticker would share one phase.
func runSerf(t *testing.T, prof Profile, n, run int, rng *rand.Rand, got map[string][]measured) {
	profile := prof.Name
	pause := func(upTo time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(upTo)))) }
	synctest.Test(t, func(t *testing.T) {
		// Runs last (cleanups are LIFO): lets memberlist's probe goroutines
		// end on their timers after the nodes shut down, so the bubble is
		// empty when Test returns.
		t.Cleanup(func() { time.Sleep(time.Minute) })
		// Start the nodes spread over a reconnect period (plus a blocked
		// dial), as gateways started independently are: each one's
		// reconnect loop keeps the phase of its start.
		p := startPool(t, profile, n, func() { pause(prof.ReconnectInterval + prof.TCPTimeout) })
		nodes := p.nodes
		var cutFor time.Duration // of the last cut, for the heals
		add := func(c string, side int, t0 time.Time, ds []time.Duration) {
			event := fmt.Sprintf("%d/%d", run, t0.UnixNano())
			for _, d := range ds {
				got[c] = append(got[c], measured{n: n, side: side, cutFor: cutFor, event: event, d: d})
			}
		}
		// bounds every wait (virtual time): a member cut off from everyone
		// probes the others ever more slowly (awareness), up to twice the
		// model's detection bound.
		long := max(10*time.Minute, 2*prof.detectBound(n))

		// (d) Tag changes: SetVersion on three members in turn.
		for v := 1; v <= 3; v++ {
			pause(3 * time.Second)
			src := nodes[rng.IntN(n)]
			others := without(nodes, src)
			t0 := time.Now()
			src.SetVersion(uint64(v))
			version := uint64(v)
			isV := func(e federation.MemberEvent) bool { return e.Member.Version == version }
			for deadline := t0.Add(long); !p.allHave(t0, federation.EventUpdate, others, []*serfNode{src}, isV); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("version %d did not spread from %s", v, src.LocalName())
				}
			}
			add(caseSpread, n-1, t0, p.delays(t0, federation.EventUpdate, others, []*serfNode{src}, isV))
		}

		// (b, c) Cuts and heals, twice each: a member isolated from the
		// n-1 others, then two halves. A heal's delay depends mostly on where
		// it falls among the members' reconnect ticks, so the cuts last a
		// random while (up to a minute past detection).
		for range 2 {
			time.Sleep(20 * time.Second) // let the last refutations die down
			pause(5 * time.Second)
			iso := nodes[rng.IntN(n)]
			rest := without(nodes, iso)
			t0 := time.Now()
			p.net.Partition([]string{iso.BindAddr()}, addrs(rest))
			p.waitStatus(long, "majority to see the isolated failed", rest, []*serfNode{iso}, federation.StatusFailed)
			p.waitStatus(long, "the isolated to see the majority failed", []*serfNode{iso}, rest, federation.StatusFailed)
			add(caseCutMajor, n-1, t0, p.delays(t0, federation.EventFailed, rest, []*serfNode{iso}, nil))
			add(caseCutIso, 1, t0, p.delays(t0, federation.EventFailed, []*serfNode{iso}, rest, nil))
			pause(time.Minute)
			cutFor = time.Since(t0)
			t0 = time.Now()
			p.net.Heal()
			p.waitStatus(long, "all alive after the heal", nodes, nodes, federation.StatusAlive)
			add(caseHealMajor, n-1, t0, p.delays(t0, federation.EventJoin, rest, []*serfNode{iso}, nil))
			add(caseHealIso, 1, t0, p.delays(t0, federation.EventJoin, []*serfNode{iso}, rest, nil))

			time.Sleep(20 * time.Second)
			pause(5 * time.Second)
			perm := rng.Perm(n)
			var a, b []*serfNode
			for i, j := range perm {
				if i < n/2 {
					a = append(a, nodes[j])
				} else {
					b = append(b, nodes[j])
				}
			}
			t0 = time.Now()
			p.net.Partition(addrs(a), addrs(b))
			p.waitStatus(long, "each half to see the other failed", a, b, federation.StatusFailed)
			p.waitStatus(long, "each half to see the other failed", b, a, federation.StatusFailed)
			add(caseCutHalves, len(a), t0, p.delays(t0, federation.EventFailed, a, b, nil))
			add(caseCutHalves, len(b), t0, p.delays(t0, federation.EventFailed, b, a, nil))
			pause(time.Minute)
			cutFor = time.Since(t0)
			t0 = time.Now()
			p.net.Heal()
			p.waitStatus(long, "all alive after healing the halves", nodes, nodes, federation.StatusAlive)
			add(caseHealHalves, len(a), t0, p.delays(t0, federation.EventJoin, a, b, nil))
			add(caseHealHalves, len(b), t0, p.delays(t0, federation.EventJoin, b, a, nil))
		}

		// (f) A one-way cut: nothing from one member reaches the others
		// (the others' packets still reach it). Acks and refutations are
		// lost, so both sides see the other failed, as for a cut; then it
		// heals.
		time.Sleep(20 * time.Second)
		pause(5 * time.Second)
		iso := nodes[rng.IntN(n)]
		rest := without(nodes, iso)
		from, to := iso.BindAddr(), addrs(rest)
		t0 := time.Now()
		p.net.SetFilter(func(a, b string) (bool, time.Duration) { return a == from && slices.Contains(to, b), 0 })
		p.setNoDial(func(a, b string) bool {
			return (a == from && slices.Contains(to, b)) || (b == from && slices.Contains(to, a))
		})
		p.waitStatus(long, "the others to see the one-way cut member failed", rest, []*serfNode{iso}, federation.StatusFailed)
		p.waitStatus(long, "the one-way cut member to see the others failed", []*serfNode{iso}, rest, federation.StatusFailed)
		cutFor = 0
		add(caseOneWayMajor, n-1, t0, p.delays(t0, federation.EventFailed, rest, []*serfNode{iso}, nil))
		add(caseOneWayIso, 1, t0, p.delays(t0, federation.EventFailed, []*serfNode{iso}, rest, nil))
		pause(time.Minute)
		cutFor = time.Since(t0)
		t0 = time.Now()
		p.net.SetFilter(nil)
		p.setNoDial(nil)
		p.waitStatus(long, "all alive after the one-way cut", nodes, nodes, federation.StatusAlive)
		add(caseOneWayHeal, n-1, t0, p.delays(t0, federation.EventJoin, rest, []*serfNode{iso}, nil))

		// (a) A gateway dies: Shutdown without a leave.
		time.Sleep(20 * time.Second)
		pause(5 * time.Second)
		dead := nodes[rng.IntN(n)]
		alive := without(nodes, dead)
		t0 = time.Now()
		dead.stop(t)
		p.waitStatus(long, "the survivors to see the dead failed", alive, []*serfNode{dead}, federation.StatusFailed)
		add(caseCrash, n-1, t0, p.delays(t0, federation.EventFailed, alive, []*serfNode{dead}, nil))

		// (e) It restarts (same name and address) and joins a survivor.
		pause(30 * time.Second)
		t0 = time.Now()
		back := p.restart(slices.Index(nodes, dead), []string{alive[rng.IntN(len(alive))].BindAddr()})
		p.waitStatus(long, "the survivors to see the restarted alive", alive, []*serfNode{back}, federation.StatusAlive)
		add(caseRestart, n-1, t0, p.delays(t0, federation.EventJoin, alive, []*serfNode{back}, nil))
	})
}

// allHave reports whether every observer has an event of kind about every
// target since t0.
func (p *serfPool) allHave(t0 time.Time, kind federation.EventKind, observers, targets []*serfNode, ok func(federation.MemberEvent) bool) bool {
	for _, o := range observers {
		for _, tg := range targets {
			if tg == o {
				continue
			}
			if _, found := o.first(t0, kind, tg.LocalName(), ok); !found {
				return false
			}
		}
	}
	return true
}

// quantile of sorted samples, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

var modelcheckFull = flag.Bool("modelcheck.full", false, "TestModelMatchesSerf: more runs of the big pools (minutes)")

// checkPlan is one group of model-check runs: a profile, the pool sizes
// taken in turn, and how many runs.
type checkPlan struct {
	profile string
	sizes   []int
	runs    int
}

// pools names the plan's pool sizes ("3-5", "16").
func (c checkPlan) pools() string {
	lo, hi := slices.Min(c.sizes), slices.Max(c.sizes)
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// minEvents is the fewest independent events a case needs to be judged:
// with fewer, one odd event is the median, and the case is only printed.
const minEvents = 4

// checkPlans are the model check's runs: every profile with pools of 3 to
// 5 (15 runs each), and pools of 8 and 16 with four runs (a pool of 16
// costs about ten times a pool of 4: the whole check takes about 45s of
// CPU, 25s on two cores); full gives the big pools 16 runs (about 5
// minutes of CPU). Under the race detector (make test), which slows Serf
// down 5 to 10 times, it is smaller: 5 runs of the small pools, judged
// with the wider tolerances that fewer events give, and one of 8, only
// printed (a smoke test that real Serf goes through every event).
func checkPlans(full bool) []checkPlan {
	small, big, bigSizes := 15, 4, []int{8, 16}
	switch {
	case full:
		big = 16
	case raceEnabled:
		small, big, bigSizes = 5, 1, []int{8}
	}
	var plans []checkPlan
	for _, p := range []string{Local, LAN, WAN} {
		plans = append(plans, checkPlan{p, []int{3, 4, 5}, small}, checkPlan{p, bigSizes, big})
	}
	return plans
}

// TestModelMatchesSerf measures real Serf (SerfMembership on a MemNetwork,
// in synctest virtual time) through the events the simulator's scenarios
// use, and checks the model against the measurements.
//
// Tolerance. Real Serf is not deterministic, and a profile's 15 runs give
// 45 to 240 samples per case, from 15 to 45 independent events (one event
// gives a sample per observer, and the nodes' timer phases are fixed for a
// run), so the real extremes and quartiles are rough where Serf varies a
// lot: a heal depends on where it falls among the members' reconnect ticks
// (lan: up to 40s). Each check therefore has a plain tolerance and a
// statistical one, and fails only when both do (α = 0.001 is the chance
// that a correct model fails a statistical check):
//
//   - Range: the model's p5 ≥ 0.5×real min − 250ms, or the real min below
//     the model's quantile δ = 1 − α^(1/m) for m events (m = 30: the
//     model's p21); the model's p95 ≤ 1.5×real max, or the real max above
//     its quantile 1−δ. The model does not put a tenth of its outcomes
//     where real Serf never went.
//   - Shape: each real quartile (p25, p50, p75) within a factor of 2
//     (±50ms) of the model's, or between the model's quantiles q−ε and q+ε,
//     ε = sqrt(ln(2/α)/2m) (Dvoretzky–Kiefer–Wolfowitz; m = 30: ε ≈ 0.36).
//
// The plain tolerances are tight where Serf varies little (detection,
// spread), the statistical ones are what few events allow for heals. A
// model off by a probe round at these pool sizes, by a suspicion timeout
// (SuspicionMax is 6×SuspicionMin), by a reconnect period, or that ignores
// awareness or the blocked reconnect dials, fails. Checked separately with
// 80 runs of one long 2|2 cut each (lan): real heal p25/p50/p75
// 1.5s/4.2s/10.2s, model 2.0s/5.0s/9.2s.
func TestModelMatchesSerf(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real Serf for a few seconds of wall time")
	}
	const samples = 2000
	type row struct {
		c            string
		profile      string
		pools        string
		real         []time.Duration
		p5, p50, p95 time.Duration
		modelQ       [3]time.Duration // p25, p50, p75
		model        []time.Duration  // sorted
		events       int              // independent events measured
	}
	var rows []row
	for pi, plan := range checkPlans(*modelcheckFull) {
		prof, err := ProfileByName(plan.profile)
		if err != nil {
			t.Fatal(err)
		}
		// The runs go in parallel (each in its own bubble), each into its
		// own map, merged in run order.
		perRun := make([]map[string][]measured, plan.runs)
		t.Run(plan.profile+"/"+plan.pools(), func(t *testing.T) {
			for run := range plan.runs {
				n := plan.sizes[run%len(plan.sizes)]
				rng := rand.New(rand.NewPCG(uint64(pi), uint64(run)))
				perRun[run] = map[string][]measured{}
				t.Run(fmt.Sprintf("n=%d/run%d", n, run), func(t *testing.T) {
					t.Parallel()
					runSerf(t, prof, n, run, rng, perRun[run])
				})
			}
		})
		got := map[string][]measured{}
		for _, m := range perRun {
			for _, c := range checkCases {
				got[c.name] = append(got[c.name], m[c.name]...)
			}
		}
		if t.Failed() {
			return
		}
		profile := plan.profile
		for ci, c := range checkCases {
			ms := got[c.name]
			if len(ms) == 0 {
				t.Fatalf("%s %s: no real samples", profile, c.name)
			}
			// The model is sampled for the same mix of pool sizes and sides
			// as the measurements: samples draws per measurement, in turn.
			rng := rand.New(rand.NewPCG(uint64(ci), 42))
			model := make([]time.Duration, 0, samples)
			for i := range samples {
				m := ms[i%len(ms)]
				model = append(model, c.model(prof, rng, m))
			}
			slices.Sort(model)
			var real []time.Duration
			for _, m := range ms {
				real = append(real, m.d)
			}
			slices.Sort(real)
			events := map[string]bool{}
			for _, m := range ms {
				events[m.event] = true
			}
			rows = append(rows, row{c.name, profile, plan.pools(), real, quantile(model, 0.05), quantile(model, 0.5), quantile(model, 0.95),
				[3]time.Duration{quantile(model, 0.25), quantile(model, 0.5), quantile(model, 0.75)}, model, len(events)})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "real = Serf on a MemNetwork under synctest; # = real samples\n")
	fmt.Fprintf(&b, "%-45s %-7s %-6s %4s %9s %9s %9s | %9s %9s %9s\n", "case", "profile", "pools", "#", "real min", "median", "max", "model p5", "p50", "p95")
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	for _, w := range rows {
		lo, med, hi := w.real[0], quantile(w.real, 0.5), w.real[len(w.real)-1]
		note := ""
		if w.events < minEvents {
			note = fmt.Sprintf("  (not judged: %d events)", w.events)
		}
		fmt.Fprintf(&b, "%-45s %-7s %-6s %4d %9v %9v %9v | %9v %9v %9v%s\n", w.c, w.profile, w.pools, len(w.real), r(lo), r(med), r(hi), r(w.p5), r(w.p50), r(w.p95), note)
	}
	t.Log("\n" + b.String())
	if os.Getenv("MERIDIAN_MODELCHECK_RAW") != "" {
		for _, w := range rows {
			t.Logf("%s %s %s real: %v", w.profile, w.pools, w.c, w.real)
		}
	}
	const slack, qslack = 250 * time.Millisecond, 50 * time.Millisecond
	// alpha is the chance a correct model fails a statistical check.
	const alpha = 0.001
	for _, w := range rows {
		if w.events < minEvents {
			continue
		}
		lo, hi := w.real[0], w.real[len(w.real)-1]
		// With m independent events, the real min lies below the model's
		// quantile delta (and the max above 1-delta) except with
		// probability alpha.
		delta := 1 - math.Pow(alpha, 1/float64(w.events))
		if w.p5 < lo/2-slack && lo > quantile(w.model, delta) {
			t.Errorf("%s, %s: model p5 %v below [0.5×real min − %v] = %v, and real min above model p%.0f = %v (%d events)",
				w.c, w.profile+" "+w.pools, w.p5, slack, lo/2-slack, 100*delta, quantile(w.model, delta), w.events)
		}
		if w.p95 > hi*3/2 && hi < quantile(w.model, 1-delta) {
			t.Errorf("%s, %s: model p95 %v above 1.5×real max = %v, and real max below model p%.0f = %v (%d events)",
				w.c, w.profile+" "+w.pools, w.p95, hi*3/2, 100*(1-delta), quantile(w.model, 1-delta), w.events)
		}
		// DKW: with m independent events, the real CDF is within eps of the
		// true one except with probability alpha.
		eps := math.Sqrt(math.Log(2/alpha) / (2 * float64(w.events)))
		for i, q := range []float64{0.25, 0.5, 0.75} {
			r, m := quantile(w.real, q), w.modelQ[i]
			ratioOK := r >= m/2-qslack && r <= 2*m+qslack
			lo, hi := quantile(w.model, max(q-eps, 0)), quantile(w.model, min(q+eps, 1))
			if !ratioOK && (r < lo || r > hi) {
				t.Errorf("%s, %s: real p%.0f %v outside [model p%.0f/2, 2×model p%.0f] ± %v = [%v, %v], and outside model p%.0f..p%.0f = [%v, %v] (%d events)",
					w.c, w.profile+" "+w.pools, 100*q, r, 100*q, 100*q, qslack, m/2-qslack, 2*m+qslack, 100*max(q-eps, 0), 100*min(q+eps, 1), lo, hi, w.events)
			}
		}
	}
}
