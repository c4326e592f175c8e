package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// CatchUp is how often the cache reads the change log even without a
	// notification (notifications are best effort). Default 1s.
	CatchUp time.Duration
	// StaleAfter is how long after the last successful read of the store
	// answers are marked stale. Default 3 x CatchUp.
	StaleAfter time.Duration
	// BatchSize is how many changes one log read fetches. Default 1000.
	BatchSize int
	Logger    *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnStoreLoss is what to do when the store lost data (see DetectLoss):
	// LossRestore (when empty) writes the cached catalog back, LossAccept
	// adopts the store as it is.
	OnStoreLoss OnStoreLoss
	// NewEpoch names the epoch a restore gives the store; NewEpoch (random)
	// when nil. The simulator passes a deterministic one.
	NewEpoch func() string
	// Runtime runs the follower (Start, Run); rt.Real() when nil.
	Runtime rt.Runtime
	// OnSynced, when set, sees the outcome of every follower sync.
	OnSynced func(err error)
}

func (o *CacheOptions) fill() {
	if o.CatchUp <= 0 {
		o.CatchUp = time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 3 * o.CatchUp
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Runtime = rt.Or(o.Runtime)
	if o.Now == nil {
		o.Now = o.Runtime.Now
	}
	if o.OnStoreLoss == "" {
		o.OnStoreLoss = LossRestore
	}
	if o.NewEpoch == nil {
		o.NewEpoch = NewEpoch
	}
}

// Cache serves a region's catalog from memory. Run follows the Store's
// change log (on every notification and every CatchUp) and reloads a
// snapshot when the log no longer reaches back. Reads never wait on the
// Store: they take a read lock that is only held for in-memory work.
type Cache struct {
	store Store
	opt   CacheOptions

	syncMu sync.Mutex // one Sync at a time

	mu       sync.RWMutex
	cat      *Catalog
	loaded   bool
	isLoaded atomic.Bool // loaded, readable without the lock
	synced   time.Time   // last successful read of the store
	storeErr error       // last error reading the store, nil when it answered
	changed  chan struct{}
	follow   *rt.Loop
	started  atomic.Bool
	ctx      context.Context // of the follower; set by Start
	onChange []func([]Change, bool)

	// mark is where the store was at the last read; loss the last data
	// loss found, lossGen counts them (it wakes blocking queries).
	mark      StoreMark
	loss      *StoreLoss
	lossGen   uint64
	lossTotal atomic.Int64
}

// NewCache returns an empty cache over store. It holds nothing until the
// first successful Sync.
func NewCache(store Store, opt CacheOptions) *Cache {
	opt.fill()
	c := &Cache{store: store, opt: opt, cat: NewCatalog(), changed: make(chan struct{})}
	c.follow = rt.NewLoop(opt.Runtime, "cache", c.followStep)
	return c
}

// OnChange registers fn to be called (outside the cache's lock, from the
// goroutine that applied them) with the changes applied, or with reload=true
// after a snapshot replaced the catalog. Register before Run.
func (c *Cache) OnChange(fn func(changes []Change, reload bool)) {
	c.onChange = append(c.onChange, fn)
}

// Run follows the store until ctx ends: Start, then a Kick for every
// notification of the store.
func (c *Cache) Run(ctx context.Context) {
	notes := c.store.Subscribe(ctx)
	c.Start(ctx)
	defer func() {
		c.Stop()
		c.follow.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-notes:
			c.Kick()
		}
	}
}

// Start starts the follower on the runtime: a sync now, on every Kick and
// at least every CatchUp. ctx bounds the store calls. The simulator calls
// it and Kicks for the store's simulated notifications.
func (c *Cache) Start(ctx context.Context) {
	c.ctx = ctx
	c.started.Store(true)
	c.follow.Kick()
}

// Stop stops the follower; a sync in progress completes.
func (c *Cache) Stop() { c.follow.Stop() }

func (c *Cache) followStep() {
	c.follow.After(c.opt.CatchUp)
	c.syncLogged(c.ctx)
}

func (c *Cache) syncLogged(ctx context.Context) {
	wasErr := c.StoreErr()
	err := c.Sync(ctx)
	switch {
	case err != nil && wasErr == nil && ctx.Err() == nil:
		c.opt.Logger.Warn("store unreachable; serving reads from cache", "err", err)
	case err == nil && wasErr != nil:
		c.opt.Logger.Info("store reachable again; cache caught up", "version", c.Version())
	}
	if c.opt.OnSynced != nil {
		c.opt.OnSynced(err)
	}
}

// Kick asks the follower to catch up now (for instance after a write that
// skipped a version). Before Start it does nothing.
func (c *Cache) Kick() {
	if c.started.Load() {
		c.follow.Kick()
	}
}

// Sync reads the store until the cache has caught up. When the store lost
// data (its epoch changed or its version went back, see DetectLoss) the
// cache keeps what it holds and, by default, writes it back (see lost).
func (c *Cache) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	restores := 0
	for {
		have := c.Version()
		c.mu.RLock()
		loaded, mark := c.loaded, c.mark
		c.mu.RUnlock()
		var chs []Change
		ok := false
		var err error
		if loaded {
			chs, ok, err = c.store.ChangesSince(ctx, have, c.opt.BatchSize)
			if err != nil {
				return c.failed(err)
			}
			if ok && foreignEpoch(mark, chs) {
				ok = false // a different life of the store: compare snapshots
			}
		}
		if !ok {
			snap, err := c.store.Snapshot(ctx)
			if err != nil {
				return c.failed(err)
			}
			if loaded {
				if lost, reason := DetectLoss(mark, snap.Mark()); lost {
					restores++
					if err := c.lost(ctx, mark, snap, reason, restores); err != nil {
						return err
					}
					continue
				}
				c.opt.Logger.Info("change log does not reach back; reloaded snapshot", "had", have, "version", snap.Version)
			}
			c.load(snap)
			continue
		}
		applied, err := c.apply(chs)
		c.mu.Lock()
		c.synced = c.opt.Now()
		c.storeErr = nil
		c.mu.Unlock()
		if err != nil {
			var gap *ErrGap
			if errors.As(err, &gap) || errors.Is(err, errForeignEpoch) {
				continue // a concurrent write moved us; read again
			}
			return err
		}
		if len(chs) < c.opt.BatchSize || applied == 0 {
			return nil
		}
	}
}

// maxRestores bounds the restores one Sync tries before it gives up (the
// next Sync tries again).
const maxRestores = 3

// lost handles data loss found by Sync: seen is where the cache was, snap
// what the store holds now. The first time it logs the loss at ERROR,
// counts it and wakes blocking queries. With LossAccept it loads snap;
// otherwise it writes the cached catalog back (Store.Restore) and Sync reads
// the store again, finding either its own restore or, when another gateway
// of the region restored first, that one, which it adopts.
func (c *Cache) lost(ctx context.Context, seen StoreMark, snap Snapshot, reason string, attempt int) error {
	policy := c.opt.OnStoreLoss
	found := snap.Mark()
	c.mu.Lock()
	first := c.loss == nil || c.loss.Resolved() || c.loss.Seen != seen
	if first {
		c.loss = &StoreLoss{Seen: seen, Found: found, Reason: reason, At: c.opt.Now(), Policy: policy}
		c.lossGen++
		c.lossTotal.Add(1)
		c.notifyLocked()
	}
	c.loss.Found = found
	c.mu.Unlock()
	if first {
		cached := 0
		c.Read(func(cat *Catalog) { cached = cat.Len() })
		c.opt.Logger.Error("store data loss: "+reason, "seen_version", seen.Version, "seen_epoch", seen.Epoch,
			"store_version", found.Version, "store_epoch", found.Epoch, "store_instances", len(snap.Instances),
			"cached_instances", cached, "on_store_loss", string(policy))
	}
	if policy == LossAccept {
		c.opt.Logger.Error("store data loss accepted (--on-store-loss accept): serving the store as it is now",
			"version", found.Version, "instances", len(snap.Instances), "dropped_version", seen.Version)
		c.mu.Lock()
		c.loss.Accepted = true
		c.mu.Unlock()
		c.load(snap)
		return nil
	}
	if attempt > maxRestores {
		return c.failed(fmt.Errorf("store data loss (%s): the restore did not take after %d attempts", reason, maxRestores))
	}
	var mem []Instance
	c.Read(func(cat *Catalog) { mem = cat.All() })
	req := RestoreRequest{Instances: MergeRestore(mem, snap.Instances),
		Version: RestoreVersion(seen.Version, found.Version), Epoch: c.opt.NewEpoch(), From: seen.Epoch}
	ok, err := c.store.Restore(ctx, found.Epoch, req)
	if err != nil {
		c.mu.Lock()
		c.loss.Err = err.Error()
		c.mu.Unlock()
		return c.failed(fmt.Errorf("store data loss (%s); restoring the catalog: %w", reason, err))
	}
	if ok {
		c.mu.Lock()
		c.loss.RestoredBySelf = true
		c.mu.Unlock()
		c.opt.Logger.Warn("store data loss: wrote the cached catalog back to the store",
			"version", req.Version, "restored_instances", len(req.Instances), "kept_from_store", len(snap.Instances), "epoch", req.Epoch)
	} else {
		c.opt.Logger.Info("store data loss: another gateway of the region restored the store first; adopting its catalog")
	}
	return nil
}

// errForeignEpoch marks changes from another life of the store than the
// cache's.
var errForeignEpoch = errors.New("change from another store epoch")

// foreignEpoch reports whether chs come from a different epoch than mark's
// (both known).
func foreignEpoch(mark StoreMark, chs []Change) bool {
	for _, ch := range chs {
		if ch.Epoch != "" && mark.Epoch != "" && ch.Epoch != mark.Epoch {
			return true
		}
	}
	return false
}

func (c *Cache) failed(err error) error {
	c.mu.Lock()
	c.storeErr = err
	c.mu.Unlock()
	return err
}

func (c *Cache) load(s Snapshot) {
	c.mu.Lock()
	c.cat.Load(s)
	c.mark = s.Mark()
	resolved := false
	if c.loss != nil && !c.loss.Resolved() {
		c.loss.Restored, c.loss.RestoredAt, c.loss.RestoredVersion = true, c.opt.Now(), s.Version
		resolved = true
	}
	c.loaded = true
	c.isLoaded.Store(true)
	c.synced = c.opt.Now()
	c.storeErr = nil
	c.notifyLocked()
	c.mu.Unlock()
	if resolved {
		c.opt.Logger.Info("store data loss resolved: the catalog is restored", "version", s.Version, "instances", len(s.Instances))
	}
	for _, fn := range c.onChange {
		fn(nil, true)
	}
}

// Apply applies changes the gateway made itself, so a client reads its own
// write at once. A change that skips a version (another gateway wrote in
// between) is not applied: Apply returns false and wakes Run to catch up.
func (c *Cache) Apply(chs ...Change) bool {
	if _, err := c.apply(chs); err != nil {
		c.Kick()
		return false
	}
	return true
}

func (c *Cache) apply(chs []Change) (int, error) {
	var done []Change
	var err error
	c.mu.Lock()
	if !c.loaded {
		c.mu.Unlock()
		c.Kick()
		return 0, nil
	}
	if foreignEpoch(c.mark, chs) {
		c.mu.Unlock()
		return 0, errForeignEpoch
	}
	for _, ch := range chs {
		var ok bool
		ok, err = c.cat.Apply(ch)
		if err != nil {
			break
		}
		if ok {
			done = append(done, ch)
			if c.mark.Epoch == "" && ch.Epoch != "" {
				c.mark.Epoch = ch.Epoch // the store's first write named it
			}
		}
	}
	c.mark.Version = c.cat.Version()
	if len(done) > 0 {
		c.notifyLocked()
	}
	c.mu.Unlock()
	if len(done) > 0 {
		for _, fn := range c.onChange {
			fn(done, false)
		}
	}
	return len(done), err
}

func (c *Cache) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Version returns the cached catalog version.
func (c *Cache) Version() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cat.Version()
}

// Read calls fn with the catalog under the read lock. fn must not keep
// references to the catalog or block.
func (c *Cache) Read(fn func(*Catalog)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.cat)
}

// Loaded reports whether the cache has read a snapshot of the store: until
// then it holds nothing, and answers from it would be wrong, not empty.
func (c *Cache) Loaded() bool { return c.isLoaded.Load() }

// Freshness says how current the cache is.
type Freshness struct {
	Loaded   bool          // a snapshot has been read at least once
	Stale    bool          // the store has not answered within StaleAfter, or never, or lost data not restored yet
	Age      time.Duration // since the last successful read of the store
	StoreErr error         // the last error reading the store
	Version  uint64
	// LossPending: the store lost data and the cache serves what it held
	// until the catalog is restored.
	LossPending bool
}

// Freshness reports the cache's staleness at the cache's clock.
func (c *Cache) Freshness() Freshness {
	now := c.opt.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	f := Freshness{Loaded: c.loaded, StoreErr: c.storeErr, Version: c.cat.Version()}
	if c.loaded {
		f.Age = max(now.Sub(c.synced), 0)
	}
	f.LossPending = c.loss != nil && !c.loss.Resolved()
	f.Stale = !c.loaded || c.storeErr != nil || f.Age > c.opt.StaleAfter || f.LossPending
	return f
}

// StoreErr returns the last error reading the store (nil when it answered).
func (c *Cache) StoreErr() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.storeErr
}

// Wait blocks until the version passes index, the store is found to have
// lost data, or ctx ends, and returns the version then.
func (c *Cache) Wait(ctx context.Context, index uint64) uint64 {
	c.mu.RLock()
	gen := c.lossGen
	c.mu.RUnlock()
	for {
		c.mu.RLock()
		v, ch, g := c.cat.Version(), c.changed, c.lossGen
		c.mu.RUnlock()
		if v > index || g != gen {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-ch:
		}
	}
}

// StoreLoss describes the last data loss the cache found in its store.
type StoreLoss struct {
	Seen   StoreMark   // where the store was before
	Found  StoreMark   // what the store held when last read during the loss
	Reason string      // what gave it away
	At     time.Time   // when it was found
	Policy OnStoreLoss // what the gateway does about it
	// Restored: the catalog was written back (by this gateway when
	// RestoredBySelf, else by another of the region) and reloaded, at
	// RestoredVersion. Accepted: the store was adopted as it was.
	Restored        bool
	RestoredBySelf  bool
	RestoredAt      time.Time
	RestoredVersion uint64
	Accepted        bool
	Err             string // the last restore error
}

// Resolved reports whether the loss is over: restored, or accepted.
func (l *StoreLoss) Resolved() bool { return l.Restored || l.Accepted }

// StoreLoss returns the last data loss found in the store, if any.
func (c *Cache) StoreLoss() (StoreLoss, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.loss == nil {
		return StoreLoss{}, false
	}
	return *c.loss, true
}

// StoreLosses counts the data losses found in the store.
func (c *Cache) StoreLosses() int64 { return c.lossTotal.Load() }

// Trusts reports whether a snapshot read from the store at version, in
// epoch ("" when not known), may be served instead of the cache's: not
// while a data loss is unresolved, not when it is behind the cache, not
// from another epoch.
func (c *Cache) Trusts(version uint64, epoch string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.trustsLocked(epoch) && version >= c.cat.Version()
}

// TrustsChanges is Trusts for changes read from the store's log in epoch:
// they may stop below the cache's version (a delta is bounded), but not
// while a data loss is unresolved, nor from another epoch.
func (c *Cache) TrustsChanges(epoch string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.trustsLocked(epoch)
}

func (c *Cache) trustsLocked(epoch string) bool {
	switch {
	case c.loss != nil && !c.loss.Resolved():
		return false
	case epoch != "" && c.mark.Epoch != "" && epoch != c.mark.Epoch:
		return false
	}
	return true
}

// Settled returns a change this gateway wrote, as the cache holds it after
// a Sync. A change made in a store that had lost data (its epoch is not the
// cache's any more) was carried over by the restore at a higher version:
// Settled returns it at that version (a put with the instance as restored),
// so the writer never reports a version below what readers see. Any other
// change is returned as it is.
func (c *Cache) Settled(ch Change) Change {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if ch.Epoch == "" || c.mark.Epoch == "" || ch.Epoch == c.mark.Epoch || ch.Version >= c.cat.Version() {
		return ch
	}
	out := Change{Version: c.cat.Version(), Op: ch.Op, Service: ch.Service, ID: ch.ID, Epoch: c.mark.Epoch}
	if ch.Op == OpPut {
		in, ok := c.cat.Get(Key{Service: ch.Service, ID: ch.ID})
		if !ok {
			return ch
		}
		out.Version, out.Instance = in.ModifyIndex, &in
	}
	return out
}
