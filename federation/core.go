package federation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// CoreConfig tunes the federation core. DefaultCoreConfig gives the values
// for the WAN profile; LocalCoreConfig faster ones for development.
type CoreConfig struct {
	Region string // this gateway's region
	Self   string // this gateway's node name

	// AntiEntropy is how often a replica is checked against its region
	// even when no version change was gossiped.
	AntiEntropy time.Duration
	// FetchTimeout is how long a fetch may take before it counts as failed.
	FetchTimeout time.Duration
	// BackoffBase and BackoffMax bound the retry delay after failed
	// fetches: base * 2^(failures-1), capped, with up to 50% jitter added.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ReapAfter drops a replica whose region has had no alive gateway for
	// this long.
	ReapAfter time.Duration
	// PersistEvery bounds how often one replica is written to the local
	// store.
	PersistEvery time.Duration
}

// DefaultCoreConfig returns the WAN defaults.
func DefaultCoreConfig(regionName, self string) CoreConfig {
	return CoreConfig{
		Region: regionName, Self: self,
		AntiEntropy: 30 * time.Second, FetchTimeout: 10 * time.Second,
		BackoffBase: time.Second, BackoffMax: 30 * time.Second,
		ReapAfter: 72 * time.Hour, PersistEvery: 5 * time.Second,
	}
}

// LocalCoreConfig returns defaults for one machine (tests, meridian dev).
func LocalCoreConfig(regionName, self string) CoreConfig {
	c := DefaultCoreConfig(regionName, self)
	c.AntiEntropy, c.FetchTimeout = 2*time.Second, 2*time.Second
	c.BackoffBase, c.BackoffMax = 100*time.Millisecond, 2*time.Second
	c.PersistEvery = time.Second
	return c
}

// Validate returns an error naming the first bad field.
func (c *CoreConfig) Validate() error {
	switch {
	case c.Region == "":
		return errors.New("Region: required")
	case c.Self == "":
		return errors.New("Self: required")
	case c.AntiEntropy <= 0:
		return errors.New("AntiEntropy: must be positive")
	case c.FetchTimeout <= 0:
		return errors.New("FetchTimeout: must be positive")
	case c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase:
		return errors.New("BackoffBase, BackoffMax: need 0 < base <= max")
	case c.ReapAfter <= 0:
		return errors.New("ReapAfter: must be positive")
	case c.PersistEvery < 0:
		return errors.New("PersistEvery: must not be negative")
	}
	return nil
}

// EffectKind is the kind of a federation effect.
type EffectKind int

// Effects the driver carries out.
const (
	// EffectFetch: GET the region's catalog from Gateway (at Addr) since
	// Since, and report SyncDone or SyncFailed.
	EffectFetch EffectKind = iota + 1
	// EffectPersist: write the region's replica to the local store.
	EffectPersist
	// EffectDrop: delete the region's persisted replica.
	EffectDrop
)

// Effect is something the driver must do.
type Effect struct {
	Kind    EffectKind
	Region  string
	Gateway string // EffectFetch: node name
	Addr    string // EffectFetch: HTTP address
	Since   uint64 // EffectFetch: 0 asks for a full snapshot
	Reason  string // why (for logs and traces)
}

func (e Effect) String() string {
	switch e.Kind {
	case EffectFetch:
		return fmt.Sprintf("fetch %s from %s (%s) since v%d: %s", e.Region, e.Gateway, e.Addr, e.Since, e.Reason)
	case EffectPersist:
		return fmt.Sprintf("persist %s", e.Region)
	case EffectDrop:
		return fmt.Sprintf("drop %s: %s", e.Region, e.Reason)
	}
	return fmt.Sprintf("effect(%d) %s", int(e.Kind), e.Region)
}

// Core is the federation's deciding part. It is pure: time comes in as an
// argument, randomness from the rng it was given, and decisions go out as
// Effects. It is not safe for concurrent use.
//
// It tracks every gateway in the pool (from membership events) and, per
// remote region, a replica plus its sync state. A region's advertised
// version is the highest version tag among its alive gateways. Tick asks
// for a fetch when the advertised version is ahead of the replica, when no
// replica exists yet, or when AntiEntropy passed since the last sync; one
// fetch per region is in flight at a time. It picks among the region's
// alive gateways that advertise the highest version, rotating to the next
// one after each failure, and backs off exponentially (with jitter).
//
// Replicas are never dropped because gateways failed: a partition must not
// wipe out what a region knows. A replica is dropped only after ReapAfter
// with no alive gateway of its region, or by Forget.
type Core struct {
	cfg      CoreConfig
	rng      *rand.Rand
	gateways map[string]Member // by node name
	regions  map[string]*regionState
}

type regionState struct {
	name      string
	replica   *Replica
	needFull  bool // a delta did not apply: ask for a snapshot
	inflight  bool
	fetchFrom string
	fetchAt   time.Time
	failures  int
	rotate    int
	nextTry   time.Time
	lastErr   string
	lastAlive time.Time // last time an alive gateway of the region was known
	seen      bool      // lastAlive is meaningful
	persistAt time.Time // last persist effect
	dirty     bool      // replica changed since the last persist
	lastFetch time.Time // last fetch attempt (for anti-entropy)
}

// NewCore returns a core. rng adds jitter to backoffs.
func NewCore(cfg CoreConfig, rng *rand.Rand) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("federation config: %w", err)
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	return &Core{cfg: cfg, rng: rng, gateways: map[string]Member{}, regions: map[string]*regionState{}}, nil
}

// Config returns the core's configuration.
func (c *Core) Config() CoreConfig { return c.cfg }

func (c *Core) state(name string) *regionState {
	rs := c.regions[name]
	if rs == nil {
		rs = &regionState{name: name}
		c.regions[name] = rs
	}
	return rs
}

// Member records a membership event.
func (c *Core) Member(now time.Time, ev MemberEvent) {
	m := ev.Member
	if m.Region == "" {
		return
	}
	switch ev.Kind {
	case EventReap:
		delete(c.gateways, m.Name)
	default:
		switch ev.Kind {
		case EventFailed:
			m.Status = StatusFailed
		case EventLeave:
			m.Status = StatusLeft
		case EventJoin, EventUpdate:
			if m.Status == 0 {
				m.Status = StatusAlive
			}
		}
		c.gateways[m.Name] = m
	}
	if m.Region != c.cfg.Region {
		rs := c.state(m.Region)
		if c.aliveIn(m.Region) {
			rs.lastAlive, rs.seen = now, true
		}
	}
}

// Restore installs a replica loaded from the local store at startup. It
// does not replace a newer replica.
func (c *Core) Restore(now time.Time, s ReplicaSnapshot) {
	if s.Region == c.cfg.Region || s.Region == "" {
		return
	}
	rs := c.state(s.Region)
	if rs.replica != nil && rs.replica.Version() >= s.Version {
		return
	}
	cat := region.NewCatalog()
	cat.Load(region.Snapshot{Version: s.Version, Instances: s.Instances})
	rs.replica = &Replica{Region: s.Region, Catalog: cat, LastSync: s.LastSync, Source: s.Source, Restored: true}
	if !rs.seen {
		// The region has not been seen alive by this process yet: count the
		// reap time from its last sync, so an old replica of a region that
		// is gone still ages out.
		rs.lastAlive, rs.seen = s.LastSync, true
	}
}

// SyncDone applies the result of a fetch.
func (c *Core) SyncDone(now time.Time, regionName, gateway string, r SyncResult) error {
	rs := c.regions[regionName]
	if rs == nil {
		return fmt.Errorf("sync result for unknown region %s", regionName)
	}
	rs.inflight = false
	rs.lastFetch = now
	var err error
	switch {
	case r.Full:
		if r.Catalog == nil {
			err = errors.New("full sync without a catalog")
			break
		}
		if rs.replica != nil && r.Catalog.Version() < rs.replica.Version() && !c.regionReset(regionName, rs) {
			err = fmt.Errorf("snapshot v%d from %s is older than the replica's v%d; kept the replica",
				r.Catalog.Version(), gateway, rs.replica.Version())
			break
		}
		rs.replica = &Replica{Region: regionName, Catalog: r.Catalog}
		rs.needFull = false
	default:
		if rs.replica == nil {
			rs.replica = &Replica{Region: regionName, Catalog: region.NewCatalog()}
		}
		for _, ch := range r.Changes {
			if _, aerr := rs.replica.Catalog.Apply(ch); aerr != nil {
				err = fmt.Errorf("delta from %s: %w", gateway, aerr)
				rs.needFull = true
				break
			}
		}
	}
	if err != nil {
		c.failed(now, rs, err.Error())
		return err
	}
	rs.replica.LastSync, rs.replica.Source, rs.replica.Restored = now, gateway, false
	rs.failures, rs.lastErr, rs.nextTry = 0, "", time.Time{}
	rs.dirty = true
	return nil
}

// regionReset reports whether every alive gateway of the region advertises
// a version below the replica's: the region lost its data, and its smaller
// catalog is the truth now.
func (c *Core) regionReset(name string, rs *regionState) bool {
	adv, ok := c.advertised(name)
	return ok && rs.replica != nil && adv < rs.replica.Version()
}

// SyncFailed records a failed fetch.
func (c *Core) SyncFailed(now time.Time, regionName, gateway string, err error) {
	rs := c.regions[regionName]
	if rs == nil {
		return
	}
	rs.inflight = false
	rs.lastFetch = now
	c.failed(now, rs, fmt.Sprintf("fetch from %s: %v", gateway, err))
}

func (c *Core) failed(now time.Time, rs *regionState, msg string) {
	rs.failures++
	rs.rotate++
	rs.lastErr = msg
	d := c.cfg.BackoffBase << min(rs.failures-1, 20)
	d = min(d, c.cfg.BackoffMax)
	d += time.Duration(c.rng.Int64N(int64(d)/2 + 1))
	rs.nextTry = now.Add(d)
}

// Forget drops a region's replica at an operator's request. The region
// comes back if its gateways are still in the pool.
func (c *Core) Forget(regionName string) []Effect {
	if regionName == c.cfg.Region {
		return nil
	}
	if _, ok := c.regions[regionName]; !ok {
		return nil
	}
	delete(c.regions, regionName)
	for name, m := range c.gateways {
		if m.Region == regionName && m.Status != StatusAlive {
			delete(c.gateways, name)
		}
	}
	return []Effect{{Kind: EffectDrop, Region: regionName, Reason: "forgotten by an operator"}}
}

// Tick returns the effects due at now.
func (c *Core) Tick(now time.Time) []Effect {
	var out []Effect
	for _, name := range c.regionNames() {
		rs := c.regions[name]
		alive := c.aliveIn(name)
		if alive {
			rs.lastAlive, rs.seen = now, true
		}
		if rs.inflight && now.Sub(rs.fetchAt) >= c.cfg.FetchTimeout {
			rs.inflight = false
			c.failed(now, rs, fmt.Sprintf("fetch from %s timed out after %s", rs.fetchFrom, c.cfg.FetchTimeout))
		}
		if !alive && rs.seen && now.Sub(rs.lastAlive) >= c.cfg.ReapAfter {
			delete(c.regions, name)
			out = append(out, Effect{Kind: EffectDrop, Region: name,
				Reason: fmt.Sprintf("no alive gateway for %s", c.cfg.ReapAfter)})
			continue
		}
		if f, ok := c.fetchDue(now, rs); ok {
			out = append(out, f)
		}
		if rs.dirty && rs.replica != nil && now.Sub(rs.persistAt) >= c.cfg.PersistEvery {
			rs.dirty, rs.persistAt = false, now
			out = append(out, Effect{Kind: EffectPersist, Region: name})
		}
	}
	return out
}

func (c *Core) fetchDue(now time.Time, rs *regionState) (Effect, bool) {
	if rs.inflight || now.Before(rs.nextTry) {
		return Effect{}, false
	}
	adv, ok := c.advertised(rs.name)
	if !ok {
		return Effect{}, false // no alive gateway to ask
	}
	var have uint64
	reason := ""
	switch {
	case rs.replica == nil:
		reason = "no replica yet"
	case rs.needFull:
		reason = "delta did not apply"
	case adv > rs.replica.Version():
		have = rs.replica.Version()
		reason = fmt.Sprintf("advertised v%d ahead of replica v%d", adv, have)
	case adv < rs.replica.Version():
		have = rs.replica.Version()
		reason = fmt.Sprintf("advertised v%d behind replica v%d (region reset?)", adv, have)
	case rs.replica.Restored:
		have = rs.replica.Version()
		reason = "replica restored from the local store"
	case now.Sub(rs.lastFetch) >= c.cfg.AntiEntropy:
		have = rs.replica.Version()
		reason = "anti-entropy"
	default:
		return Effect{}, false
	}
	if rs.needFull {
		have = 0
	}
	gw := c.pick(rs.name, rs.rotate)
	rs.inflight, rs.fetchFrom, rs.fetchAt = true, gw.Name, now
	return Effect{Kind: EffectFetch, Region: rs.name, Gateway: gw.Name, Addr: gw.HTTPAddr, Since: have, Reason: reason}, true
}

// pick chooses among the region's alive gateways that advertise its highest
// version, rotating with each failure.
func (c *Core) pick(regionName string, rotate int) Member {
	adv, _ := c.advertised(regionName)
	var best []Member
	for _, m := range c.members(regionName) {
		if m.Status == StatusAlive && m.Version == adv {
			best = append(best, m)
		}
	}
	return best[rotate%len(best)]
}

// advertised returns the highest version among the region's alive gateways.
func (c *Core) advertised(regionName string) (uint64, bool) {
	var v uint64
	ok := false
	for _, m := range c.gateways {
		if m.Region == regionName && m.Status == StatusAlive {
			v, ok = max(v, m.Version), true
		}
	}
	return v, ok
}

func (c *Core) aliveIn(regionName string) bool {
	_, ok := c.advertised(regionName)
	return ok
}

// members returns a region's known gateways, sorted by name.
func (c *Core) members(regionName string) []Member {
	var out []Member
	for _, m := range c.gateways {
		if m.Region == regionName {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *Core) regionNames() []string {
	names := make([]string, 0, len(c.regions))
	for n := range c.regions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NextDeadline returns when Tick next has something to do (zero when
// nothing is scheduled; the driver also ticks on every event).
func (c *Core) NextDeadline(now time.Time) time.Time {
	var best time.Time
	consider := func(t time.Time) {
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, rs := range c.regions {
		switch {
		case rs.inflight:
			consider(rs.fetchAt.Add(c.cfg.FetchTimeout))
		case !rs.nextTry.IsZero():
			consider(rs.nextTry)
		default:
			consider(rs.lastFetch.Add(c.cfg.AntiEntropy))
		}
		if rs.dirty {
			consider(rs.persistAt.Add(c.cfg.PersistEvery))
		}
		if rs.seen {
			consider(rs.lastAlive.Add(c.cfg.ReapAfter))
		}
	}
	return best
}

// Replica returns a region's replica (nil when there is none). The caller
// must not modify it and must hold whatever lock guards the core.
func (c *Core) Replica(regionName string) *Replica {
	if rs := c.regions[regionName]; rs != nil {
		return rs.replica
	}
	return nil
}

// Lookup returns what a cross-region read needs, without the allocations
// of View: the replica (nil when none), whether it is stale, and whether the
// region is known at all.
func (c *Core) Lookup(name string) (rep *Replica, stale, known bool) {
	adv, reachable := c.advertised(name)
	rs := c.regions[name]
	if rs == nil {
		return nil, true, reachable
	}
	rep = rs.replica
	stale = !reachable || rep == nil || rep.Version() < adv || rs.lastErr != "" || rep.Restored
	return rep, stale, true
}

// RegionView is what the core knows of one region.
type RegionView struct {
	Name       string
	Local      bool
	Gateways   []Member // sorted by name
	Advertised uint64   // highest version among alive gateways
	Reachable  bool     // at least one alive gateway
	Replica    *Replica // nil for the local region or before the first sync
	Stale      bool     // unreachable, behind the advertised version, or last fetch failed
	LastError  string
}

// Regions returns every known region, sorted by name, the local one
// included.
func (c *Core) Regions() []RegionView {
	names := map[string]bool{c.cfg.Region: true}
	for _, m := range c.gateways {
		names[m.Region] = true
	}
	for n := range c.regions {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	out := make([]RegionView, 0, len(sorted))
	for _, n := range sorted {
		out = append(out, c.View(n))
	}
	return out
}

// View returns what the core knows of one region.
func (c *Core) View(name string) RegionView {
	v := RegionView{Name: name, Local: name == c.cfg.Region, Gateways: c.members(name)}
	v.Advertised, v.Reachable = c.advertised(name)
	if rs := c.regions[name]; rs != nil && !v.Local {
		v.Replica = rs.replica
		v.LastError = rs.lastErr
		v.Stale = !v.Reachable || rs.replica == nil || rs.replica.Version() < v.Advertised || rs.lastErr != "" || rs.replica.Restored
	}
	return v
}

// AliveGateways returns the names of the alive gateways of a region, sorted.
func (c *Core) AliveGateways(regionName string) []Member {
	var out []Member
	for _, m := range c.members(regionName) {
		if m.Status == StatusAlive {
			out = append(out, m)
		}
	}
	return out
}
