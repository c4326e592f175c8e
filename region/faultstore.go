package region

import (
	"context"
	"sync"
)

// FaultyStore wraps a Store and fails its calls on demand, to test what
// sits on top of a store that cannot be reached. Notifications pass through.
type FaultyStore struct {
	Store
	mu  sync.Mutex
	err error
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
	return f.Store.Put(ctx, in, c)
}

// Delete implements Store.
func (f *FaultyStore) Delete(ctx context.Context, k Key, c Cond) (Change, error) {
	if err := f.fault(); err != nil {
		return Change{}, err
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
