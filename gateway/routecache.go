package gateway

import (
	"strconv"
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

func (c *routeCache) get(key, fp []byte) *routeEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	// string(key) in a map index and string(fp) in a comparison do not
	// allocate: a cache hit costs no garbage.
	if e := c.entries[string(key)]; e != nil && e.fp == string(fp) {
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
	return string(appendRouteKey(nil, req))
}

// appendRouteKey appends routeKey(req) to b.
func appendRouteKey(b []byte, req failover.Request) []byte {
	p := req.Policy
	b = append(b, req.Service...)
	b = append(b, 0)
	b = append(b, req.FromZone...)
	b = append(b, 0)
	for _, t := range req.Tags {
		b = append(b, t...)
		b = append(b, 1)
	}
	b = append(b, 0)
	b = append(b, string(p.Mode)...)
	b = append(b, 0)
	for _, r := range p.Regions {
		b = append(b, r...)
		b = append(b, 1)
	}
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(p.NearestN), 10)
	b = append(b, 0)
	b = strconv.AppendFloat(b, p.Overprovisioning, 'g', -1, 64)
	b = append(b, 0)
	b = strconv.AppendFloat(b, p.PanicThreshold, 'g', -1, 64)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(p.StalenessBound), 10)
	b = append(b, 0)
	if p.ZonePreference != nil {
		b = strconv.AppendBool(b, *p.ZonePreference)
	}
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(req.Limit), 10)
	return b
}

// routeFingerprint sums up what of the views can change a decision, apart
// from the instances, which the service's stamps (one per view) stand for:
// a write to another service of a region changes the region's version,
// not the service's stamp, and keeps the decision.
func routeFingerprint(views []failover.RegionView, stamps []region.Stamp, p failover.Policy) string {
	return string(appendRouteFingerprint(make([]byte, 0, 48*len(views)), views, stamps, p))
}

// appendRouteFingerprint appends routeFingerprint(views, stamps, p) to b.
func appendRouteFingerprint(b []byte, views []failover.RegionView, stamps []region.Stamp, p failover.Policy) []byte {
	bound := p.StalenessBound // p.WithDefaults().StalenessBound, without its allocation
	if bound == 0 {
		bound = failover.DefaultStalenessBound
	}
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
	return b
}

// decide returns the routing decision for a request, from the cache when
// nothing that reaches it changed. The entry is shared: its views and
// decision must not be modified.
func (s *Server) decide(req failover.Request) *routeEntry {
	// Key and fingerprint are built in stack buffers (they grow onto the
	// heap only for unusually long requests or many regions).
	var kbuf [128]byte
	var fbuf [512]byte
	key := appendRouteKey(kbuf[:0], req)
	var vbuf [8]failover.RegionView
	var sbuf [8]region.Stamp
	probe, probeStamps := s.appendViews(vbuf[:0], sbuf[:0], req.Service, false)
	if e := s.routes.get(key, appendRouteFingerprint(fbuf[:0], probe, probeStamps, req.Policy)); e != nil {
		return e
	}
	views, stamps := s.views(req.Service, true)
	e := &routeEntry{fp: routeFingerprint(views, stamps, req.Policy), views: views, d: failover.Route(views, req)}
	s.routes.put(string(key), e)
	s.decisions.add(s.cfg.Now(), string(key), req, e.d)
	return e
}
