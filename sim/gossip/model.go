package gossip

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// maxRounds bounds every sampling loop (probe rounds, reconnect and
// push/pull periods): far more than the model ever needs, so that a
// degenerate profile cannot loop forever.
const maxRounds = 1000

// DetectFailure samples the time from a member's crash (or from the moment an
// observer is cut off from it) until that observer marks it failed, in a pool of n members.
//
// It is DetectCut(rng, n, n-1): the n-1 survivors all probe the dead
// member and confirm each other's suspicion.
func (p Profile) DetectFailure(rng *rand.Rand, n int) time.Duration {
	return p.DetectCut(rng, n, n-1)
}

// DetectCut samples the time from a cut until an observer marks a member on
// the other side failed, in a pool of n members of which side (the
// observer included) stay connected to the observer and the other n-side
// are unreachable from it. side = n-1 is a crash of one member; side = 1 is
// an observer isolated from everyone (no one confirms its suspicions, so
// they run to SuspicionMax, and its failed indirect probes slow its probing
// through Lifeguard's awareness). n < 2 or side < 1 returns 0; side is
// capped at n-1.
func (p Profile) DetectCut(rng *rand.Rand, n, side int) time.Duration {
	if n < 2 || side < 1 {
		return 0
	}
	side = min(side, n-1)
	// Each member of the observer's side fails its first probe of the
	// target at f[j]; its suspect message reaches others by gossip.
	f := make([]time.Duration, side)
	for j := range f {
		f[j] = p.firstFailedProbe(rng, n, side)
	}
	// Only the earliest suspicions matter: the first starts the timer and
	// at most k more confirm it, and gossip delays are short next to probe
	// intervals. So the observer's own and the k+3 earliest of the others'
	// are followed (it bounds the work in big pools).
	others := make([]int, 0, side-1)
	for j := 1; j < side; j++ {
		others = append(others, j)
	}
	slices.SortStableFunc(others, func(a, b int) int { return cmp.Compare(f[a], f[b]) })
	keep := append([]int{0}, others[:min(len(others), p.Confirmations(n)+3)]...)
	// The observer (member 0): suspicion starts with the first suspect
	// message to arrive, the later ones (distinct senders) confirm it.
	arrive := make([]time.Duration, len(keep))
	for i, j := range keep {
		arrive[i] = f[j]
		if j != 0 {
			arrive[i] += p.spread(rng, n, side)
		}
	}
	own := p.suspicionEnd(n, arrive)
	if side == 1 || f[0] <= f[keep[1]] {
		return own
	}
	// The member that suspected first times out first (in the usual case),
	// and its dead message then reaches the observer by gossip.
	first := keep[1]
	for i, j := range keep {
		arrive[i] = f[j]
		if j != first {
			arrive[i] += p.spread(rng, n, side)
		}
	}
	viaFirst := p.suspicionEnd(n, arrive) + p.spread(rng, n, side)
	return min(own, viaFirst)
}

// detectBound bounds DetectCut: the longest a prober slowed down by
// awareness takes to reach a member (two rounds of n-1 probes), plus
// SuspicionMax, plus a generous allowance for the dead message's gossip.
func (p Profile) detectBound(n int) time.Duration {
	return time.Duration(2*(n-1)*p.AwarenessMaxMultiplier)*p.ProbeInterval + p.SuspicionMax(n) + p.PushPullPeriod(n)
}

// suspicionEnd is when a member that receives suspect messages about one
// member at the given times (from distinct members) declares it dead: the
// first starts the suspicion timer at SuspicionMax (SuspicionMin when k is
// 0), each later one before the deadline, up to k, shortens it
// (memberlist suspicion.go newSuspicion, Confirm).
func (p Profile) suspicionEnd(n int, arrive []time.Duration) time.Duration {
	a := slices.Clone(arrive)
	slices.Sort(a)
	start := a[0]
	k := p.Confirmations(n)
	deadline := start + p.suspicionTimeout(n, 0)
	for c, t := range a[1:] {
		if c >= k || t >= deadline {
			break
		}
		deadline = max(start+p.suspicionTimeout(n, c+1), t)
	}
	return deadline
}

// firstFailedProbe samples, for one member of a side of the given size,
// when its first failed probe of a given member on the other side ends
// (memberlist state.go probe, probeNode): each ProbeInterval it probes the
// next member of a shuffled round-robin list of the n-1 others, reshuffled
// after each round; the cut falls at a uniform point of the schedule. A
// probe of an unreachable member lasts ProbeInterval × (awareness+1)
// before the member is suspected; awareness (Lifeguard, awareness.go)
// rises by one per indirect-probe helper that sent no nack (or by one when
// there was no helper), capped at AwarenessMaxMultiplier-1, and falls by one
// per successful probe. Helpers are up to IndirectChecks alive members
// other than the prober and the probed.
func (p Profile) firstFailedProbe(rng *rand.Rand, n, side int) time.Duration {
	const (
		reachable = iota
		unreachable
		target
	)
	others := make([]int8, n-1) // kinds of the prober's n-1 others
	for i := range others {
		switch {
		case i < side-1:
			others[i] = reachable
		case i == side-1:
			others[i] = target
		default:
			others[i] = unreachable
		}
	}
	suspected := make([]bool, n-1) // unreachable members this prober suspects
	nSuspected := 0
	rng.Shuffle(len(others), func(i, j int) {
		others[i], others[j] = others[j], others[i]
	})
	pos := rng.IntN(len(others))
	t := time.Duration(rng.Int64N(int64(p.ProbeInterval)))
	score := 0
	for range maxRounds * n {
		if pos == len(others) {
			// resetNodes: reshuffle (suspected flags move with the members).
			rng.Shuffle(len(others), func(i, j int) {
				others[i], others[j] = others[j], others[i]
				suspected[i], suspected[j] = suspected[j], suspected[i]
			})
			pos = 0
		}
		kind := others[pos]
		if kind == reachable {
			t += p.ProbeInterval
			score = max(score-1, 0)
			pos++
			continue
		}
		t += p.ProbeInterval * time.Duration(score+1)
		if kind == target {
			return t
		}
		// Indirect probes: helpers drawn among alive (not suspected)
		// members other than prober and probed.
		aliveUnreach := (n - side - 1) - nSuspected - 1 // minus the probed one
		if suspected[pos] {
			aliveUnreach++ // the probed one was not counted as alive
		}
		helpers := min(p.IndirectChecks, (side-1)+aliveUnreach)
		delta := 0
		if helpers == 0 {
			delta = 1
		} else {
			// hypergeometric: unreachable helpers send no nack.
			pool, bad := (side-1)+aliveUnreach, aliveUnreach
			for range helpers {
				if rng.IntN(pool) < bad {
					delta++
					bad--
				}
				pool--
			}
		}
		score = min(score+delta, p.AwarenessMaxMultiplier-1)
		if !suspected[pos] {
			suspected[pos] = true
			nSuspected++
		}
		pos++
	}
	return t
}

// Spread samples the time for a broadcast (a tag change, join or graceful leave)
// from one member to reach one given other member, in a pool of n members.
func (p Profile) Spread(rng *rand.Rand, n int) time.Duration {
	return p.spread(rng, n, n)
}

// spread samples the time for a broadcast from member 0 to reach member 1
// when only members 0..reach-1 can talk to each other (the others are in
// the member list but their messages are lost). Each member gossips every
// GossipInterval (its own random phase; memberlist state.go schedule,
// triggerFunc) to GossipNodes random others (gossip, kRandomNodes); a
// member that receives the broadcast queues it and passes it on
// RetransmitLimit(n) times in all (queue.go TransmitLimitedQueue). If the
// broadcast dies out first, push/pull carries it: each member every
// PushPullPeriod(n) syncs its full state with one random other (state.go
// pushPull). Piggybacking on probes and acks is not modelled (it only
// speeds spread up, and by at most one probe in ~10 gossip rounds).
func (p Profile) spread(rng *rand.Rand, n, reach int) time.Duration {
	return p.spreadFrom(rng, n, reach, -1)
}

// spreadFrom is spread with the source's first gossip tick at first (a
// random phase when negative).
func (p Profile) spreadFrom(rng *rand.Rand, n, reach int, first time.Duration) time.Duration {
	if n < 2 || reach < 2 {
		return 0
	}
	limit := p.RetransmitLimit(n)
	fanout := min(p.GossipNodes, n-1)
	infected := make([]bool, reach)
	next := make([]time.Duration, reach) // next gossip tick of an infected member
	left := make([]int, reach)
	infect := func(i int, at time.Duration) {
		infected[i] = true
		next[i] = at + time.Duration(rng.Int64N(int64(p.GossipInterval))) // phase
		left[i] = limit
	}
	infect(0, 0)
	if first >= 0 {
		next[0] = first
	}
	count := 1
	pick := make([]int, 0, fanout)
	var last time.Duration
	for range reach * (limit + 1) { // every tick uses up at least one transmit
		who := -1
		for i := range reach {
			if infected[i] && left[i] > 0 && (who < 0 || next[i] < next[who]) {
				who = i
			}
		}
		if who < 0 {
			break
		}
		at := next[who]
		last = at
		// kRandomNodes: fanout distinct others, chosen uniformly.
		pick = randomOthers(rng, pick[:0], n, who, fanout)
		for _, to := range pick {
			if left[who] == 0 {
				break
			}
			left[who]--
			if to >= reach || infected[to] {
				continue
			}
			if to == 1 {
				return at
			}
			infect(to, at)
			count++
		}
		next[who] += p.GossipInterval
	}
	return last + p.pushPullCatchUp(rng, n, count)
}

// randomOthers appends k distinct members of 0..n-1 other than self, chosen
// uniformly, in random order (k ≤ n-1).
func randomOthers(rng *rand.Rand, out []int, n, self, k int) []int {
	if 2*k >= n-1 { // dense: a partial shuffle
		all := make([]int, 0, n-1)
		for i := range n {
			if i != self {
				all = append(all, i)
			}
		}
		for i := range k {
			j := i + rng.IntN(len(all)-i)
			all[i], all[j] = all[j], all[i]
		}
		return append(out, all[:k]...)
	}
	start := len(out)
	for len(out)-start < k { // sparse: rejection, at most half rejected
		c := rng.IntN(n - 1)
		if c >= self {
			c++
		}
		if !slices.Contains(out[start:], c) {
			out = append(out, c)
		}
	}
	return out
}

// pushPullCatchUp samples when a member that missed a broadcast known to
// `have` of the other n-1 members gets it by push/pull: every
// PushPullPeriod(n), at its own random phase, it syncs with a random
// other, and each of the others that have it syncs with it with
// probability 1/(n-1).
func (p Profile) pushPullCatchUp(rng *rand.Rand, n, have int) time.Duration {
	period := p.PushPullPeriod(n)
	if have <= 0 || period <= 0 {
		return period
	}
	best := time.Duration(-1)
	for range have + 1 { // the member itself, then each one that has it
		phase := time.Duration(rng.Int64N(int64(period)))
		prob := 1 / float64(n-1)
		if best < 0 {
			prob = float64(have) / float64(n-1)
		}
		for r := range maxRounds {
			at := phase + time.Duration(r)*period
			if best >= 0 && at >= best {
				break
			}
			if rng.Float64() < prob {
				best = at
				break
			}
		}
	}
	if best < 0 {
		return time.Duration(maxRounds) * period
	}
	return best
}

// LongCut is the cut length Rejoin assumes: long enough that every member
// has long marked the other side failed and retries it steadily.
const LongCut = time.Hour

// Rejoin samples the time, after a partition heals or a failed member restarts,
// until an observer that had marked it failed sees it alive again.
//
// It is RejoinCut(rng, n, n-1, LongCut): one member was cut off from the
// n-1 others (or froze and came back with its old state) for long. A
// member that restarts and joins a live member is Restart.
func (p Profile) Rejoin(rng *rand.Rand, n int) time.Duration {
	return p.RejoinCut(rng, n, n-1, LongCut)
}

// RejoinCut samples the time, after a cut that lasted cutFor between the
// observer's side of side members and the other n-side heals, until the
// observer sees a given member of the other side alive again.
//
// Once both sides have marked each other dead, memberlist alone does not
// cross the cut again: it probes and pushes/pulls only with members it
// holds alive (state.go probe, pushPull). Serf's reconnect does (serf.go
// handleReconnect, reconnect): every ReconnectInterval, from its start,
// each member with failed members goes ahead with probability
// min(1, failed/alive) and joins one failed member picked at random. A
// join into the cut blocks for TCPTimeout (the dial is black-holed), which
// delays that member's next reconnect, also across the heal. In the first
// join after the heal the two members see every member of the other side
// alive at once (measured: modelcheck_test.go), and each passes the news
// on to its own side by gossip. So the time is the first cross-cut
// reconnect after the heal, plus a gossip spread unless the observer is
// one of the two (probability 1/side, whichever side the joiner is on).
// Push/pull (PushPullPeriod) plays no part: it picks only members held
// alive. A side starts reconnecting once it has marked the other failed
// (a DetectCut sample from the cut).
func (p Profile) RejoinCut(rng *rand.Rand, n, side int, cutFor time.Duration) time.Duration {
	if n < 2 || side < 1 {
		return 0
	}
	side = min(side, n-1)
	t := p.crossJoin(rng, n, side, cutFor)
	if rng.IntN(side) == 0 {
		return t // the observer made or took the join
	}
	return t + p.spread(rng, n, n)
}

// Restart samples the time, after a failed member restarts with its old
// name and joins a live member (as a gateway does, serfmember.SerfConfig
// Join), until another member that had marked it failed sees it alive.
// Its fresh alive message does not count (the others hold it dead at an
// incarnation at least as high; state.go aliveNode); the join's push/pull
// shows it its own death, it refutes with a higher incarnation (state.go
// refute) and gossips that from its first gossip tick, one GossipInterval
// after its start (memberlist's tickers start with it), to spread as any
// broadcast.
func (p Profile) Restart(rng *rand.Rand, n int) time.Duration {
	if n < 2 {
		return 0
	}
	return p.spreadFrom(rng, n, n, p.GossipInterval)
}

// crossJoin samples the first reconnect after the heal (time 0; the cut
// began at -cutFor) that joins across the cut. Each member's reconnect
// loop ticks every ReconnectInterval from a random phase; once its side
// has marked the other failed, each tick goes ahead with probability
// min(1, failed/alive) (failed: the other side; alive: its own side,
// itself included), and an attempt during the cut blocks the loop for
// TCPTimeout. A cut longer than 20 loop periods after detection starts
// the loop 20 periods before the heal, already retrying (its state is
// then independent of where it started). The observer's side counts as
// having detected by the heal.
func (p Profile) crossJoin(rng *rand.Rand, n, side int, cutFor time.Duration) time.Duration {
	r := p.ReconnectInterval
	if r <= 0 {
		return 0
	}
	cutFor = max(cutFor, 0)
	window := 20 * (r + p.TCPTimeout)
	var detect [2]time.Duration
	if cutFor <= window+p.detectBound(n) {
		detect = [2]time.Duration{p.DetectCut(rng, n, side), p.DetectCut(rng, n, n-side)}
		// The observer's side has marked the other failed (that is what it
		// rejoins from), by the heal at the latest. The other side may not
		// have yet: then only the observer's side retries.
		detect[0] = min(detect[0], cutFor)
	}
	best := time.Duration(-1)
	for i := range n {
		s, own, other := 0, side, n-side
		if i >= side {
			s, own, other = 1, n-side, side
		}
		prob := min(1, float64(other)/float64(own))
		start, retrying := -cutFor, -cutFor+detect[s]
		if cutFor > window+detect[s] {
			start, retrying = -window, -window
		}
		at := start + time.Duration(rng.Int64N(int64(r)))
		for range 2*maxRounds + 40 {
			if best >= 0 && at >= best {
				break
			}
			attempt := at >= retrying && rng.Float64() < prob
			if attempt && at >= 0 {
				best = at
				break
			}
			at += r
			if attempt {
				at += p.TCPTimeout // black-holed dial into the cut
			}
		}
	}
	if best < 0 {
		return time.Duration(maxRounds) * r
	}
	return best
}
