package region

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
	if o.Now == nil {
		o.Now = time.Now
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
	kick     chan struct{}
	onChange []func([]Change, bool)
}

// NewCache returns an empty cache over store. It holds nothing until the
// first successful Sync.
func NewCache(store Store, opt CacheOptions) *Cache {
	opt.fill()
	return &Cache{store: store, opt: opt, cat: NewCatalog(),
		changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// OnChange registers fn to be called (outside the cache's lock, from the
// goroutine that applied them) with the changes applied, or with reload=true
// after a snapshot replaced the catalog. Register before Run.
func (c *Cache) OnChange(fn func(changes []Change, reload bool)) {
	c.onChange = append(c.onChange, fn)
}

// Run follows the store until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	notes := c.store.Subscribe(ctx)
	t := time.NewTicker(c.opt.CatchUp)
	defer t.Stop()
	c.syncLogged(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-notes:
		case <-c.kick:
		case <-t.C:
		}
		c.syncLogged(ctx)
	}
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
}

// Kick asks Run to catch up now (for instance after a write that skipped a
// version).
func (c *Cache) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Sync reads the store until the cache has caught up.
func (c *Cache) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	for {
		have := c.Version()
		c.mu.RLock()
		loaded := c.loaded
		c.mu.RUnlock()
		var chs []Change
		ok := false
		var err error
		if loaded {
			chs, ok, err = c.store.ChangesSince(ctx, have, c.opt.BatchSize)
			if err != nil {
				return c.failed(err)
			}
		}
		if !ok {
			snap, err := c.store.Snapshot(ctx)
			if err != nil {
				return c.failed(err)
			}
			if loaded {
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
			if errors.As(err, &gap) {
				continue // a concurrent write moved us; read again
			}
			return err
		}
		if len(chs) < c.opt.BatchSize || applied == 0 {
			return nil
		}
	}
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
	c.loaded = true
	c.isLoaded.Store(true)
	c.synced = c.opt.Now()
	c.storeErr = nil
	c.notifyLocked()
	c.mu.Unlock()
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
	for _, ch := range chs {
		var ok bool
		ok, err = c.cat.Apply(ch)
		if err != nil {
			break
		}
		if ok {
			done = append(done, ch)
		}
	}
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
	Stale    bool          // the store has not answered within StaleAfter, or never
	Age      time.Duration // since the last successful read of the store
	StoreErr error         // the last error reading the store
	Version  uint64
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
	f.Stale = !c.loaded || c.storeErr != nil || f.Age > c.opt.StaleAfter
	return f
}

// StoreErr returns the last error reading the store (nil when it answered).
func (c *Cache) StoreErr() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.storeErr
}

// Wait blocks until the version passes index, or ctx ends, and returns the
// version then.
func (c *Cache) Wait(ctx context.Context, index uint64) uint64 {
	for {
		c.mu.RLock()
		v, ch := c.cat.Version(), c.changed
		c.mu.RUnlock()
		if v > index {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-ch:
		}
	}
}
