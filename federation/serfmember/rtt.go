package serfmember

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"
)

// rttMax bounds the nodes an rttCache remembers; past it, it starts over
// (nodes that left would otherwise stay forever).
const rttMax = 1024

// rttCache answers RTT estimates from Serf's cached coordinates, this
// node's included (Serf caches its own next to every peer's on each
// update), remembering each node's estimate for as long as neither
// coordinate changes. The lookup path asks for the RTT of every alive
// gateway of every region on every request; Serf's GetCoordinate copies
// the coordinate and DistanceTo allocates a vector difference, three
// allocations a gateway, while here a known pair costs two map reads.
type rttCache struct {
	m sync.Map // node name -> *rttEntry
	n atomic.Int64
}

type rttEntry struct {
	me, other *coordinate.Coordinate // Serf replaces, never modifies, a cached coordinate
	d         time.Duration
}

// get returns the estimated RTT from self to node.
func (c *rttCache) get(s *serf.Serf, self, node string) (time.Duration, bool) {
	me, ok := s.GetCachedCoordinate(self)
	if !ok {
		// Before Serf cached its own (or with coordinates off).
		cur, err := s.GetCoordinate()
		if err != nil {
			return 0, false
		}
		me = cur
	}
	other, ok := s.GetCachedCoordinate(node)
	if !ok || !me.IsCompatibleWith(other) {
		return 0, false
	}
	if v, ok := c.m.Load(node); ok {
		if e := v.(*rttEntry); e.me == me && e.other == other {
			return e.d, true
		}
	}
	d := me.DistanceTo(other)
	if _, loaded := c.m.Swap(node, &rttEntry{me: me, other: other, d: d}); !loaded && c.n.Add(1) > rttMax {
		c.m.Clear()
		c.n.Store(0)
	}
	return d, true
}
