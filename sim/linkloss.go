package sim

import (
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

// recomputeLoss draws, for every pair of gateways whose link-loss exposure
// changed, the false failures the loss makes each raise about the other
// until the end of the run (gossip.Profile.LossSpells: memberlist's
// probes, indirect probes, TCP fallback, suspicion and refutation, pair by
// pair with its own seeded stream) and schedules them. A failure shows
// only while the truth says alive; a spell ends when its sample says,
// even if the loss stops first (the refutation or reconnect is under way).
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
			span := w.end - w.now
			if key.n == 0 || span <= 0 {
				continue
			}
			vo.lossDraws++
			pair := uint64(o.idx*len(w.gateways) + s.idx)
			rng := w.rand(streamLoss + pair<<12 + uint64(vo.lossDraws))
			spells := w.profile.LossSpells(rng, key.n, key.ab, key.ba, span)
			w.scheduleLoss(o, s, spells[0])
			w.scheduleLoss(s, o, spells[1])
		}
	}
}

// scheduleLoss schedules o's false failures of s.
func (w *world) scheduleLoss(o, s *gateway, spells []gossip.Spell) {
	gen, inc, sinc := o.view[s.idx].lossGen, o.inc, s.inc
	for _, sp := range spells {
		w.after(sp.Start, func() {
			vw := &o.view[s.idx]
			if vw.lossGen != gen || !o.running || o.inc != inc || s.inc != sinc ||
				vw.target != federation.StatusAlive || vw.status != federation.StatusAlive {
				return
			}
			vw.lossDown = true
			w.applyMember(o, s, federation.StatusFailed)
		})
		if sp.End < 0 {
			continue
		}
		w.after(sp.End, func() {
			vw := &o.view[s.idx]
			if !vw.lossDown || !o.running || o.inc != inc || s.inc != sinc || vw.target != federation.StatusAlive {
				return
			}
			vw.lossDown = false
			w.applyMember(o, s, federation.StatusAlive)
		})
	}
}
