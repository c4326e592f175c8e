package federation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
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
	// PersistSyncEvery bounds how often a replica whose contents did not
	// change is written again only to record its last sync time. Syncs that
	// change nothing do not make the replica be written at every
	// anti-entropy period; the persisted last sync time may lag by up to
	// this much. It matters only after a restart: a restored replica's reap
	// clock starts from it, so the region may be reaped up to this much
	// early. 0 means ReapAfter/24 (3h for the 72h default).
	PersistSyncEvery time.Duration
	// UnreachableAfter is how many fetches of a region in a row must fail
	// before the region counts as unreachable (RegionView.Reachable false)
	// although gossip still shows alive gateways: gossip reaches a member
	// through others (indirect probes), so after a one-way cut a region can
	// look alive while nothing this gateway sends it gets an answer, and
	// traffic routed there would be lost. 0 turns it off. Default 2.
	UnreachableAfter int

	// WatchWait is how long one catalog watch (the push path, see Watch)
	// may wait at the watched gateway for the region's catalog to move;
	// 0 turns watches off. Gateways cap it at 10 minutes and add up to
	// 1/16 of jitter. Default 5m.
	WatchWait time.Duration
	// WatchMinInterval is the least time between the starts of two
	// watches of one region: what commits meanwhile travels in one answer,
	// so a burst of writes costs at most one request per interval per
	// watched region. Default 10ms.
	WatchMinInterval time.Duration
}

// DefaultCoreConfig returns the WAN defaults.
func DefaultCoreConfig(regionName, self string) CoreConfig {
	return CoreConfig{
		Region: regionName, Self: self,
		AntiEntropy: 30 * time.Second, FetchTimeout: 10 * time.Second,
		BackoffBase: time.Second, BackoffMax: 30 * time.Second,
		ReapAfter: 72 * time.Hour, PersistEvery: 5 * time.Second,
		UnreachableAfter: 2,
		WatchWait:        5 * time.Minute, WatchMinInterval: 10 * time.Millisecond,
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
	case c.PersistSyncEvery < 0:
		return errors.New("PersistSyncEvery: must not be negative")
	case c.WatchWait < 0:
		return errors.New("WatchWait: must not be negative")
	case c.WatchMinInterval < 0:
		return errors.New("WatchMinInterval: must not be negative")
	}
	return nil
}

// persistSyncEvery is PersistSyncEvery with its default applied.
func (c *CoreConfig) persistSyncEvery() time.Duration {
	if c.PersistSyncEvery > 0 {
		return max(c.PersistSyncEvery, c.PersistEvery)
	}
	return max(c.ReapAfter/24, c.PersistEvery)
}

// EffectKind is the kind of a federation effect.
type EffectKind int

// Effects the driver carries out.
const (
	// EffectFetch: GET the region's catalog from Gateway (at Addr) since
	// Since, and report the outcome with FetchDone or FetchFailed, passing
	// the effect back (its Seq tells the fetch apart from older ones).
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
	// Seq identifies an EffectFetch: it is positive and unique within a
	// Core (1, 2, 3, ... in the order the fetches were issued). The driver
	// hands the effect back to FetchDone or FetchFailed; an outcome whose
	// Seq is not the region's current fetch (it timed out, or the region
	// was forgotten since) no longer counts: see FetchDone.
	Seq uint64
}

func (e Effect) String() string {
	switch e.Kind {
	case EffectFetch:
		return fmt.Sprintf("fetch #%d %s from %s (%s) since v%d: %s", e.Seq, e.Region, e.Gateway, e.Addr, e.Since, e.Reason)
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
// replica exists yet, or when AntiEntropy passed since the last fetch; one
// fetch per region is in flight at a time, and a fetch that has not
// reported back after FetchTimeout counts as one failure. It picks among
// the region's alive gateways that advertise the highest version, rotating
// to the next one after each failure, and backs off exponentially (with
// jitter). Regions with no alive gateway are not fetched.
//
// A replica ahead of the advertised version is current: tags are
// published after the catalog moves, so they lag what a fetch returns.
// Only when the advertised version stays below what the replica held for
// longer than AntiEntropy (the region lost its data and started over?) is
// a full snapshot fetched, once; after that the normal schedule applies.
//
// A snapshot older than the replica replaces it only when the region was
// reset (see regionReset): its store's epoch changed (it lost its data and
// started over), and every alive gateway advertises below the replica.
// Versions alone prove nothing: a gateway's cache can lag changes its store
// already served (a fetch or a watch answered from the store, a cache that
// missed notifications), and while the store is down that gateway answers
// from its cache, behind the replica, with tags that lag as well.
//
// Replicas are never dropped because gateways failed: a partition must not
// wipe out what a region knows. A replica is dropped only after ReapAfter
// with no alive gateway of its region, or by Forget. Either way the region
// is forgotten whole (with its gateways that are not alive), until a gateway
// of it is seen alive again; Tick brings back a region that has one.
type Core struct {
	cfg      CoreConfig
	rng      *rand.Rand
	gateways map[string]Member // by node name
	regions  map[string]*regionState
	seq      uint64 // last fetch Seq issued
	watchSeq uint64 // last Watch Seq issued
}

type regionState struct {
	name      string
	replica   *Replica
	needFull  bool // a delta did not apply: ask for a snapshot
	inflight  bool
	seq       uint64 // Seq of the fetch in flight, or of the last one
	fetchFrom string
	fetchAt   time.Time
	failures  int
	rotate    int
	nextTry   time.Time
	lastErr   string
	lastAlive time.Time // last time an alive gateway of the region was known
	seen      bool      // lastAlive is meaningful
	persistAt time.Time // last persist effect
	dirty     bool      // replica contents changed since the last persist
	touched   bool      // only the replica's last sync moved since the last persist
	lastFetch time.Time // last fetch attempt (for anti-entropy)
	failedAt  time.Time // when the last failed fetch was recorded

	// The advertised version has been below the replica since behindSince,
	// when the replica was at behindVersion; resetFetched: the full fetch
	// for a suspected region reset was issued.
	behindSince   time.Time
	behindVersion uint64
	resetFetched  bool

	watch watchState // the push path (watchcore.go)
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
	if m.Region == c.cfg.Region {
		return
	}
	// Only an alive gateway makes a region known: events about the dead
	// gateways of a reaped or forgotten region (failed, left, Serf's reap)
	// do not bring it back.
	alive := c.aliveIn(m.Region)
	rs := c.regions[m.Region]
	if rs == nil && !alive {
		return
	}
	rs = c.state(m.Region)
	if alive {
		rs.lastAlive, rs.seen = now, true
	}
	c.observe(now, rs)
}

// observe keeps track of how long the advertised version has been below
// the replica's (see Core's doc: a lagging tag, or a region reset). It runs
// whenever either may have moved.
func (c *Core) observe(now time.Time, rs *regionState) {
	adv, ok := c.advertised(rs.name)
	if !ok || rs.replica == nil || adv >= rs.replica.Version() {
		rs.behindSince, rs.behindVersion, rs.resetFetched = time.Time{}, 0, false
		return
	}
	if rs.behindSince.IsZero() || adv >= rs.behindVersion {
		// Newly behind, or the tag caught up with where the replica was
		// when this started (it lags, the region moves on): start over.
		rs.behindSince, rs.behindVersion, rs.resetFetched = now, rs.replica.Version(), false
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
	rs.replica = &Replica{Region: s.Region, Catalog: cat, LastSync: s.LastSync, Source: s.Source, Restored: true,
		Epoch: s.Epoch, RestoredFrom: s.RestoredFrom}
	if !rs.seen {
		// The region has not been seen alive by this process yet: count the
		// reap time from its last sync, so an old replica of a region that
		// is gone still ages out.
		rs.lastAlive, rs.seen = s.LastSync, true
	}
	c.observe(now, rs)
}

// FetchDone applies the result of the fetch f (an EffectFetch from Tick,
// handed back as it was). It returns an error when the result was not
// applied.
//
// Only the region's current fetch counts: a result for an older Seq (the
// fetch timed out and Tick moved on, or the region was forgotten and
// started over) changes no schedule, failure count or error. Such a late
// result is still applied when it moves an existing replica forward, since
// versions only grow: a snapshot newer than the replica, or changes that
// continue it; anything else is dropped (and reported as the error).
func (c *Core) FetchDone(now time.Time, f Effect, r SyncResult) error {
	rs := c.regions[f.Region]
	if rs == nil {
		return fmt.Errorf("sync result for unknown region %s", f.Region)
	}
	if !rs.inflight || f.Seq != rs.seq {
		return c.late(now, rs, f, r)
	}
	rs.inflight = false
	rs.lastFetch = now
	var err error
	changed := false
	switch {
	case r.Full:
		if r.Catalog == nil {
			err = errors.New("full sync without a catalog")
			break
		}
		if rs.replica != nil && r.Catalog.Version() < rs.replica.Version() && !c.regionReset(now, f.Region, rs, r) {
			err = fmt.Errorf("snapshot v%d from %s is older than the replica's v%d%s; kept the replica",
				r.Catalog.Version(), f.Gateway, rs.replica.Version(), epochNote(rs.replica, r))
			break
		}
		changed = rs.replica == nil || !sameCatalog(rs.replica.Catalog, r.Catalog) || rs.replica.Epoch != r.Epoch
		rs.replica = newReplica(f.Region, r)
		rs.needFull = false
	default:
		if err = refuseOtherLife(rs, f.Gateway, r); err != nil {
			break
		}
		if rs.replica == nil {
			rs.replica = &Replica{Region: f.Region, Catalog: region.NewCatalog()}
			changed = true
		}
		for _, ch := range r.Changes {
			applied, aerr := rs.replica.Catalog.Apply(ch)
			changed = changed || applied
			if aerr != nil {
				err = fmt.Errorf("delta from %s: %w", f.Gateway, aerr)
				rs.needFull = true
				break
			}
			if applied {
				rs.replica.continued(r.Epoch)
			}
		}
	}
	if changed {
		rs.dirty = true
	}
	c.observe(now, rs)
	if err != nil {
		c.failed(now, rs, err.Error())
		return err
	}
	rs.replica.LastSync, rs.replica.Source, rs.replica.Restored = now, f.Gateway, false
	rs.failures, rs.lastErr, rs.nextTry = 0, "", time.Time{}
	rs.touched = true
	return nil
}

// late handles the result of a fetch that is no longer current (see
// FetchDone).
func (c *Core) late(now time.Time, rs *regionState, f Effect, r SyncResult) error {
	ignored := func(why string) error {
		return fmt.Errorf("late result of fetch #%d of %s from %s ignored: %s", f.Seq, f.Region, f.Gateway, why)
	}
	if rs.replica == nil {
		return ignored("no replica to move forward")
	}
	have := rs.replica.Version()
	switch {
	case r.Full:
		if r.Catalog == nil || r.Catalog.Version() <= have {
			return ignored(fmt.Sprintf("not newer than the replica's v%d", have))
		}
		rs.replica = newReplica(f.Region, r)
		rs.needFull = false
	default:
		if otherLife(rs.replica, r.Epoch) {
			return ignored(fmt.Sprintf("changes of another life of the store (epoch %q) than the replica's (%q)", r.Epoch, rs.replica.Epoch))
		}
		// Apply only changes that continue the replica, in place: each
		// moves it by one version, so a gap further on leaves it at a
		// version it really had (not a copy: O(changes), not O(catalog)).
		var next []region.Change
		for _, ch := range r.Changes {
			if ch.Version > have {
				next = append(next, ch)
			}
		}
		if len(next) == 0 {
			return ignored(fmt.Sprintf("nothing after the replica's v%d", have))
		}
		if next[0].Version != have+1 {
			return ignored(fmt.Sprintf("changes from v%d do not continue the replica's v%d", next[0].Version, have))
		}
		for _, ch := range next {
			if _, err := rs.replica.Catalog.Apply(ch); err != nil {
				rs.dirty = true
				return ignored(err.Error())
			}
			rs.replica.continued(r.Epoch)
		}
		rs.replica.Restored = false
	}
	rs.replica.LastSync, rs.replica.Source = now, f.Gateway
	rs.dirty = true
	c.observe(now, rs)
	return nil
}

// sameCatalog reports whether two catalogs hold the same version and
// instances.
func sameCatalog(a, b *region.Catalog) bool {
	if a.Version() != b.Version() || a.Len() != b.Len() {
		return false
	}
	for _, x := range a.All() {
		y, ok := b.Get(x.Key())
		if !ok || !x.RegisteredAt.Equal(y.RegisteredAt) || !x.UpdatedAt.Equal(y.UpdatedAt) {
			return false
		}
		x.RegisteredAt, x.UpdatedAt, y.RegisteredAt, y.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// SyncDone applies the result of a fetch of regionName from gateway. It is
// FetchDone for callers that do not keep the fetch's effect: the result
// counts as the current fetch's when that is in flight to gateway, and as
// a late one (see FetchDone) otherwise. Prefer FetchDone: it tells a late
// result from the current one when both come from the same gateway.
func (c *Core) SyncDone(now time.Time, regionName, gateway string, r SyncResult) error {
	return c.FetchDone(now, c.legacyFetch(regionName, gateway), r)
}

// legacyFetch returns the effect a SyncDone or SyncFailed answers.
func (c *Core) legacyFetch(regionName, gateway string) Effect {
	f := Effect{Kind: EffectFetch, Region: regionName, Gateway: gateway}
	if rs := c.regions[regionName]; rs != nil && rs.inflight && rs.fetchFrom == gateway {
		f.Seq = rs.seq
	}
	return f
}

// regionReset reports whether r, a snapshot older than the replica, comes
// from a region that was reset: it lost its data and started over, and its
// smaller catalog is the truth now. That takes every alive gateway of the
// region advertising a version below the replica's, and a proof that the
// snapshot is of another life of the region's store: an epoch other than
// the replica's, that is neither the one the replica's life was restored
// from nor one restored from the replica's. An older snapshot in the
// replica's epoch only lags (a cache behind changes its store already
// served), whatever the tags say: it is refused.
//
// When either side has no epoch (a gateway or a persisted replica from
// before epochs, a store never written since it lost its data), nothing
// tells the two apart but time: the tags must have stayed below the
// replica for AntiEntropy (the fetch Tick plans for a suspected reset).
func (c *Core) regionReset(now time.Time, name string, rs *regionState, r SyncResult) bool {
	adv, ok := c.advertised(name)
	if !ok || rs.replica == nil || adv >= rs.replica.Version() {
		return false
	}
	have := rs.replica
	if have.Epoch != "" && r.Epoch != "" {
		return r.Epoch != have.Epoch && r.RestoredFrom != have.Epoch && r.Epoch != have.RestoredFrom
	}
	return !rs.behindSince.IsZero() && now.Sub(rs.behindSince) >= c.cfg.AntiEntropy
}

// epochNote says, for an error, which epochs an older snapshot and the
// replica are in.
func epochNote(have *Replica, r SyncResult) string {
	if have.Epoch == "" && r.Epoch == "" {
		return ""
	}
	return fmt.Sprintf(" (epoch %q, replica's %q)", r.Epoch, have.Epoch)
}

// newReplica is the replica a full answer r makes.
func newReplica(regionName string, r SyncResult) *Replica {
	return &Replica{Region: regionName, Catalog: r.Catalog, Epoch: r.Epoch, RestoredFrom: r.RestoredFrom}
}

// otherLife reports whether an answer in epoch comes from another life of
// the region's store than the replica (both epochs known): the region lost
// its data and started over without a restore (a region reset), so the
// answer's versions are not the replica's. A delta of it does not continue
// the replica whatever its versions say (the new life may have climbed back
// to and past them), and an empty one does not prove the replica current.
// A restore, the one change of epoch that keeps the catalog, clears the
// store's change log, so no delta crosses it.
func otherLife(have *Replica, epoch string) bool {
	return have != nil && have.Epoch != "" && epoch != "" && epoch != have.Epoch
}

// refuseOtherLife returns an error, and marks the replica for a snapshot,
// when the delta r from gateway comes from another life of the store than
// the replica (otherLife); nil otherwise.
func refuseOtherLife(rs *regionState, gateway string, r SyncResult) error {
	if !otherLife(rs.replica, r.Epoch) {
		return nil
	}
	rs.needFull = true
	return fmt.Errorf("delta from %s is of another life of the store (epoch %q, replica's %q): the region was reset; asking for a snapshot",
		gateway, r.Epoch, rs.replica.Epoch)
}

// continued records that a change of the store's epoch ("" when not known)
// continued the replica: a replica that did not know its epoch learns it
// (a delta never crosses a restore, which clears the store's change log; if
// one did, the life it continued is the one the new epoch came from).
func (r *Replica) continued(epoch string) {
	if epoch == "" || epoch == r.Epoch {
		return
	}
	if r.Epoch != "" {
		r.RestoredFrom = r.Epoch
	}
	r.Epoch = epoch
}

// FetchFailed records that the fetch f failed. A failure of a fetch that
// is not the region's current one is ignored: a fetch that timed out was
// counted as failed by Tick already.
func (c *Core) FetchFailed(now time.Time, f Effect, err error) {
	rs := c.regions[f.Region]
	if rs == nil || !rs.inflight || f.Seq != rs.seq {
		return
	}
	rs.inflight = false
	rs.lastFetch = now
	c.failed(now, rs, fmt.Sprintf("fetch from %s: %v", f.Gateway, err))
}

// SyncFailed records a failed fetch of regionName from gateway: FetchFailed
// for callers that do not keep the fetch's effect. It counts only while a
// fetch is in flight to gateway.
func (c *Core) SyncFailed(now time.Time, regionName, gateway string, err error) {
	c.FetchFailed(now, c.legacyFetch(regionName, gateway), err)
}

func (c *Core) failed(now time.Time, rs *regionState, msg string) {
	rs.failures++
	rs.failedAt = now
	rs.rotate++
	rs.lastErr = msg
	d := c.cfg.BackoffBase << min(rs.failures-1, 20)
	d = min(d, c.cfg.BackoffMax)
	d += time.Duration(c.rng.Int64N(int64(d)/2 + 1))
	rs.nextTry = now.Add(d)
}

// Forget drops a region's replica at an operator's request, with the
// region's gateways that are not alive. A region whose gateways are still
// alive comes back at the next Tick, with a fresh full sync; a late result
// of a fetch issued before the Forget is not applied to it.
func (c *Core) Forget(regionName string) []Effect {
	if regionName == c.cfg.Region {
		return nil
	}
	if _, ok := c.regions[regionName]; !ok {
		return nil
	}
	c.drop(regionName)
	return []Effect{{Kind: EffectDrop, Region: regionName, Reason: "forgotten by an operator"}}
}

// drop forgets a region: its state and its gateways that are not alive.
func (c *Core) drop(regionName string) {
	delete(c.regions, regionName)
	for name, m := range c.gateways {
		if m.Region == regionName && m.Status != StatusAlive {
			delete(c.gateways, name)
		}
	}
}

// Tick returns the effects due at now.
func (c *Core) Tick(now time.Time) []Effect {
	// A region with an alive gateway has a state (it may have been
	// forgotten while its gateways lived on).
	for _, name := range c.gatewayRegions() {
		if name != c.cfg.Region && c.regions[name] == nil && c.aliveIn(name) {
			c.state(name)
		}
	}
	var out []Effect
	for _, name := range c.regionNames() {
		rs := c.regions[name]
		alive := c.aliveIn(name)
		if alive {
			rs.lastAlive, rs.seen = now, true
		}
		c.observe(now, rs)
		if rs.inflight && now.Sub(rs.fetchAt) >= c.cfg.FetchTimeout {
			// One failure; the fetch's own report, if it still comes, is
			// ignored (its Seq is no longer in flight).
			rs.inflight = false
			rs.lastFetch = now
			c.failed(now, rs, fmt.Sprintf("fetch from %s timed out after %s", rs.fetchFrom, c.cfg.FetchTimeout))
		}
		if !alive && rs.seen && now.Sub(rs.lastAlive) >= c.cfg.ReapAfter {
			c.drop(name)
			out = append(out, Effect{Kind: EffectDrop, Region: name,
				Reason: fmt.Sprintf("no alive gateway for %s", c.cfg.ReapAfter)})
			continue
		}
		if p, ok := c.plan(now, rs); ok && !now.Before(p.at) {
			out = append(out, c.issue(now, rs, p))
		}
		if at, ok := c.persistAt(rs); ok && !now.Before(at) {
			rs.dirty, rs.touched, rs.persistAt = false, false, now
			out = append(out, Effect{Kind: EffectPersist, Region: name})
		}
	}
	return out
}

// fetchPlan is the next fetch a region needs: at when, since what, why.
type fetchPlan struct {
	at     time.Time
	since  uint64
	reason string
	reset  bool // the full fetch for a suspected region reset
}

// plan returns the region's next fetch, at or after now (when it is due
// already, at is now or before). ok is false when no fetch is to be
// planned: one is in flight, or no gateway of the region is alive.
func (c *Core) plan(now time.Time, rs *regionState) (fetchPlan, bool) {
	if rs.inflight {
		return fetchPlan{}, false
	}
	adv, ok := c.advertised(rs.name)
	if !ok {
		return fetchPlan{}, false // no alive gateway to ask
	}
	var p fetchPlan
	switch {
	case rs.replica == nil:
		p.reason = "no replica yet"
	case rs.needFull:
		p.reason = "delta did not apply"
	case adv > rs.replica.Version():
		p.since = rs.replica.Version()
		p.reason = fmt.Sprintf("advertised v%d ahead of replica v%d", adv, p.since)
	case rs.replica.Restored:
		p.since = rs.replica.Version()
		p.reason = "replica restored from the local store"
	default:
		// Current, or ahead of a lagging tag: anti-entropy, unless the tag
		// has stayed below the replica for so long that the region must
		// have been reset.
		p.since = rs.replica.Version()
		p.reason = "anti-entropy"
		p.at = rs.lastFetch.Add(c.cfg.AntiEntropy)
		if !rs.behindSince.IsZero() && !rs.resetFetched {
			if at := rs.behindSince.Add(c.cfg.AntiEntropy); at.Before(p.at) || !now.Before(at) {
				p = fetchPlan{at: at, reset: true,
					reason: fmt.Sprintf("advertised v%d below replica v%d since %s: region reset?", adv,
						rs.replica.Version(), rs.behindSince.Format(time.RFC3339))}
			}
		}
	}
	if p.at.Before(rs.nextTry) {
		p.at = rs.nextTry
	}
	return p, true
}

// issue starts the planned fetch.
func (c *Core) issue(now time.Time, rs *regionState, p fetchPlan) Effect {
	if rs.needFull {
		p.since = 0
	}
	if p.reset {
		rs.resetFetched = true
	}
	gw := c.pick(rs.name, rs.rotate)
	c.seq++
	rs.inflight, rs.seq, rs.fetchFrom, rs.fetchAt = true, c.seq, gw.Name, now
	return Effect{Kind: EffectFetch, Region: rs.name, Gateway: gw.Name, Addr: gw.HTTPAddr, Since: p.since,
		Reason: p.reason, Seq: c.seq}
}

// persistAt returns when the region's replica is next to be persisted.
func (c *Core) persistAt(rs *regionState) (time.Time, bool) {
	switch {
	case rs.replica == nil:
		return time.Time{}, false
	case rs.dirty:
		return rs.persistAt.Add(c.cfg.PersistEvery), true
	case rs.touched:
		return rs.persistAt.Add(c.cfg.persistSyncEvery()), true
	}
	return time.Time{}, false
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

// gatewayRegions returns the regions of the known gateways, sorted.
func (c *Core) gatewayRegions() []string {
	var names []string
	for _, m := range c.gateways {
		names = append(names, m.Region)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// NextDeadline returns when Tick next has something to do: never before
// now, and now only while something is due that Tick has not done yet (a
// fetch that is due is issued by the next Tick, after which its timeout is
// the deadline). It is zero when nothing is scheduled; the driver also
// ticks on every event. Regions with no alive gateway have no fetch
// deadline (a membership event wakes the driver when one comes back).
func (c *Core) NextDeadline(now time.Time) time.Time {
	var best time.Time
	consider := func(t time.Time) {
		if t.Before(now) {
			t = now
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, name := range c.regionNames() {
		rs := c.regions[name]
		if rs.inflight {
			consider(rs.fetchAt.Add(c.cfg.FetchTimeout))
		} else if p, ok := c.plan(now, rs); ok {
			consider(p.at)
		}
		if at, ok := c.persistAt(rs); ok {
			consider(at)
		}
		if rs.seen && !c.aliveIn(name) {
			consider(rs.lastAlive.Add(c.cfg.ReapAfter))
		}
	}
	if !c.regionsComplete() {
		consider(now) // Tick brings back a region with an alive gateway
	}
	return best
}

// regionsComplete reports whether every region with an alive gateway has
// a state.
func (c *Core) regionsComplete() bool {
	for _, m := range c.gateways {
		if m.Region != c.cfg.Region && m.Status == StatusAlive && c.regions[m.Region] == nil {
			return false
		}
	}
	return true
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
// region is known at all. It agrees with View and Regions: a region is
// known when Regions lists it.
func (c *Core) Lookup(name string) (rep *Replica, stale, known bool) {
	adv, reachable := c.advertised(name)
	if name == c.cfg.Region {
		return nil, false, true
	}
	rs := c.regions[name]
	known = rs != nil || c.hasGateway(name)
	if !known {
		return nil, false, false
	}
	return c.replicaOf(rs), c.stale(rs, adv, reachable), true
}

// hasGateway reports whether any gateway of the region is known.
func (c *Core) hasGateway(regionName string) bool {
	for _, m := range c.gateways {
		if m.Region == regionName {
			return true
		}
	}
	return false
}

func (c *Core) replicaOf(rs *regionState) *Replica {
	if rs == nil {
		return nil
	}
	return rs.replica
}

// stale says whether a remote region's replica reads stale: no replica,
// no alive gateway, behind the advertised version, restored and not synced
// since, or the last fetch failed. A replica ahead of the advertised
// version is not stale: the tag lags.
func (c *Core) stale(rs *regionState, adv uint64, reachable bool) bool {
	return rs == nil || rs.replica == nil || !reachable || rs.replica.Version() < adv || rs.lastErr != "" ||
		rs.replica.Restored
}

// RegionView is what the core knows of one region.
type RegionView struct {
	Name       string
	Local      bool
	Gateways   []Member // sorted by name
	Advertised uint64   // highest version among alive gateways
	Reachable  bool     // at least one alive gateway, and fetches of it are not failing (UnreachableAfter)
	Replica    *Replica // nil for the local region or before the first sync
	Stale      bool     // no replica, unreachable, behind the advertised version, restored, or last fetch failed
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
	if v.Local {
		return v
	}
	rs := c.regions[name]
	if rs != nil && c.cfg.UnreachableAfter > 0 && rs.failures >= c.cfg.UnreachableAfter {
		v.Reachable = false // alive in gossip, but it does not answer us
	}
	v.Replica, v.Stale = c.replicaOf(rs), c.stale(rs, v.Advertised, v.Reachable)
	if rs != nil {
		v.LastError = rs.lastErr
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
