package gateway

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// appendJSONString appends s as json.Marshal encodes it. Names (DNS
// labels) need no escaping; anything else goes through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// lookupCache keeps, per (region, service, filter), the JSON of the
// filtered instance list, built once per change of that service: an entry
// is used while the service's region.Stamp (its catalog's life and the
// version that last changed the service) is the one it was built at, which
// a lookup reads in O(1), without walking the instances. ACLs do not reach
// the list: a service's instances are the same for every token that may
// read the service (the route's guard decides that before the cache is
// asked), so one entry serves every such token.
type lookupCache struct {
	mu    sync.RWMutex
	m     map[answerKey]*encodedList
	bytes int           // sum of the entries' JSON
	tick  atomic.Uint64 // counts uses, for least-recently-used eviction
}

// answerKey names one cached list.
type answerKey struct {
	region, service string
	passing         bool
	zone            string
	tags            string // joined with NUL, which no tag contains
}

func newAnswerKey(regionName, service string, f region.Filter) answerKey {
	return answerKey{region: regionName, service: service, passing: f.Passing, zone: f.Zone,
		tags: strings.Join(f.Tags, "\x00")}
}

// encodedList is the JSON of an instance list as json.Marshal gives it
// ("[]" when empty), built from the instances at stamp. It is shared by
// every lookup it answers and never modified.
type encodedList struct {
	stamp region.Stamp
	json  []byte
	n     int           // instances in the list
	used  atomic.Uint64 // the cache's tick at its last use
}

// Bounds of the cache: distinct lists, and bytes of JSON. Past either,
// the least recently used lists go, so queries with arbitrary tags cannot
// grow it without bound. The JSON of a list is about 300 bytes per
// instance (a 1,000-instance service's is ~300 KB): 8 MiB keeps the
// answers of the services most asked for without holding an encoded copy
// of every service next to the catalog itself (at 100,000 instances that
// copy would be ~300 B per instance, a third of the memory goal of
// 1 KiB). With lookups spread over 100 such services as Zipf(1.1), 8 MiB
// answers ~70% of them from the cache (16 MiB: 86%, for 84 B more per
// instance at 100,000). A lookup whose list is not cached encodes it: the
// same bytes, as garbage, and ~1 ms of CPU per 1,000 instances.
const (
	maxCachedLookups    = 1024
	maxCachedLookupJSON = 8 << 20
)

// get returns the cached list of key if it was built at stamp.
func (c *lookupCache) get(key answerKey, stamp region.Stamp) *encodedList {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e != nil && e.stamp == stamp {
		e.used.Store(c.tick.Add(1))
		return e
	}
	return nil
}

// build encodes ins (read at stamp) and keeps it for key.
func (c *lookupCache) build(key answerKey, stamp region.Stamp, ins []region.Instance) (*encodedList, error) {
	if ins == nil {
		ins = []region.Instance{}
	}
	b, err := json.Marshal(ins)
	if err != nil {
		return nil, err
	}
	e := &encodedList{stamp: stamp, json: b, n: len(ins)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		if old.stamp.Gen == stamp.Gen && old.stamp.Changed > stamp.Changed {
			return e, nil // a later build got here first: keep it
		}
		c.bytes -= len(old.json)
		delete(c.m, key)
	}
	if len(b) > maxCachedLookupJSON/4 {
		return e, nil // one list would push out most others
	}
	if c.m == nil {
		c.m = map[answerKey]*encodedList{}
	}
	if len(c.m) >= maxCachedLookups || c.bytes+len(b) > maxCachedLookupJSON {
		c.evictLocked(len(b))
	}
	e.used.Store(c.tick.Add(1))
	c.m[key] = e
	c.bytes += len(b)
	return e, nil
}

// evictLocked drops the least recently used lists until one more of size
// bytes fits (and at least an eighth of the cache, so a full cache is not
// sorted on every build).
func (c *lookupCache) evictLocked(size int) {
	type use struct {
		key  answerKey
		used uint64
		n    int
	}
	uses := make([]use, 0, len(c.m))
	for k, e := range c.m {
		uses = append(uses, use{k, e.used.Load(), len(e.json)})
	}
	slices.SortFunc(uses, func(a, b use) int { return cmp.Compare(a.used, b.used) })
	goal := min(maxCachedLookupJSON-size, maxCachedLookupJSON*7/8)
	for i, u := range uses {
		if c.bytes <= goal && len(c.m) < maxCachedLookups*7/8 && i > 0 {
			break
		}
		delete(c.m, u.key)
		c.bytes -= u.n
	}
}

// encodedAnswer is a service's answer from one region: the fields of
// serviceResponse around the cached instance list.
type encodedAnswer struct {
	Region  string
	Version uint64
	Stale   bool
	AgeMS   int64
	list    *encodedList
}

// localEncoded answers a lookup from this region's cache.
func (s *Server) localEncoded(service string, f region.Filter) (encodedAnswer, error) {
	fr := s.cfg.Cache.Freshness()
	ans := encodedAnswer{Region: s.cfg.Region, Stale: fr.Stale, AgeMS: fr.Age.Milliseconds()}
	key := newAnswerKey(s.cfg.Region, service, f)
	var stamp region.Stamp
	var ins []region.Instance
	s.cfg.Cache.Read(func(c *region.Catalog) {
		ans.Version = c.Version()
		stamp = c.ServiceStamp(service)
		if ans.list = s.lookups.get(key, stamp); ans.list == nil {
			ins = c.Instances(service, f)
		}
	})
	if ans.list != nil {
		return ans, nil
	}
	var err error
	ans.list, err = s.lookups.build(key, stamp, ins)
	return ans, err
}

// remoteEncoded answers a lookup from a remote region's replica.
func (s *Server) remoteEncoded(name, service string, f region.Filter) (encodedAnswer, error) {
	now := s.cfg.Now()
	ans := encodedAnswer{Region: name}
	key := newAnswerKey(name, service, f)
	var stamp region.Stamp
	var ins []region.Instance
	var err error
	s.cfg.Fed.Read(func(c *federation.Core) {
		rep, stale, known := c.Lookup(name)
		switch {
		case !known:
			err = errUnknownRegion
		case rep == nil:
			err = errNoReplica(name)
		default:
			ans.Version, ans.Stale = rep.Version(), stale
			ans.AgeMS = max(now.Sub(rep.LastSync), 0).Milliseconds()
			stamp = rep.Catalog.ServiceStamp(service)
			if ans.list = s.lookups.get(key, stamp); ans.list == nil {
				ins = rep.Catalog.Instances(service, f)
			}
		}
	})
	if err != nil || ans.list != nil {
		return ans, err
	}
	ans.list, err = s.lookups.build(key, stamp, ins)
	return ans, err
}

// heads recycles the buffers the per-request part of an answer is
// written from.
var heads = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// writeServiceAnswer writes {"service","region","version","stale","age_ms",
// "instances"}: the bytes json.Marshal gives serviceResponse. The few
// per-request fields are written before the cached instance list, which is
// written as it is: a lookup costs the same whatever the service's size.
func writeServiceAnswer(w http.ResponseWriter, service string, ans encodedAnswer) {
	bp := heads.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"service":`...)
	b = appendJSONString(b, service)
	b = append(b, `,"region":`...)
	b = appendJSONString(b, ans.Region)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, ans.Version, 10)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, ans.Stale)
	b = append(b, `,"age_ms":`...)
	b = strconv.AppendInt(b, ans.AgeMS, 10)
	b = append(b, `,"instances":`...)
	setAnswerHeaders(w.Header(), ans.Version, len(b)+len(ans.list.json)+len(answerTail))
	w.WriteHeader(http.StatusOK)
	if len(ans.list.json) <= smallAnswer {
		// One Write rather than three: each costs the response writer's
		// checks and accounting; copying a small list costs less.
		b = append(append(b, ans.list.json...), answerTail...)
		w.Write(b)
	} else {
		w.Write(b)
		w.Write(ans.list.json)
		w.Write(answerTail)
	}
	if cap(b) <= 4096 {
		*bp = b
		heads.Put(bp)
	}
}

var answerTail = []byte("}\n")

// smallAnswer is the largest instance list writeServiceAnswer copies to
// write its answer at once.
const smallAnswer = 2048

// setAnswerHeaders sets X-Meridian-Index, Content-Length and Content-Type
// (application/json). Both numbers come from one string, in two slices of
// one array: three allocations fewer than three Header.Set calls; and
// none when an answer of the same version and length was made just before
// (answerheaders.go).
func setAnswerHeaders(h http.Header, version uint64, length int) {
	if v := answerHeaders.get(version, length); v != nil {
		h["X-Meridian-Index"], h["Content-Length"], h["Content-Type"] = v.index, v.length, jsonContentType
		return
	}
	var buf [40]byte
	b := strconv.AppendUint(buf[:0], version, 10)
	mid := len(b)
	b = strconv.AppendInt(b, int64(length), 10)
	vals := string(b)
	hv := make([]string, 2)
	hv[0], hv[1] = vals[:mid], vals[mid:]
	h["X-Meridian-Index"] = hv[0:1:1]
	h["Content-Length"] = hv[1:2:2]
	h["Content-Type"] = jsonContentType
	answerHeaders.put(version, length, hv[0:1:1], hv[1:2:2])
}

// jsonContentType is the Content-Type of every answer, shared: a header's
// values are replaced (Header.Set), never written in place.
var jsonContentType = []string{"application/json"}
