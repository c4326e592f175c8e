package region

import (
	"context"
	"fmt"
	"sync"
)

// FaultyStore wraps a Store and fails its calls on demand, to test what
// sits on top of a store that cannot be reached. Notifications pass through.
type FaultyStore struct {
	Store
	mu  sync.Mutex
	err error
	// lose: writes lose their connection (see LoseReplies); lost counts
	// them, so they alternate deterministically.
	lose bool
	lost int
}

var _ Store = (*FaultyStore)(nil)

// NewFaultyStore wraps s; it passes every call through until Fail.
func NewFaultyStore(s Store) *FaultyStore { return &FaultyStore{Store: s} }

// Fail makes every call return err until Fail(nil).
func (f *FaultyStore) Fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// LoseReplies makes every write's outcome unknown to its caller until
// LoseReplies(false), as when the connection to Redis resets after a
// command was sent: the writes alternate between applied (the answer was
// lost) and not applied (the request was lost), and each returns an error
// wrapping ErrOutcomeUnknown. Reads pass through.
func (f *FaultyStore) LoseReplies(on bool) {
	f.mu.Lock()
	f.lose = on
	f.mu.Unlock()
}

// lostWrite reports whether this write loses its connection, and if so
// whether it is applied all the same.
func (f *FaultyStore) lostWrite() (lost, apply bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.lose {
		return false, false
	}
	f.lost++
	return true, f.lost%2 == 1
}

var errConnReset = fmt.Errorf("%w: connection reset after the command was sent", ErrOutcomeUnknown)

func (f *FaultyStore) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Put implements Store.
func (f *FaultyStore) Put(ctx context.Context, in Instance, c Cond) (Change, error) {
	if err := f.fault(); err != nil {
		return Change{}, err
	}
	if lost, apply := f.lostWrite(); lost {
		if apply {
			_, _ = f.Store.Put(ctx, in, c)
		}
		return Change{}, errConnReset
	}
	return f.Store.Put(ctx, in, c)
}

// Delete implements Store.
func (f *FaultyStore) Delete(ctx context.Context, k Key, c Cond) (Change, error) {
	if err := f.fault(); err != nil {
		return Change{}, err
	}
	if lost, apply := f.lostWrite(); lost {
		if apply {
			_, _ = f.Store.Delete(ctx, k, c)
		}
		return Change{}, errConnReset
	}
	return f.Store.Delete(ctx, k, c)
}

// Snapshot implements Store.
func (f *FaultyStore) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := f.fault(); err != nil {
		return Snapshot{}, err
	}
	return f.Store.Snapshot(ctx)
}

// ChangesSince implements Store.
func (f *FaultyStore) ChangesSince(ctx context.Context, since uint64, max int) ([]Change, bool, error) {
	if err := f.fault(); err != nil {
		return nil, false, err
	}
	return f.Store.ChangesSince(ctx, since, max)
}

// Ping implements Store.
func (f *FaultyStore) Ping(ctx context.Context) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// Restore implements Store.
func (f *FaultyStore) Restore(ctx context.Context, expect string, r RestoreRequest) (bool, error) {
	if err := f.fault(); err != nil {
		return false, err
	}
	return f.Store.Restore(ctx, expect, r)
}
