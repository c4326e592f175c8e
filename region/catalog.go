package region

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Catalog is a region's instances at one version. It is a pure state
// machine: Apply moves it forward one change at a time; Load replaces it
// with a snapshot. It is not safe for concurrent use; the Cache guards it.
type Catalog struct {
	version  uint64
	gen      uint64                 // this catalog's life: new at NewCatalog and every Load
	services map[string]*serviceSet // service -> its instances
	strs     interner               // repeated strings of the instances, held once
}

// serviceSet is one service's instances and the version that last changed
// them.
type serviceSet struct {
	byID    map[string]*Instance
	changed uint64
}

// gens numbers catalog lives, process-wide, so a Stamp never repeats.
var gens atomic.Uint64

// NewCatalog returns an empty catalog at version 0.
func NewCatalog() *Catalog {
	return &Catalog{services: map[string]*serviceSet{}, gen: gens.Add(1)}
}

// Stamp stands for the content of one service in a catalog: two reads of
// a service with equal stamps return the same instances. It changes with
// every change to the service, and with every Load (a snapshot may repeat
// versions with other content), but not with changes to other services.
type Stamp struct {
	Gen     uint64 // the catalog's life
	Changed uint64 // the version that last changed the service; 0 when it has none
}

// ServiceStamp returns the service's stamp, in O(1).
func (c *Catalog) ServiceStamp(service string) Stamp {
	st := Stamp{Gen: c.gen}
	if set := c.services[service]; set != nil {
		st.Changed = set.changed
	}
	return st
}

// Version returns the catalog version.
func (c *Catalog) Version() uint64 { return c.version }

// ErrGap is returned by Apply when a change does not follow the catalog's
// version; the caller must catch up from the log or reload a snapshot.
type ErrGap struct{ Have, Got uint64 }

func (e *ErrGap) Error() string {
	return fmt.Sprintf("change v%d does not follow catalog v%d", e.Got, e.Have)
}

// Apply applies one change. Changes at or below the current version are
// ignored (already applied) and return false; a change that skips a version
// returns *ErrGap.
func (c *Catalog) Apply(ch Change) (bool, error) {
	if ch.Version <= c.version {
		return false, nil
	}
	if ch.Version != c.version+1 {
		return false, &ErrGap{Have: c.version, Got: ch.Version}
	}
	switch ch.Op {
	case OpPut:
		if ch.Instance == nil {
			return false, fmt.Errorf("change %s: put without an instance", ch)
		}
		in := *ch.Instance
		in.ModifyIndex = ch.Version
		c.put(&in, ch.Version)
	case OpDelete:
		c.remove(Key{Service: ch.Service, ID: ch.ID}, ch.Version)
	default:
		return false, fmt.Errorf("change %s: unknown op %q", ch, ch.Op)
	}
	c.version = ch.Version
	return true, nil
}

// Load replaces the catalog with a snapshot.
func (c *Catalog) Load(s Snapshot) {
	// Every map sized once: grown by doubling, each leaves its smaller
	// tables behind as garbage.
	counts := map[string]int{}
	for i := range s.Instances {
		counts[s.Instances[i].Service]++
	}
	c.strs = interner{}
	c.services = make(map[string]*serviceSet, len(counts))
	for svc, n := range counts {
		c.services[c.strs.str(svc)] = &serviceSet{byID: make(map[string]*Instance, n)}
	}
	c.gen = gens.Add(1)
	ins := make([]Instance, len(s.Instances)) // one allocation for them all
	copy(ins, s.Instances)
	for i := range ins {
		// Copies made one after the other fill whole pages; the decoded
		// strings sit among the decoder's garbage and would keep its
		// pages resident.
		ins[i].ID, ins[i].Address = strings.Clone(ins[i].ID), strings.Clone(ins[i].Address)
		c.put(&ins[i], s.Version)
	}
	c.version = s.Version
}

// put stores in (which the catalog owns from now on) as changed at
// version.
func (c *Catalog) put(in *Instance, version uint64) {
	c.strs.instance(in)
	set := c.services[in.Service]
	if set == nil {
		set = &serviceSet{byID: map[string]*Instance{}}
		c.services[in.Service] = set
	}
	set.byID[in.ID] = in
	set.changed = version
}

func (c *Catalog) remove(k Key, version uint64) {
	set := c.services[k.Service]
	if set == nil {
		return
	}
	delete(set.byID, k.ID)
	set.changed = version
	if len(set.byID) == 0 {
		delete(c.services, k.Service)
	}
}

// lookup returns the catalog's own instance k.
func (c *Catalog) lookup(k Key) (*Instance, bool) {
	set := c.services[k.Service]
	if set == nil {
		return nil, false
	}
	in, ok := set.byID[k.ID]
	return in, ok
}

// Get returns a copy of one instance.
func (c *Catalog) Get(k Key) (Instance, bool) {
	in, ok := c.lookup(k)
	if !ok {
		return Instance{}, false
	}
	return *in, true
}

// Filter selects instances of a service.
type Filter struct {
	Passing bool     // only passing instances
	Tags    []string // instances carrying every one of these tags
	Zone    string   // only this zone, when not empty
}

func (f Filter) match(in *Instance) bool {
	if f.Passing && in.Status != StatusPassing {
		return false
	}
	if f.Zone != "" && in.Zone != f.Zone {
		return false
	}
	for _, t := range f.Tags {
		if !in.HasTag(t) {
			return false
		}
	}
	return true
}

// Instances returns the service's instances that match f, sorted by id.
// The returned instances share tags and meta with the catalog: callers must
// not modify them.
func (c *Catalog) Instances(service string, f Filter) []Instance {
	var m map[string]*Instance
	if set := c.services[service]; set != nil {
		m = set.byID
	}
	out := make([]Instance, 0, len(m))
	for _, in := range m {
		if f.match(in) {
			out = append(out, *in)
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// All returns every instance, sorted by service and id.
func (c *Catalog) All() []Instance {
	var out []Instance
	if n := c.Len(); n > 0 {
		out = make([]Instance, 0, n) // one array, not a doubling series of them
	}
	for _, s := range c.ServiceNames() {
		out = append(out, c.Instances(s, Filter{})...)
	}
	return out
}

// Snapshot returns the whole catalog.
func (c *Catalog) Snapshot() Snapshot {
	return Snapshot{Version: c.version, Instances: c.All()}
}

// ServiceNames returns the names of services with at least one instance,
// sorted.
func (c *Catalog) ServiceNames() []string {
	out := make([]string, 0, len(c.services))
	for s := range c.services {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ServiceSummary counts a service's instances.
type ServiceSummary struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
	Passing   int    `json:"passing"`
	Warning   int    `json:"warning"`
	Critical  int    `json:"critical"`
}

// Services summarises every service, sorted by name.
func (c *Catalog) Services() []ServiceSummary {
	names := c.ServiceNames()
	out := make([]ServiceSummary, 0, len(names))
	for _, s := range names {
		sum := ServiceSummary{Name: s}
		for _, in := range c.services[s].byID {
			sum.Instances++
			switch in.Status {
			case StatusPassing:
				sum.Passing++
			case StatusWarning:
				sum.Warning++
			case StatusCritical:
				sum.Critical++
			}
		}
		out = append(out, sum)
	}
	return out
}

// ServiceLen returns the number of instances of one service.
func (c *Catalog) ServiceLen(service string) int {
	if set := c.services[service]; set != nil {
		return len(set.byID)
	}
	return 0
}

// Len returns the number of instances.
func (c *Catalog) Len() int {
	n := 0
	for _, set := range c.services {
		n += len(set.byID)
	}
	return n
}

// SortInstances sorts by service, then id (the order of Catalog.All).
func SortInstances(ins []Instance) { sortInstances(ins) }

func sortInstances(ins []Instance) {
	slices.SortFunc(ins, func(a, b Instance) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
