package gossip

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

func mustProfile(t testing.TB, name string) Profile {
	t.Helper()
	p, err := ProfileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProfilesMatchLibraries: the profiles carry memberlist's and serf's
// own defaults, as serfmember.NewSerfMembership configures them.
func TestProfilesMatchLibraries(t *testing.T) {
	serfReconnect := serf.DefaultConfig().ReconnectInterval
	for _, tc := range []struct {
		name      string
		ml        *memberlist.Config
		reconnect time.Duration
	}{
		{WAN, memberlist.DefaultWANConfig(), serfReconnect},
		{LAN, memberlist.DefaultLANConfig(), serfReconnect},
		// federation/serf.go localReconnectInterval.
		{Local, memberlist.DefaultLocalConfig(), 5 * time.Second},
	} {
		got := mustProfile(t, tc.name)
		c := tc.ml
		want := Profile{
			Name:                    tc.name,
			ProbeInterval:           c.ProbeInterval,
			ProbeTimeout:            c.ProbeTimeout,
			SuspicionMult:           c.SuspicionMult,
			SuspicionMaxTimeoutMult: c.SuspicionMaxTimeoutMult,
			GossipInterval:          c.GossipInterval,
			GossipNodes:             c.GossipNodes,
			RetransmitMult:          c.RetransmitMult,
			PushPullInterval:        c.PushPullInterval,
			ReconnectInterval:       tc.reconnect,
			IndirectChecks:          c.IndirectChecks,
			AwarenessMaxMultiplier:  c.AwarenessMaxMultiplier,
			GossipToTheDeadTime:     c.GossipToTheDeadTime,
			TCPTimeout:              c.TCPTimeout,
		}
		if got != want {
			t.Errorf("ProfileByName(%q)\n got %+v\nwant %+v", tc.name, got, want)
		}
	}
	if _, err := ProfileByName("lan2"); err == nil {
		t.Error(`ProfileByName("lan2"): no error`)
	}
}

// TestTimingFormulas pins the derived timings against values worked out by
// hand from memberlist's formulas.
func TestTimingFormulas(t *testing.T) {
	for _, tc := range []struct {
		profile    string
		n          int
		min, max   time.Duration
		k          int
		retransmit int
		pushPull   time.Duration
	}{
		{Local, 3, 3 * time.Second, 18 * time.Second, 1, 2, 15 * time.Second},
		{Local, 100, 6 * time.Second, 36 * time.Second, 1, 6, 3 * 15 * time.Second},
		{LAN, 3, 4 * time.Second, 24 * time.Second, 0, 4, 30 * time.Second},
		{LAN, 4, 4 * time.Second, 24 * time.Second, 2, 4, 30 * time.Second},
		{LAN, 33, 6072 * time.Millisecond, 6 * 6072 * time.Millisecond, 2, 8, 2 * 30 * time.Second},
		{WAN, 5, 30 * time.Second, 180 * time.Second, 0, 4, time.Minute},
		{WAN, 10, 30 * time.Second, 180 * time.Second, 4, 8, time.Minute},
	} {
		p := mustProfile(t, tc.profile)
		if got := p.SuspicionMin(tc.n); got != tc.min {
			t.Errorf("%s n=%d SuspicionMin = %v, want %v", tc.profile, tc.n, got, tc.min)
		}
		if got := p.SuspicionMax(tc.n); got != tc.max {
			t.Errorf("%s n=%d SuspicionMax = %v, want %v", tc.profile, tc.n, got, tc.max)
		}
		if got := p.Confirmations(tc.n); got != tc.k {
			t.Errorf("%s n=%d Confirmations = %d, want %d", tc.profile, tc.n, got, tc.k)
		}
		if got := p.RetransmitLimit(tc.n); got != tc.retransmit {
			t.Errorf("%s n=%d RetransmitLimit = %d, want %d", tc.profile, tc.n, got, tc.retransmit)
		}
		if got := p.PushPullPeriod(tc.n); got != tc.pushPull {
			t.Errorf("%s n=%d PushPullPeriod = %v, want %v", tc.profile, tc.n, got, tc.pushPull)
		}
		// Lifeguard: max with no confirmation, min with k, strictly
		// decreasing in between.
		k := p.Confirmations(tc.n)
		if k == 0 {
			if got := p.suspicionTimeout(tc.n, 0); got != tc.min {
				t.Errorf("%s n=%d: timeout with k=0 is %v, want min %v", tc.profile, tc.n, got, tc.min)
			}
			continue
		}
		if got := p.suspicionTimeout(tc.n, 0); got != tc.max {
			t.Errorf("%s n=%d: timeout with no confirmation = %v, want max %v", tc.profile, tc.n, got, tc.max)
		}
		if got := p.suspicionTimeout(tc.n, k); got != tc.min {
			t.Errorf("%s n=%d: timeout with %d confirmations = %v, want min %v", tc.profile, tc.n, k, got, tc.min)
		}
		for c := 1; c <= k; c++ {
			if a, b := p.suspicionTimeout(tc.n, c-1), p.suspicionTimeout(tc.n, c); b >= a {
				t.Errorf("%s n=%d: timeout after %d confirmations %v, not below %v after %d", tc.profile, tc.n, c, b, a, c-1)
			}
		}
	}
	// lan, 4 members (k=2), one confirmation: max - log(2)/log(3)·(max-min)
	// = 24s - 0.6309·20s, truncated to the millisecond.
	p := mustProfile(t, LAN)
	frac := 0.6309297535714575
	want := 24*time.Second - time.Duration(frac*20*float64(time.Second))
	if got := p.suspicionTimeout(4, 1); got/time.Millisecond != want/time.Millisecond {
		t.Errorf("lan n=4, 1 confirmation: %v, want %v", got, want.Truncate(time.Millisecond))
	}
}

// samples draws count samples of f.
func samples(count int, f func() time.Duration) []time.Duration {
	out := make([]time.Duration, count)
	for i := range out {
		out[i] = f()
	}
	slices.Sort(out)
	return out
}

// TestDetectBounds: every sample lies within bounds derived from the
// formulas. A crash: the first failed probe ends at least one probe
// interval after it and at most 2(n-1) intervals (the prober's round is
// n-1 long and the target may come last in the next, reshuffled, one);
// the suspicion then lasts between min and max. An isolated member runs to
// max (min when k is 0), and its probes slow down by up to
// AwarenessMaxMultiplier.
func TestDetectBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, name := range []string{WAN, LAN, Local} {
		p := mustProfile(t, name)
		for _, n := range []int{2, 3, 4, 5, 10, 50} {
			lo := p.ProbeInterval + p.SuspicionMin(n)
			hi := time.Duration(2*(n-1))*p.ProbeInterval + p.SuspicionMax(n)
			for _, d := range samples(300, func() time.Duration { return p.DetectFailure(rng, n) }) {
				if d < lo || d > hi {
					t.Fatalf("%s n=%d DetectFailure = %v, outside [%v, %v]", name, n, d, lo, hi)
				}
			}
			isoLo := p.ProbeInterval + p.suspicionTimeout(n, 0)
			isoHi := time.Duration(2*(n-1)*p.AwarenessMaxMultiplier)*p.ProbeInterval + p.suspicionTimeout(n, 0)
			for _, d := range samples(300, func() time.Duration { return p.DetectCut(rng, n, 1) }) {
				if d < isoLo || d > isoHi {
					t.Fatalf("%s n=%d DetectCut(side 1) = %v, outside [%v, %v]", name, n, d, isoLo, isoHi)
				}
			}
		}
	}
}

// TestSpreadBounds: with n-1 ≤ GossipNodes and the retransmit limit, the
// source tells everyone on its first gossip tick, within one interval;
// a restarted member's first tick is one interval after its start.
func TestSpreadBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, name := range []string{WAN, LAN, Local} {
		p := mustProfile(t, name)
		for n := 2; n <= 50; n++ {
			d := samples(100, func() time.Duration { return p.Spread(rng, n) })
			if d[0] < 0 {
				t.Fatalf("%s n=%d: negative spread %v", name, n, d[0])
			}
			if n-1 <= min(p.GossipNodes, p.RetransmitLimit(n)) && d[len(d)-1] >= p.GossipInterval {
				t.Errorf("%s n=%d: spread %v, want < one gossip interval %v", name, n, d[len(d)-1], p.GossipInterval)
			}
			if r := samples(100, func() time.Duration { return p.Restart(rng, n) }); r[0] < p.GossipInterval {
				t.Errorf("%s n=%d: Restart %v, before the first gossip tick %v", name, n, r[0], p.GossipInterval)
			}
		}
	}
}

// TestCrossJoinBound: after a cut long enough for both sides to mark each
// other failed, some member (one on the smaller side, which retries for
// sure) reconnects within a reconnect interval plus one blocked dial after
// the heal. After a short cut, only the observer's side may retry, each
// member with probability failed/alive: bounded by a few dozen periods.
func TestCrossJoinBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, name := range []string{WAN, LAN, Local} {
		p := mustProfile(t, name)
		for _, n := range []int{2, 3, 5, 10} {
			for side := 1; side < n; side++ {
				for _, cut := range []time.Duration{0, 10 * time.Second, time.Minute, 30 * time.Minute, LongCut} {
					hi := p.ReconnectInterval + p.TCPTimeout
					if cut < 30*time.Minute {
						hi = 40 * (p.ReconnectInterval + p.TCPTimeout)
					}
					for range 50 {
						if d := p.crossJoin(rng, n, side, cut); d < 0 || d > hi {
							t.Fatalf("%s n=%d side=%d cut=%v: first cross join %v, outside [0, %v]", name, n, side, cut, d, hi)
						}
					}
				}
			}
		}
	}
}

func median(d []time.Duration) time.Duration { return d[len(d)/2] }

// TestMonotonic: slower profiles detect, spread and rejoin more slowly;
// bigger pools suspect longer; an isolated member detects more slowly than
// the majority it was cut from.
func TestMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const count = 500
	med := func(f func() time.Duration) time.Duration { return median(samples(count, f)) }
	profiles := []Profile{mustProfile(t, WAN), mustProfile(t, LAN), mustProfile(t, Local)}
	for _, n := range []int{3, 5, 20} {
		for i := 1; i < len(profiles); i++ {
			slow, fast := profiles[i-1], profiles[i]
			for _, c := range []struct {
				what string
				f    func(p Profile) time.Duration
			}{
				{"DetectFailure", func(p Profile) time.Duration { return p.DetectFailure(rng, n) }},
				{"Spread", func(p Profile) time.Duration { return p.Spread(rng, n) }},
				{"Rejoin", func(p Profile) time.Duration { return p.Rejoin(rng, n) }},
			} {
				s, f := med(func() time.Duration { return c.f(slow) }), med(func() time.Duration { return c.f(fast) })
				if c.what == "Rejoin" && slow.Name == WAN {
					// wan and lan share serf's 30s reconnect; wan's dials
					// block longer.
					if s < f {
						t.Errorf("n=%d %s: median %s %v below %s %v", n, c.what, slow.Name, s, fast.Name, f)
					}
					continue
				}
				if s <= f {
					t.Errorf("n=%d %s: median %s %v not above %s %v", n, c.what, slow.Name, s, fast.Name, f)
				}
			}
		}
	}
	for _, p := range profiles {
		small := med(func() time.Duration { return p.DetectFailure(rng, 10) })
		big := med(func() time.Duration { return p.DetectFailure(rng, 100) })
		if big <= small {
			t.Errorf("%s: median detection with 100 members %v not above 10 members %v", p.Name, big, small)
		}
		major := med(func() time.Duration { return p.DetectCut(rng, 5, 4) })
		iso := med(func() time.Duration { return p.DetectCut(rng, 5, 1) })
		if iso <= major {
			t.Errorf("%s: isolated detection %v not above majority %v", p.Name, iso, major)
		}
	}
}

// TestDeterministic: the same seed gives the same samples.
func TestDeterministic(t *testing.T) {
	draw := func(seed uint64) []time.Duration {
		rng := rand.New(rand.NewPCG(seed, 7))
		var out []time.Duration
		for _, name := range []string{WAN, LAN, Local} {
			p := mustProfile(t, name)
			for _, n := range []int{2, 3, 7, 40} {
				out = append(out, p.DetectFailure(rng, n), p.DetectCut(rng, n, 1), p.Spread(rng, n),
					p.Rejoin(rng, n), p.RejoinCut(rng, n, n/2, time.Minute), p.Restart(rng, n))
			}
		}
		return out
	}
	a, b, c := draw(11), draw(11), draw(12)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different samples:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds, same samples: %v", a)
	}
}

// TestDegenerate: pools too small to gossip take no time, and a side
// larger than the pool is capped.
func TestDegenerate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	p := mustProfile(t, Local)
	for _, n := range []int{-1, 0, 1} {
		if d := p.DetectFailure(rng, n) + p.Spread(rng, n) + p.Rejoin(rng, n) + p.Restart(rng, n); d != 0 {
			t.Errorf("n=%d: %v, want 0", n, d)
		}
	}
	if d := p.DetectCut(rng, 4, 0); d != 0 {
		t.Errorf("side 0: %v, want 0", d)
	}
	if d := p.DetectCut(rng, 4, 9); d <= 0 {
		t.Errorf("side 9 of 4: %v, want a crash-like sample", d)
	}
}

func BenchmarkDetectFailure(b *testing.B) {
	p := mustProfile(b, LAN)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{5, 50} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				p.DetectFailure(rng, n)
			}
		})
	}
}

func BenchmarkSpread(b *testing.B) {
	p := mustProfile(b, LAN)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{5, 50} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				p.Spread(rng, n)
			}
		})
	}
}
