package region

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// Registrar is the logic behind the registration and deregistration
// handlers, without HTTP: it validates, writes to the store under a write
// id (repeating a write whose outcome is unknown with the same id, so it is
// applied once), and makes the cache read the write it acknowledged. The
// gateway's handlers and the simulator's registrations both call it.
type Registrar struct {
	Store  Store
	Cache  *Cache
	Logger *slog.Logger
	// Runtime is the clock for retry deadlines; rt.Real() when nil.
	Runtime rt.Runtime
	// Sleep waits between retries of a write whose outcome is unknown; a
	// real timer when nil. It returns ctx's error when ctx ends first.
	// The simulator, which cannot block, passes one that refuses (its
	// stores answer every write).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Register writes in (validated) under write id id and returns the change
// as the cache holds it.
func (r *Registrar) Register(ctx context.Context, in Instance, id string) (Change, error) {
	if err := in.Validate(); err != nil {
		return Change{}, err
	}
	ch, err := r.write(ctx, id, func(ctx context.Context, c Cond) (Change, error) { return r.Store.Put(ctx, in, c) })
	if err != nil {
		r.logger().Warn("register failed", "instance", in.Key().String(), "err", err)
		return ch, err
	}
	ch = r.settle(ctx, ch)
	// At debug level: one line per acknowledged write is thousands a
	// second under load (and formatting it was ~4% of a gateway's CPU
	// per registration in BenchmarkWrites); failures stay at warn.
	if l := r.logger(); l.Enabled(ctx, slog.LevelDebug) {
		l.DebugContext(ctx, "registered", "instance", in.Key().String(), "address", in.Address, "port", in.Port, "version", ch.Version)
	}
	return ch, nil
}

// Deregister deletes k under write id id; ErrNotFound when it is not
// registered.
func (r *Registrar) Deregister(ctx context.Context, k Key, id string) (Change, error) {
	ch, err := r.write(ctx, id, func(ctx context.Context, c Cond) (Change, error) { return r.Store.Delete(ctx, k, c) })
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			r.logger().Warn("deregister failed", "instance", k.String(), "err", err)
		}
		return ch, err
	}
	ch = r.settle(ctx, ch)
	if l := r.logger(); l.Enabled(ctx, slog.LevelDebug) {
		l.DebugContext(ctx, "deregistered", "instance", k.String(), "version", ch.Version)
	}
	return ch, nil
}

// settle applies an acknowledged write to the cache; when another gateway
// wrote in between, or the cache has not loaded yet, it catches up now, so
// this gateway reads the write it acknowledged.
func (r *Registrar) settle(ctx context.Context, ch Change) Change {
	if r.Cache.Apply(ch) {
		return ch
	}
	r.Cache.Sync(ctx)
	return r.Cache.Settled(ch) // a restore after a store loss moved it up
}

// write runs one store write under a write id. When the store cannot tell
// whether the write was applied (its answer was lost), it asks again with
// the same id, which returns the first write's result without applying it
// twice, for as long as ctx allows. An error that still wraps
// ErrOutcomeUnknown means the outcome is unknown.
func (r *Registrar) write(ctx context.Context, id string, write func(ctx context.Context, c Cond) (Change, error)) (Change, error) {
	clock := rt.Or(r.Runtime)
	sleep := r.Sleep
	if sleep == nil {
		sleep = realSleep
	}
	backoff := 50 * time.Millisecond
	for {
		ch, err := write(ctx, Cond{WriteID: id})
		if err == nil || !errors.Is(err, ErrOutcomeUnknown) {
			return ch, err
		}
		if dl, ok := ctx.Deadline(); ok && dl.Sub(clock.Now()) < backoff+100*time.Millisecond {
			return ch, err
		}
		if sleep(ctx, backoff) != nil {
			return ch, err
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (r *Registrar) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

func realSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
