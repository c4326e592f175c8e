package gateway

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

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

// lookupCache keeps the JSON of recent lookups' instance lists. An entry is
// used only when the lookup returns the same instances at the same writes:
// every write to an instance sets a new ModifyIndex and UpdatedAt, so
// (id, ModifyIndex, UpdatedAt) stands for its content, even across a
// snapshot reload that repeats versions.
type lookupCache struct {
	mu sync.Mutex
	m  map[string]lookupEntry // lookupKey -> last encoding
}

type lookupEntry struct {
	ids  []instanceWrite
	json []byte
}

type instanceWrite struct {
	id      string
	index   uint64
	updated time.Time
}

// maxCachedLookups bounds the cache; past it, it starts over.
const maxCachedLookups = 256

func lookupKey(regionName, service string, f region.Filter) string {
	return regionName + "\x00" + service + "\x00" + strconv.FormatBool(f.Passing) + "\x00" + f.Zone + "\x00" + strings.Join(f.Tags, "\x00")
}

// encode returns json.Marshal(ins), from the cache when key last encoded
// the same instance writes.
func (c *lookupCache) encode(key string, ins []region.Instance) ([]byte, error) {
	if ins == nil {
		ins = []region.Instance{}
	}
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && len(e.ids) == len(ins) {
		same := true
		for i := range ins {
			if w := e.ids[i]; w.id != ins[i].ID || w.index != ins[i].ModifyIndex || !w.updated.Equal(ins[i].UpdatedAt) {
				same = false
				break
			}
		}
		if same {
			return e.json, nil
		}
	}
	b, err := json.Marshal(ins)
	if err != nil {
		return nil, err
	}
	e = lookupEntry{ids: make([]instanceWrite, len(ins)), json: b}
	for i := range ins {
		e.ids[i] = instanceWrite{id: ins[i].ID, index: ins[i].ModifyIndex, updated: ins[i].UpdatedAt}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedLookups {
		c.m = map[string]lookupEntry{}
	}
	c.m[key] = e
	c.mu.Unlock()
	return b, nil
}
