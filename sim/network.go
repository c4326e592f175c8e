package sim

import (
	"math/rand/v2"
	"time"
)

// network is the simulated WAN between regions: latency with jitter and
// loss per ordered pair, partitions (any grouping), one-way cuts and
// degraded links. Inside a region the latency is fixed and nothing is lost.
type network struct {
	k     int
	cfg   netCfg
	rng   *rand.Rand
	cut   [][]int // [from][to]: active cuts (partitions and one-way cuts) dropping from -> to
	extra [][]time.Duration
	dloss [][]float64 // loss set by degrade (-1: none)
	// flip[a][b]: when a and b last became reachable or cut off (wasReach);
	// kept by noteReach, read by the invariants.
	flip     [][]time.Duration
	wasReach [][]bool
}

func newNetwork(cfg netCfg, rng *rand.Rand) *network {
	k := len(cfg.latency)
	n := &network{k: k, cfg: cfg, rng: rng, cut: square[int](k), extra: square[time.Duration](k), dloss: square[float64](k)}
	n.healAll()
	return n
}

func (n *network) healAll() {
	for i := range n.k {
		for j := range n.k {
			n.cut[i][j], n.extra[i][j], n.dloss[i][j] = 0, 0, -1
		}
	}
}

// blocked reports whether packets from a to b are dropped by a partition or cut.
func (n *network) blocked(a, b int) bool { return a != b && n.cut[a][b] > 0 }

// reachable reports whether a and b can talk both ways.
func (n *network) reachable(a, b int) bool { return !n.blocked(a, b) && !n.blocked(b, a) }

// latency is the current mean one-way latency from a to b (without jitter).
func (n *network) latency(a, b int) time.Duration {
	if a == b {
		return n.cfg.intra
	}
	return n.cfg.latency[a][b] + n.extra[a][b]
}

// rtt is the round trip a <-> b, as network coordinates would estimate it.
func (n *network) rtt(a, b int) time.Duration { return n.latency(a, b) + n.latency(b, a) }

// deliver samples one packet (or request) from a to b: its delay, or false
// when it is dropped.
func (n *network) deliver(a, b int) (time.Duration, bool) {
	if a == b {
		return n.cfg.intra, true
	}
	if n.blocked(a, b) {
		return 0, false
	}
	loss := n.cfg.loss[a][b]
	if n.dloss[a][b] >= 0 {
		loss = n.dloss[a][b]
	}
	if loss > 0 && n.rng.Float64() < loss {
		return 0, false
	}
	d := n.latency(a, b)
	if j := n.cfg.jitter[a][b]; j > 0 {
		d += time.Duration(n.rng.Int64N(int64(j)))
	}
	return d, true
}

// partition cuts every pair of regions in different groups; regions in no
// group form one more group together. It returns the cuts made, to undo.
func (n *network) partition(groups [][]int) [][2]int {
	grp := make([]int, n.k)
	for i := range grp {
		grp[i] = -1
	}
	for g, rs := range groups {
		for _, r := range rs {
			grp[r] = g
		}
	}
	var made [][2]int
	for a := range n.k {
		for b := range n.k {
			if a != b && grp[a] != grp[b] {
				n.cut[a][b]++
				made = append(made, [2]int{a, b})
			}
		}
	}
	return made
}

func (n *network) uncut(cuts [][2]int) {
	for _, c := range cuts {
		if n.cut[c[0]][c[1]] > 0 {
			n.cut[c[0]][c[1]]--
		}
	}
}

// anyCut reports whether some pair is cut.
func (n *network) anyCut() bool {
	for a := range n.k {
		for b := range n.k {
			if n.cut[a][b] > 0 {
				return true
			}
		}
	}
	return false
}
