package gossip

import (
	"flag"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

var lossMeasure = flag.Bool("lossmeasure", false, "measure real Serf's false failures under link loss without a relay (TestLossMeasure)")

// lossEvents runs n real Serf nodes for d with loss on the link between the
// first two (both ways, packets and dials) and returns the failed events
// each of the two raised about the other, and each one's mean time from a
// failed event to its next join event about the other (the dead spell).
func lossEvents(t *testing.T, profile string, n int, loss float64, d time.Duration, seed uint64) (failed int, dead time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(time.Minute) })
		rng := rand.New(rand.NewPCG(seed, 7))
		p := startPool(t, profile, n, func() { time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second)))) })
		a, b := p.nodes[0].BindAddr(), p.nodes[1].BindAddr()
		var mu sync.Mutex
		p.net.SetFilter(func(from, to string) (bool, time.Duration) {
			if (from == a && to == b) || (from == b && to == a) {
				mu.Lock()
				defer mu.Unlock()
				return rng.Float64() < loss, 0
			}
			return false, 0
		})
		t0 := time.Now()
		time.Sleep(d)
		var spells int
		var sum time.Duration
		for i, o := range p.nodes[:2] {
			other := p.nodes[1-i].LocalName()
			o.mu.Lock()
			var down time.Time
			for _, e := range o.evs {
				if e.at.Before(t0) || e.ev.Member.Name != other {
					continue
				}
				switch e.ev.Kind {
				case federation.EventFailed:
					failed++
					down = e.at
				case federation.EventJoin:
					if !down.IsZero() {
						sum += e.at.Sub(down)
						spells++
						down = time.Time{}
					}
				}
			}
			o.mu.Unlock()
		}
		if spells > 0 {
			dead = sum / time.Duration(spells)
		}
	})
	return failed, dead
}

// TestLossMeasure prints, for two real Serf members alone on a lossy link
// (no third member to relay indirect probes), how many false failures an
// hour raises and how long each lasts. The simulator does not model this
// case yet (see the package doc, "Link loss"); these are the numbers a
// model must meet. Opt-in: go test ./sim/gossip/ -run TestLossMeasure -v -args -lossmeasure
func TestLossMeasure(t *testing.T) {
	if !*lossMeasure {
		t.Skip("opt-in: -args -lossmeasure")
	}
	for _, c := range []struct {
		profile string
		loss    float64
	}{{Local, 0.3}, {Local, 0.6}, {LAN, 0.3}, {LAN, 0.6}, {WAN, 0.3}, {WAN, 0.6}} {
		for seed := uint64(1); seed <= 2; seed++ {
			f, dead := lossEvents(t, c.profile, 2, c.loss, time.Hour, seed)
			t.Logf("%s, 2 members, loss %.0f%%, seed %d: %d failed events in 1h (both ends), mean dead spell %v",
				c.profile, 100*c.loss, seed, f, dead.Round(time.Second))
		}
	}
}
