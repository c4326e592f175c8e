package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// streamLoss seeds the link-loss membership samples: + pair index << 12
// + how many samples the pair has drawn (each pair of gateways has its own
// stream, so one link's loss never shifts another's draws).
const streamLoss = 5 << 20

// lossKey is what a pair's link-loss sample depends on: the loss each way
// and how many members share the link (zero: loss does not reach the pair).
type lossKey struct {
	ab, ba float64
	n      int
}

// linkLoss is the current loss from region a to region b (degrade or base).
func (n *network) linkLoss(a, b int) float64 {
	if a == b {
		return 0
	}
	if n.dloss[a][b] >= 0 {
		return n.dloss[a][b]
	}
	return n.cfg.loss[a][b]
}

// relayed reports whether a running gateway of a third region reaches both
// a and b: memberlist's indirect probes and gossip then go around the
// a-b link (real Serf raises no false failure at 30% loss then:
// gossip.TestLossyLinkSerf).
func (w *world) relayed(a, b int) bool {
	for _, rs := range w.regions {
		c := rs.idx
		if c == a || c == b || !w.net.reachable(a, c) || !w.net.reachable(c, b) {
			continue
		}
		for _, g := range rs.gateways {
			if g.running {
				return true
			}
		}
	}
	return false
}

// pairLossKey is the lossKey of gateways o and s (o.idx < s.idx).
func (w *world) pairLossKey(o, s *gateway) lossKey {
	a, b := o.rs.idx, s.rs.idx
	if a == b || !o.running || !s.running || !w.net.reachable(a, b) {
		return lossKey{}
	}
	if o.view[s.idx].target != federation.StatusAlive || s.view[o.idx].target != federation.StatusAlive {
		return lossKey{}
	}
	k := lossKey{ab: w.net.linkLoss(a, b), ba: w.net.linkLoss(b, a)}
	if k.ab <= 0 && k.ba <= 0 || w.relayed(a, b) {
		return lossKey{}
	}
	// The members whose paths to each other all cross this link: the
	// running gateways of the two regions (they are each other's indirect
	// probe helpers).
	for _, g := range w.gateways {
		if g.running && (g.rs.idx == a || g.rs.idx == b) {
			k.n++
		}
	}
	return k
}

// lossTracePeriod is how long a link-loss sample runs (LossSpells, once
// per exposure and run); each pair replays it from its own random offset,
// round and round.
const lossTracePeriod = 6 * time.Hour

// lossTrace is one LossSpells sample for an exposure: the spells that
// ended (a and b's views), over period.
type lossTrace struct {
	period time.Duration
	spells [2][]gossip.Spell
}

// lossTraceFor returns the sample for key, drawing it on first use from a
// stream seeded by the run's seed and the key.
func (w *world) lossTraceFor(key lossKey) *lossTrace {
	if tr, ok := w.lossTraces[key]; ok {
		return tr
	}
	h := splitmix(math.Float64bits(key.ab)) ^ splitmix(math.Float64bits(key.ba)+1) ^ splitmix(uint64(key.n)+2)
	rng := rand.New(rand.NewPCG(splitmix(w.seed), h^streamLoss))
	out := w.profile.LossSpells(rng, key.n, key.ab, key.ba, lossTracePeriod)
	tr := &lossTrace{period: lossTracePeriod}
	for i, ss := range out {
		for _, s := range ss {
			if s.End >= 0 {
				tr.spells[i] = append(tr.spells[i], s)
			}
		}
	}
	if w.lossTraces == nil {
		w.lossTraces = map[lossKey]*lossTrace{}
	}
	w.lossTraces[key] = tr
	return tr
}

// recomputeLoss starts, for every pair of gateways whose link-loss
// exposure changed, the false failures the loss makes each raise about
// the other: the exposure's LossSpells sample (memberlist's probes,
// indirect probes, TCP fallback, suspicion and refutation; lossTraceFor),
// replayed from an offset drawn from the pair's own seeded stream, one
// spell at a time until the exposure changes again. A failure shows only
// while the truth says alive; a spell ends when the sample says, even if
// the loss stops first (the refutation or reconnect is under way).
func (w *world) recomputeLoss() {
	for _, o := range w.gateways {
		for _, s := range w.gateways[o.idx+1:] {
			key := w.pairLossKey(o, s)
			vo := &o.view[s.idx]
			if key == vo.lossKey {
				continue
			}
			vo.lossKey = key
			vo.lossGen++
			s.view[o.idx].lossGen++
			if key.n == 0 {
				continue
			}
			tr := w.lossTraceFor(key)
			vo.lossDraws++
			pair := uint64(o.idx*len(w.gateways) + s.idx)
			off := time.Duration(w.rand(streamLoss + pair<<12 + uint64(vo.lossDraws)).Int64N(int64(tr.period)))
			w.startLoss(o, s, tr.spells[0], tr.period, off)
			w.startLoss(s, o, tr.spells[1], tr.period, off)
		}
	}
}

// startLoss replays o's spells about s from offset off of the sample.
func (w *world) startLoss(o, s *gateway, spells []gossip.Spell, period, off time.Duration) {
	if len(spells) == 0 {
		return
	}
	k := len(spells) // the first spell starting at or after off: lap 0 or 1
	for i, sp := range spells {
		if sp.Start >= off {
			k = i
			break
		}
	}
	w.nextLoss(o, s, spells, period, w.now-off, k, o.view[s.idx].lossGen, o.inc, s.inc)
}

// nextLoss schedules spell k (lap k/len, counted from base) of o's view of
// s, and from it the next.
func (w *world) nextLoss(o, s *gateway, spells []gossip.Spell, period, base time.Duration, k, gen, inc, sinc int) {
	sp := spells[k%len(spells)]
	at := base + time.Duration(k/len(spells))*period + sp.Start
	if at > w.end {
		return
	}
	w.after(at-w.now, func() {
		vw := &o.view[s.idx]
		if vw.lossGen != gen || !o.running || o.inc != inc || s.inc != sinc {
			return
		}
		if vw.target == federation.StatusAlive && vw.status == federation.StatusAlive {
			vw.lossDown = true
			w.applyMember(o, s, federation.StatusFailed)
			w.after(sp.Down(), func() {
				vw := &o.view[s.idx]
				if !vw.lossDown || !o.running || o.inc != inc || s.inc != sinc || vw.target != federation.StatusAlive {
					return
				}
				vw.lossDown = false
				w.applyMember(o, s, federation.StatusAlive)
			})
		}
		w.nextLoss(o, s, spells, period, base, k+1, gen, inc, sinc)
	})
}
