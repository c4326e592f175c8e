package sim

import (
	"math"
	"slices"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/sim/gossip"
)

// The invariants judge a lookup by the simulated world, not by what the
// deciding core believes: a core that misjudges reachability or
// staleness must be able to trip them.

// never is a time long before the run: what has held since the start has
// held "for longer than any bound".
const never = time.Duration(math.MinInt64 / 2)

// noteReach records when each ordered pair of regions last changed between
// reachable (both ways) and cut off (either way blocked).
func (n *network) noteReach(now time.Duration) {
	if n.flip == nil {
		n.flip, n.wasReach = square[time.Duration](n.k), square[bool](n.k)
		for a := range n.k {
			for b := range n.k {
				n.flip[a][b], n.wasReach[a][b] = never, true
			}
		}
	}
	for a := range n.k {
		for b := range n.k {
			if r := n.reachable(a, b); r != n.wasReach[a][b] {
				n.flip[a][b], n.wasReach[a][b] = now, r
			}
		}
	}
}

// cutLonger reports whether b has been cut off from a (either direction
// blocked) for longer than d.
func (w *world) cutLonger(a, b int, d time.Duration) bool {
	n := w.net
	return a != b && n.flip != nil && !n.wasReach[a][b] && w.now-n.flip[a][b] > d
}

// reachLonger reports whether a and b have been reachable both ways for
// longer than d (a region always reaches itself).
func (w *world) reachLonger(a, b int, d time.Duration) bool {
	n := w.net
	return a == b || n.flip == nil || (n.wasReach[a][b] && w.now-n.flip[a][b] > d)
}

// detectionBound is how long membership may take, at worst, to see a cut
// in a pool of n gateways with the profile: two rounds of probes slowed
// down by Lifeguard's awareness to the most, then SuspicionMax, then a
// push/pull period for the news (the bound the gossip model's DetectCut is
// checked against), plus a second for the federation core's tick.
func detectionBound(p gossip.Profile, n int) time.Duration {
	n = max(n, 2)
	return time.Duration(2*(n-1)*p.AwarenessMaxMultiplier)*p.ProbeInterval + p.SuspicionMax(n) + p.PushPullPeriod(n) + time.Second
}

// allowedBy reports whether the policy lets a lookup from region from be
// routed to region name: its own region always; ModeOrdered only the
// regions it lists. ModeLocal and ModeNearest consider every region
// (ModeNearest demotes unreachable regions before its cut, so a reachable
// region with healthy instances always ranks ahead of a cut-off one).
func allowedBy(p *failover.Policy, from, name string) bool {
	if name == from || p.Mode != failover.ModeOrdered {
		return true
	}
	return slices.Contains(p.Regions, name)
}

// commitRec is one change a region's store committed.
type commitRec struct {
	version uint64
	at      time.Duration
}

// behindSince returns since when a holder of the region's catalog at
// version v has been behind the store: the commit time of the first
// committed version above v. ok is false when v is current.
func (rs *regionSim) behindSince(v uint64) (time.Duration, bool) {
	n := len(rs.commits)
	if n == 0 || rs.commits[n-1].version <= v {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(rs.commits, v+1, func(c commitRec, t uint64) int {
		switch {
		case c.version < t:
			return -1
		case c.version > t:
			return 1
		}
		return 0
	})
	return rs.commits[i].at, true
}
