package sim

import (
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// memberView is what one gateway's membership layer believes of another:
// the status fed to its federation core, the status the truth is heading
// to (a transition is pending while they differ) and the last version tag.
type memberView struct {
	status  federation.MemberStatus // as fed to the core; 0: never heard of
	target  federation.MemberStatus
	gen     int
	version uint64
	// cutAt is when target last became failed, cutSide how many running
	// gateways the observer reached then (itself included): what a heal's
	// RejoinCut needs.
	cutAt   time.Duration
	cutSide int
	// subjInc is the subject's incarnation when the observer last saw it
	// running: a different one means it restarted since.
	subjInc int
	// aliveAt is when the core was last told the subject is alive after
	// not being so (a join, a rejoin after a cut, a restart).
	aliveAt time.Duration
	// Link loss (linkloss.go): the exposure last sampled (kept on the
	// lower-indexed gateway's view), a generation that voids the spells
	// of an older sample, how many samples the pair drew, and whether the
	// core now believes failed because of a loss spell.
	lossKey   lossKey
	lossGen   int
	lossDraws int
	lossDown  bool
}

// pathOK reports whether gossip gets between regions a and b: directly, or
// through a running gateway of a third region that reaches both
// (memberlist's indirect probes and gossip relays).
func (w *world) pathOK(a, b int) bool {
	if a == b || w.net.reachable(a, b) {
		return true
	}
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

// wantStatus is the status observer o should converge to for subject s.
func (w *world) wantStatus(o, s *gateway) federation.MemberStatus {
	switch {
	case s.left:
		return federation.StatusLeft
	case s.running && w.pathOK(o.rs.idx, s.rs.idx):
		return federation.StatusAlive
	}
	return federation.StatusFailed
}

// side is how many running gateways o reaches (itself included): the
// members on its side of whatever cut the network has.
func (w *world) side(o *gateway) int {
	n := 0
	for _, g := range w.gateways {
		if g.running && w.pathOK(o.rs.idx, g.rs.idx) {
			n++
		}
	}
	return n
}

// recomputeMembership starts, for every pair whose truth changed, the
// transition the gossip model says takes:
//
//   - alive to failed (a crash, a partition, a cut): DetectCut with the
//     observer's side, the running gateways it still reaches (a crash
//     with everything else up is DetectFailure);
//   - failed or left to alive because the subject restarted and joined:
//     Restart (it refutes its own death at once);
//   - failed to alive because a cut healed: RejoinCut with the side and
//     the length of the cut (Serf's reconnect loop crosses it);
//   - a gateway that restarts learns the live members from its join's
//     push/pull (one round trip), and the failed ones as before (Rejoin);
//   - a graceful leave: Spread;
//   - loss on a link no third region bridges: false failures and their
//     recovery from LossSpells (recomputeLoss, linkloss.go).
//
// A pending transition the truth undoes is cancelled.
func (w *world) recomputeMembership() {
	n := len(w.gateways)
	sides := make([]int, len(w.gateways))
	for _, o := range w.gateways {
		if o.running {
			sides[o.idx] = w.side(o)
		}
	}
	for _, o := range w.gateways {
		if !o.running {
			continue
		}
		for _, s := range w.gateways {
			if s == o {
				continue
			}
			want := w.wantStatus(o, s)
			vw := &o.view[s.idx]
			restarted := s.running && s.inc != vw.subjInc
			if s.running {
				vw.subjInc = s.inc
			}
			if vw.target == want {
				continue
			}
			if want == federation.StatusFailed {
				vw.cutAt, vw.cutSide = w.now, sides[o.idx]
			}
			vw.target = want
			vw.gen++
			vw.lossDown = false
			if want == vw.status && !(restarted && want == federation.StatusAlive) {
				continue // back to what the core believes: nothing to deliver
			}
			// (A gateway that restarted before o saw it fail is a new
			// incarnation all the same: its rejoin brings its new tags,
			// whose version may be lower than the old process's, e.g.
			// after its region lost its data.)
			var d time.Duration
			switch {
			case want == federation.StatusLeft:
				d = w.profile.Spread(w.memRng, n)
			case want == federation.StatusAlive && vw.status == 0:
				d = w.net.rtt(o.rs.idx, s.rs.idx) // the join's push/pull
			case want == federation.StatusAlive && restarted:
				d = w.profile.Restart(w.memRng, n)
			case want == federation.StatusAlive:
				d = w.profile.RejoinCut(w.memRng, n, vw.cutSide, w.now-vw.cutAt)
			case vw.status == 0:
				d = w.profile.Rejoin(w.memRng, n) // learned with the member list at join
			default:
				d = w.profile.DetectCut(w.memRng, n, sides[o.idx])
			}
			gen, inc := vw.gen, o.inc
			w.after(d, func() {
				if !o.running || o.inc != inc || o.view[s.idx].gen != gen {
					return
				}
				w.applyMember(o, s, want)
			})
		}
	}
	w.recomputeLoss()
}

// applyMember delivers a status change of s to o's federation core.
func (w *world) applyMember(o, s *gateway, st federation.MemberStatus) {
	vw := &o.view[s.idx]
	kind := federation.EventJoin
	switch st {
	case federation.StatusFailed:
		kind = federation.EventFailed
	case federation.StatusLeft:
		kind = federation.EventLeave
	default:
		vw.version = s.pubVer
		if vw.status != federation.StatusAlive {
			vw.aliveAt = w.now
		}
	}
	vw.status = st
	w.log.event(w.now, "member", kv("observer", o.name), kv("subject", s.name), kv("status", st.String()),
		kvInt("version", int64(vw.version)))
	o.memberEvent(kind, s, vw.version)
}

// spreadVersion gossips s's new version tag to every observer that sees it
// alive, each after a sampled broadcast delay.
func (w *world) spreadVersion(s *gateway, v uint64) {
	n := len(w.gateways)
	for _, o := range w.gateways {
		if o == s || !o.running || o.view[s.idx].target != federation.StatusAlive {
			continue
		}
		d := w.profile.Spread(w.memRng, n)
		inc := o.inc
		w.after(d, func() {
			if !o.running || o.inc != inc {
				return
			}
			vw := &o.view[s.idx]
			if vw.status != federation.StatusAlive || v <= vw.version {
				return
			}
			vw.version = v
			o.memberEvent(federation.EventUpdate, s, v)
		})
	}
}
