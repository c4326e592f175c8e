package gateway

import (
	"strconv"
	"strings"
	"sync"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
)

// routeCacheMax bounds the number of memoized decisions (distinct service,
// zone, tags, policy and limit combinations). When it is reached the cache
// starts over: queries with arbitrary tags cannot grow it without bound.
const routeCacheMax = 4096

// routeCache memoizes routing decisions. failover.Route is a pure function
// of its views and request, and a view's instances are fixed by its catalog
// version, so a decision (and its encoded body) can be reused for as long as
// every region's version, staleness, reachability and RTT estimate are the
// same, and every stale region's age reads the same in the explanation and
// sits on the same side of the staleness bound.
type routeCache struct {
	mu      sync.Mutex
	entries map[string]*routeEntry
}

type routeEntry struct {
	fp    string
	views []failover.RegionView
	d     failover.Decision
	mu    sync.Mutex
	body  []byte // the encoded lookup response, made on first use
}

func (c *routeCache) get(key, fp string) *routeEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && e.fp == fp {
		return e
	}
	return nil
}

func (c *routeCache) put(key string, e *routeEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= routeCacheMax {
		c.entries = make(map[string]*routeEntry)
	}
	c.entries[key] = e
}

// lookupBody returns the encoded lookup response of the entry, encoding it
// once.
func (e *routeEntry) lookupBody(encode func() ([]byte, error)) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.body == nil {
		b, err := encode()
		if err != nil {
			return nil, err
		}
		e.body = b
	}
	return e.body, nil
}

// routeKey names a request: everything of it that reaches the decision.
func routeKey(req failover.Request) string {
	var b strings.Builder
	p := req.Policy
	b.WriteString(req.Service)
	b.WriteByte(0)
	b.WriteString(req.FromZone)
	b.WriteByte(0)
	for _, t := range req.Tags {
		b.WriteString(t)
		b.WriteByte(1)
	}
	b.WriteByte(0)
	b.WriteString(string(p.Mode))
	b.WriteByte(0)
	for _, r := range p.Regions {
		b.WriteString(r)
		b.WriteByte(1)
	}
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(p.NearestN))
	b.WriteByte(0)
	b.WriteString(strconv.FormatFloat(p.Overprovisioning, 'g', -1, 64))
	b.WriteByte(0)
	b.WriteString(strconv.FormatFloat(p.PanicThreshold, 'g', -1, 64))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(int64(p.StalenessBound), 10))
	b.WriteByte(0)
	if p.ZonePreference != nil {
		b.WriteString(strconv.FormatBool(*p.ZonePreference))
	}
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(req.Limit))
	return b.String()
}

// routeFingerprint sums up what of the views can change a decision, apart
// from the instances, which the service's stamps (one per view) stand for:
// a write to another service of a region changes the region's version,
// not the service's stamp, and keeps the decision.
func routeFingerprint(views []failover.RegionView, stamps []region.Stamp, p failover.Policy) string {
	bound := p.WithDefaults().StalenessBound
	b := make([]byte, 0, 48*len(views))
	for i, v := range views {
		b = append(b, v.Name...)
		b = append(b, 0)
		b = strconv.AppendUint(b, stamps[i].Gen, 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, stamps[i].Changed, 10)
		b = append(b, 0)
		b = strconv.AppendBool(b, v.Reachable)
		if v.Stale {
			b = append(b, " stale "...)
			b = append(b, failover.FormatAge(v.Age)...)
			b = strconv.AppendBool(b, v.Age > bound)
		}
		if v.HasRTT {
			b = append(b, " rtt "...)
			b = strconv.AppendInt(b, int64(v.RTT), 10)
		}
		b = append(b, 1)
	}
	return string(b)
}

// decide returns the routing decision for a request, from the cache when
// nothing that reaches it changed. The entry is shared: its views and
// decision must not be modified.
func (s *Server) decide(req failover.Request) *routeEntry {
	key := routeKey(req)
	probe, probeStamps := s.views(req.Service, false)
	if e := s.routes.get(key, routeFingerprint(probe, probeStamps, req.Policy)); e != nil {
		return e
	}
	views, stamps := s.views(req.Service, true)
	e := &routeEntry{fp: routeFingerprint(views, stamps, req.Policy), views: views, d: failover.Route(views, req)}
	s.routes.put(key, e)
	s.decisions.add(s.cfg.Now(), key, req, e.d)
	return e
}
