package gossip

import (
	"math/rand/v2"
	"time"
)

// Spell is one false failure under link loss: an observer marks a member
// failed at Start and sees it alive again at End (End < 0: still failed
// when the sample ends).
type Spell struct {
	Start, End time.Duration
}

// Down is the spell's length (0 while it is still open).
func (s Spell) Down() time.Duration {
	if s.End < 0 {
		return 0
	}
	return s.End - s.Start
}

// Link-loss message kinds, as memberlist's alive, suspect and dead.
const (
	lossAlive = iota
	lossSuspect
	lossDead
)

// lossMsg is a queued broadcast (memberlist queue.go: a newer message
// about the same member replaces an older one) with its transmits left.
type lossMsg struct {
	kind int8
	inc  int
	left int
}

// lossNode is one of the two members in LossSpells.
type lossNode struct {
	inc int // own incarnation
	// the other member as this one sees it
	state  int8
	seen   int           // its incarnation as last heard
	until  time.Duration // suspicion deadline (state suspect)
	deadAt time.Duration // when marked dead (state dead)
	score  int           // Lifeguard awareness
	// broadcasts: about itself (a refutation) and about the other
	self, other lossMsg
	// schedule
	probe, pending   time.Duration // next probe; pending >= 0: a failed probe ends then (suspect)
	gossipPhase      time.Duration
	gossiped         time.Duration // last gossip tick handled
	pushPull, reconn time.Duration
	spells           []Spell
	open             int // index of the open spell, -1 if none
	// relayed copies of its last broadcasts (n > 2): when the other
	// members' gossip carries them to the other (-1: none pending)
	relaySelf, relayOther time.Duration
	relayedSelf           lossMsg
	relayedOther          lossMsg
	// the probe list (state.go probe): self, the other, the n-2 others
	list []int8
	pos  int
	last int8 // what the last tick probed
}

// Probe list entries.
const (
	probeSelf = iota
	probeOther
	probeThird
	probeNone
)

// next runs one probe tick's walk of the list (memberlist state.go probe):
// it skips itself and a dead other, reshuffles at the end of the list
// (resetNodes), and gives up after as many steps as the list is long, so
// that with two members some ticks probe no one. It reports whether the
// tick probes the other (nd.last says what it did).
func (nd *lossNode) next(rng *rand.Rand, otherDead bool) bool {
	nd.last = probeNone
	for check := 0; check < len(nd.list); {
		if nd.pos >= len(nd.list) {
			rng.Shuffle(len(nd.list), func(a, b int) { nd.list[a], nd.list[b] = nd.list[b], nd.list[a] })
			nd.pos = 0
			check++
			continue
		}
		kind := nd.list[nd.pos]
		nd.pos++
		if kind == probeSelf || (kind == probeOther && otherDead) {
			check++
			continue
		}
		nd.last = kind
		return kind == probeOther
	}
	return false
}

// LossSpells samples, for span, the false failures that loss on the one
// link between members a and b makes each raise about the other, in a pool
// of n members where every other path between them crosses the same link
// (no relay: with a third member that reaches both without loss, real
// Serf raises none; see the package doc). Each UDP packet a->b is lost with
// probability lossAB, b->a with lossBA, and so is each stream dial (a SYN);
// an established stream loses nothing (TCP retransmits). out[0] are a's
// spells about b, out[1] b's about a.
//
// It replays memberlist's mechanics event by event, with zero latency
// (memberlist v0.7.0 state.go, suspicion.go, awareness.go, queue.go; serf
// serf.go reconnect):
//
//   - every ProbeInterval × (awareness+1) each probes the other: a UDP ping
//     (with its queued broadcasts piggybacked; to a suspect member, the
//     suspect message instead) that the other acks (with its broadcasts
//     piggybacked), handling the ping's piggyback after acking. When ping
//     or ack is lost, up to IndirectChecks other members (n-2 at most) ping
//     through the link for it, and a TCP ping runs over a stream; all lost
//     means suspect, and awareness rises by one when there was no helper.
//     A successful probe lowers it by one, a refutation raises it by one.
//   - the suspicion times out after SuspicionMin(n) when no confirmation
//     is expected, otherwise SuspicionMax(n) (the others reach the member:
//     nobody confirms), and the member is marked dead (a failed event).
//   - a member that hears it is suspected or dead (piggybacked, gossiped
//     or pulled) refutes: it bumps its incarnation and broadcasts alive; the
//     other marks it alive again on hearing that (a join event after dead).
//   - broadcasts go out RetransmitLimit(n) times in all: piggybacked, and
//     every GossipInterval to GossipNodes random members (the other with
//     probability GossipNodes/(n-1)), to a dead member only for
//     GossipToTheDeadTime.
//   - with more members (n > 2, all on one side or the other of the
//     link), a new broadcast also spreads through them and reaches the
//     other after a Spread(n) stretched by 1/(1-loss): a rough stand-in
//     for gossip relayed across the link by many members.
//   - every PushPullPeriod(n) each pushes/pulls full state over a stream
//     with a random member it holds alive (the other with probability
//     1/(n-1)); every ReconnectInterval, a member that holds the other dead
//     joins it (a push/pull). A lost dial blocks its loop for TCPTimeout.
func (p Profile) LossSpells(rng *rand.Rand, n int, lossAB, lossBA float64, span time.Duration) [2][]Spell {
	var out [2][]Spell
	if n < 2 || span <= 0 || (lossAB <= 0 && lossBA <= 0) || p.ProbeInterval <= 0 || p.GossipInterval <= 0 {
		return out
	}
	loss := [2]float64{lossAB, lossBA} // loss[i]: from i to the other
	limit := p.RetransmitLimit(n)
	helpers := min(p.IndirectChecks, n-2)
	fanout := min(1, float64(p.GossipNodes)/float64(n-1))
	pick := 1 / float64(n-1)
	suspicion := p.suspicionTimeout(n, 0)
	ppPeriod := p.PushPullPeriod(n)
	var nodes [2]lossNode
	for i := range nodes {
		nd := &nodes[i]
		*nd = lossNode{inc: 1, seen: 1, pending: -1, open: -1, gossiped: -1, relaySelf: -1, relayOther: -1}
		nd.list = make([]int8, n)
		nd.list[0], nd.list[1] = probeSelf, probeOther
		for k := 2; k < n; k++ {
			nd.list[k] = probeThird
		}
		rng.Shuffle(n, func(a, b int) { nd.list[a], nd.list[b] = nd.list[b], nd.list[a] })
		nd.pos = rng.IntN(n + 1)
		nd.probe = time.Duration(rng.Int64N(int64(p.ProbeInterval)))
		nd.gossipPhase = time.Duration(rng.Int64N(int64(p.GossipInterval)))
		nd.pushPull = -1
		if ppPeriod > 0 {
			nd.pushPull = time.Duration(rng.Int64N(int64(ppPeriod)))
		}
		nd.reconn = -1
		if p.ReconnectInterval > 0 {
			nd.reconn = time.Duration(rng.Int64N(int64(p.ReconnectInterval)))
		}
	}
	lost := func(i int) bool { return loss[i] > 0 && rng.Float64() < loss[i] }
	// take returns i's queued broadcasts for one packet, counting the transmit.
	take := func(i int) (self, other lossMsg) {
		nd := &nodes[i]
		if nd.self.left > 0 {
			self = nd.self
			nd.self.left--
		}
		if nd.other.left > 0 {
			other = nd.other
			nd.other.left--
		}
		return self, other
	}
	var now time.Duration
	// relay: with other members in the pool, a new broadcast of i also
	// spreads through them (gossip, GossipNodes a tick, RetransmitLimit
	// each) and reaches the other after a Spread, slowed by the loss on
	// the link it must cross (1/(1-loss) tries).
	relay := func(i int, self bool) {
		if n <= 2 {
			return
		}
		nd := &nodes[i]
		d := time.Duration(float64(p.Spread(rng, n)) / float64(1-min(loss[i], 0.99)))
		if self {
			nd.relaySelf, nd.relayedSelf = now+d, nd.self
		} else {
			nd.relayOther, nd.relayedOther = now+d, nd.other
		}
	}
	refute := func(i, accused int) {
		nd := &nodes[i]
		if accused < nd.inc {
			return
		}
		nd.inc = accused + 1
		nd.self = lossMsg{kind: lossAlive, inc: nd.inc, left: limit}
		relay(i, true)
		nd.score = min(nd.score+1, p.AwarenessMaxMultiplier-1)
	}
	// hearAlive: i hears the other is alive at incarnation inc.
	hearAlive := func(i, inc int) {
		nd := &nodes[i]
		// A member dead for GossipToTheDeadTime is dropped from the list
		// (state.go resetNodes); any alive message about it is news then.
		forgotten := nd.state == lossDead && now-nd.deadAt >= p.GossipToTheDeadTime
		if inc <= nd.seen && !forgotten {
			return
		}
		if nd.state == lossDead && nd.open >= 0 {
			nd.spells[nd.open].End = now
			nd.open = -1
		}
		nd.state, nd.seen = lossAlive, inc
		if nd.other.kind != lossAlive {
			nd.other = lossMsg{}
		}
	}
	suspect := func(i int) {
		nd := &nodes[i]
		if nd.state != lossAlive {
			return
		}
		nd.state, nd.until = lossSuspect, now+suspicion
		nd.other = lossMsg{kind: lossSuspect, inc: nd.seen, left: limit}
		relay(i, false)
	}
	// deliver applies a message's piggybacked broadcasts from i at the other.
	deliver := func(i int, self, other lossMsg) {
		j := 1 - i
		if self.inc > 0 {
			hearAlive(j, self.inc)
		}
		if other.kind == lossSuspect || other.kind == lossDead {
			refute(j, other.inc)
		}
	}
	// exchange is a push/pull from i over a stream that got through.
	exchange := func(i int) {
		j := 1 - i
		a, b := &nodes[i], &nodes[j]
		// j reads i's state, sends its own (before merging), then merges.
		jInc, jState, jSeen := b.inc, b.state, b.seen
		hearAlive(j, a.inc)
		if a.state != lossAlive {
			refute(j, a.seen)
		}
		hearAlive(i, jInc)
		if jState != lossAlive {
			refute(i, jSeen)
		}
	}
	end := span + 10*max(p.ReconnectInterval, p.GossipToTheDeadTime, ppPeriod)
	for range 50_000_000 {
		// The next event: 0 probe, 1 gossip, 2 push/pull, 3 reconnect,
		// 4 suspicion timeout, 5 and 6 relayed broadcasts, of either member.
		who, what, at := -1, -1, end
		for i := range nodes {
			nd := &nodes[i]
			cand := [7]time.Duration{nd.probe, -1, nd.pushPull, nd.reconn, -1, nd.relaySelf, nd.relayOther}
			if nd.pending >= 0 {
				cand[0] = nd.pending
			}
			toDead := nd.state != lossDead || now-nd.deadAt < p.GossipToTheDeadTime || n > 2
			if (nd.self.left > 0 || nd.other.left > 0) && toDead {
				// the first gossip tick at or after now not yet handled
				k := max((now-nd.gossipPhase+p.GossipInterval-1)/p.GossipInterval, 0)
				t := nd.gossipPhase + k*p.GossipInterval
				if t <= nd.gossiped {
					t += p.GossipInterval
				}
				cand[1] = t
			}
			if nd.state == lossSuspect {
				cand[4] = nd.until
			}
			for e, c := range cand {
				if c >= 0 && c < at {
					who, what, at = i, e, c
				}
			}
		}
		if who < 0 {
			break
		}
		now = at
		i, j := who, 1-who
		nd := &nodes[i]
		switch what {
		case 0: // probe
			if nd.pending >= 0 {
				nd.pending = -1
				suspect(i)
			}
			start := now
			if !nd.next(rng, nd.state == lossDead) {
				nd.probe = start + p.ProbeInterval
				if nd.last == probeThird {
					nd.score = max(nd.score-1, 0) // a third member answered
				}
				break
			}
			scaled := p.ProbeInterval * time.Duration(nd.score+1)
			var s, o lossMsg
			if nd.state == lossAlive {
				s, o = take(i)
			} else {
				o = lossMsg{kind: lossSuspect, inc: nd.seen, left: 1}
			}
			ok := false
			if !lost(i) {
				// j acks first (its broadcasts piggybacked), then handles the
				// ping's piggyback.
				as, ao := take(j)
				if !lost(j) {
					ok = true
					deliver(j, as, ao)
				}
				deliver(i, s, o)
			}
			for h := 0; !ok && h < helpers; h++ {
				ok = !lost(i) && !lost(j)
			}
			if !ok && !lost(i) {
				ok = true // the TCP ping's dial got through
			}
			if ok {
				nd.score = max(nd.score-1, 0)
				nd.probe = start + p.ProbeInterval
				break
			}
			if helpers == 0 {
				nd.score = min(nd.score+1, p.AwarenessMaxMultiplier-1)
			}
			nd.pending = start + scaled
			nd.probe = nd.pending
		case 1: // gossip tick
			nd.gossiped = now
			if nd.state == lossDead && now-nd.deadAt >= p.GossipToTheDeadTime {
				// the other gets no gossip; the broadcasts go to others
				take(i)
				break
			}
			s, o := take(i)
			if rng.Float64() < fanout && !lost(i) {
				deliver(i, s, o)
			}
		case 2: // push/pull
			nd.pushPull += ppPeriod
			if nd.state != lossDead && rng.Float64() < pick {
				if lost(i) {
					nd.pushPull += p.TCPTimeout // the loop waits out the black-holed dial
				} else {
					exchange(i)
				}
			}
		case 3: // serf reconnect
			nd.reconn += p.ReconnectInterval
			if nd.state == lossDead {
				if lost(i) {
					nd.reconn += p.TCPTimeout // the loop waits out the black-holed dial
				} else {
					exchange(i)
				}
			}
		case 5: // relayed refutation arrives
			nd.relaySelf = -1
			deliver(i, nd.relayedSelf, lossMsg{})
		case 6: // relayed suspicion or death arrives
			nd.relayOther = -1
			deliver(i, lossMsg{}, nd.relayedOther)
		case 4: // suspicion timeout
			nd.state, nd.deadAt = lossDead, now
			nd.other = lossMsg{kind: lossDead, inc: nd.seen, left: limit}
			relay(i, false)
			if now < span {
				nd.spells = append(nd.spells, Spell{Start: now, End: -1})
				nd.open = len(nd.spells) - 1
			}
		}
		_ = j
	}
	for i := range nodes {
		out[i] = nodes[i].spells
	}
	return out
}
