package federation

import (
	"slices"
	"strings"
)

// RemoteReplica is what a lookup needs of another region that holds a
// replica: the fields of its RegionView that routing reads.
type RemoteReplica struct {
	Name      string
	Replica   *Replica // never nil
	Stale     bool
	Reachable bool
}

// AppendRemoteReplicas appends to out, sorted by name, every other region
// that holds a replica, with the staleness and reachability View reports
// for it: the regions of Regions that are not local and have a replica,
// without Regions' maps and slices. It is the lookup path's, which runs it
// on every request; out can be a buffer on the caller's stack.
func (c *Core) AppendRemoteReplicas(out []RemoteReplica) []RemoteReplica {
	first := len(out)
	for name, rs := range c.regions {
		if name == c.cfg.Region || rs.replica == nil {
			continue
		}
		adv, reachable := c.advertised(name)
		if c.cfg.UnreachableAfter > 0 && rs.failures >= c.cfg.UnreachableAfter {
			reachable = false // as View: alive in gossip, but it does not answer us
		}
		out = append(out, RemoteReplica{Name: name, Replica: rs.replica, Stale: c.stale(rs, adv, reachable), Reachable: reachable})
	}
	slices.SortFunc(out[first:], func(a, b RemoteReplica) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AppendAliveGateways appends to out the names of the region's alive
// gateways, sorted: the Gateways of its RegionView whose status is alive.
func (c *Core) AppendAliveGateways(out []string, regionName string) []string {
	first := len(out)
	for _, m := range c.gateways {
		if m.Region == regionName && m.Status == StatusAlive {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out[first:])
	return out
}
