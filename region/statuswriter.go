package region

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// StatusWriter carries out a health machine's store writes (EffectSetStatus
// and EffectDeregister): compare-and-set on the instance's ModifyIndex,
// then the cache applies the change so that it is visible at once. The
// health runner writes through it (in production and in the simulator).
type StatusWriter struct {
	Store  Store
	Cache  *Cache
	Now    func() time.Time
	Logger *slog.Logger
	// Timeout bounds one write. Default 2s.
	Timeout time.Duration
	// OnWrite, when set, sees every change the store took.
	OnWrite func(Effect, Change)

	loggedDown atomic.Bool // a write failure was logged; cleared on the next success
}

// Write carries out one SetStatus or Deregister. ErrConflict and
// ErrNotFound say the machine (or the cache) was behind the store; the
// cache is kicked to catch up. Any other error is the store's.
func (w *StatusWriter) Write(ctx context.Context, e Effect) error {
	ctx, cancel := context.WithTimeout(ctx, cmpOr(w.Timeout, 2*time.Second))
	defer cancel()
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	var ch Change
	var err error
	if e.Kind == EffectDeregister {
		ch, err = w.Store.Delete(ctx, e.Key, Cond{IfIndex: e.IfIndex})
	} else {
		var in Instance
		var ok bool
		w.Cache.Read(func(c *Catalog) { in, ok = c.Get(e.Key) })
		if !ok || in.ModifyIndex != e.IfIndex {
			w.Cache.Kick() // the machine is behind the cache or the cache behind the store
			return ErrConflict
		}
		prev := in.Status
		in.Status, in.Output, in.UpdatedAt = e.Status, e.Output, w.Now()
		ch, err = w.Store.Put(ctx, in, Cond{IfIndex: e.IfIndex})
		if err == nil && prev != e.Status {
			log.Info("health status changed", "instance", e.Key.String(), "from", prev, "to", e.Status, "output", e.Output)
		}
	}
	switch {
	case err == nil:
		if w.loggedDown.CompareAndSwap(true, false) {
			log.Info("health writes reach the store again")
		}
		if e.Kind == EffectDeregister {
			log.Info("deregistered critical instance", "instance", e.Key.String(), "reason", e.Reason)
		}
		if w.OnWrite != nil {
			w.OnWrite(e, ch)
		}
		if !w.Cache.Apply(ch) {
			// Another gateway wrote in between: catch up now, so the
			// write is visible to whoever asked for it.
			w.Cache.Sync(ctx)
		}
		return nil
	case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
		w.Cache.Kick()
		return err
	default:
		if w.loggedDown.CompareAndSwap(false, true) {
			log.Warn("health write failed; will retry", "effect", e.String(), "err", err)
		}
		return err
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
