package region

import (
	"slices"
	"strings"
)

// maxInterned and maxInternedSets bound the tables of an interner (strings;
// tag lists, meta maps and checks): past them, new values are kept as they
// come (a catalog's Load starts the tables over). Values that repeat
// (service names, zones, tags, meta, checks) reach their table early;
// values unique to an instance cost a slot only until the table is full.
const (
	maxInterned     = 1 << 16
	maxInternedSets = 1 << 12
)

// interner holds one copy of the values instances repeat, so that 100,000
// instances of a few services in a few zones hold a few strings, tag lists,
// meta maps and checks between them. Interned tag lists, meta maps and
// checks are shared: nobody may modify an instance's (Catalog.Instances
// already says so).
type interner struct {
	strs   map[string]string
	tags   map[string][]string
	metas  map[string]map[string]string
	checks map[Check]*Check
}

// instance replaces in's repeated values by their interned copies.
func (t *interner) instance(in *Instance) {
	in.Service = t.str(in.Service)
	in.Zone = t.str(in.Zone)
	in.Status = Status(t.str(string(in.Status)))
	in.RegisteredBy = t.str(in.RegisteredBy) // an accessor id: a few tokens register
	in.Tags = t.tagList(in.Tags)
	in.Meta = t.meta(in.Meta)
	if in.Check != nil {
		in.Check = t.check(in.Check)
	}
}

func (t *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := t.strs[s]; ok {
		return v
	}
	if t.strs == nil {
		t.strs = map[string]string{}
	}
	if len(t.strs) >= maxInterned {
		return s
	}
	s = strings.Clone(s) // not a slice of some larger decoded buffer
	t.strs[s] = s
	return s
}

// key joins parts with a separator no name contains.
func internKey(parts ...string) string { return strings.Join(parts, "\x00") }

func (t *interner) tagList(tags []string) []string {
	if len(tags) == 0 {
		return tags
	}
	k := internKey(tags...)
	if v, ok := t.tags[k]; ok {
		return v
	}
	if t.tags == nil {
		t.tags = map[string][]string{}
	}
	out := make([]string, len(tags))
	for i, s := range tags {
		out[i] = t.str(s)
	}
	if len(t.tags) < maxInternedSets {
		t.tags[k] = out
	}
	return out
}

func (t *interner) meta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	keys := make([]string, 0, 2*len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := len(keys)
	for _, k := range keys[:n] {
		keys = append(keys, m[k])
	}
	k := internKey(keys...)
	if v, ok := t.metas[k]; ok {
		return v
	}
	if len(t.metas) >= maxInternedSets {
		return m
	}
	if t.metas == nil {
		t.metas = map[string]map[string]string{}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[t.str(k)] = v // keys repeat; values may be unique
	}
	if len(t.metas) < maxInternedSets {
		t.metas[k] = out
	}
	return out
}

func (t *interner) check(c *Check) *Check {
	if v, ok := t.checks[*c]; ok {
		return v
	}
	if t.checks == nil {
		t.checks = map[Check]*Check{}
	}
	out := *c
	out.HTTP, out.TCP = t.str(out.HTTP), t.str(out.TCP)
	if len(t.checks) < maxInternedSets {
		t.checks[out] = &out
	}
	return &out
}
