package region

import (
	"context"
	"fmt"
	"sync"
)

// MemStore is the in-memory twin of RedisStore, with the same semantics:
// atomic changes, a version that grows by one per change, a bounded change
// log and notifications. It is safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	cat    *Catalog
	log    []Change // oldest first, at most logMax
	logMax int
	subs   map[chan uint64]struct{}
	// writes remembers the results of writes with a Cond.WriteID, the
	// newest memWrites of them (RedisStore keeps them WriteIDTTL instead).
	writes     map[string]memWrite
	writeOrder []string
	// epoch is the store's epoch ("" until the first write), restoredFrom
	// the epoch a restore wrote back; life counts Wipes, to name epochs.
	epoch, restoredFrom string
	life                int
}

// Wipe empties the store as a Redis without persistence restarting would:
// catalog, version, epoch, change log and write results are gone.
func (s *MemStore) Wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cat, s.log, s.writes, s.writeOrder = NewCatalog(), nil, nil, nil
	s.epoch, s.restoredFrom = "", ""
	s.life++
}

type memWrite struct {
	ch  Change
	err error
}

// memWrites bounds how many write results a MemStore remembers.
const memWrites = 10000

// idempotent runs apply once per c.WriteID (every time without one). The
// caller holds s.mu.
func (s *MemStore) idempotent(c Cond, apply func() (Change, error)) (Change, error) {
	if c.WriteID == "" {
		return apply()
	}
	if err := ValidateWriteID(c.WriteID); err != nil {
		return Change{}, err
	}
	if w, ok := s.writes[c.WriteID]; ok {
		return w.ch, w.err
	}
	ch, err := apply()
	if s.writes == nil {
		s.writes = map[string]memWrite{}
	}
	if len(s.writeOrder) >= memWrites {
		delete(s.writes, s.writeOrder[0])
		s.writeOrder = s.writeOrder[1:]
	}
	s.writes[c.WriteID] = memWrite{ch, err}
	s.writeOrder = append(s.writeOrder, c.WriteID)
	return ch, err
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store keeping at most logMax changes
// (DefaultLogMax when logMax <= 0).
func NewMemStore(logMax int) *MemStore {
	if logMax <= 0 {
		logMax = DefaultLogMax
	}
	return &MemStore{cat: NewCatalog(), logMax: logMax, subs: map[chan uint64]struct{}{}}
}

func (s *MemStore) check(k Key, c Cond) (*Instance, error) {
	cur, ok := s.cat.lookup(k)
	if (c.MustExist || c.IfIndex != 0) && !ok {
		return nil, ErrNotFound
	}
	if c.IfIndex != 0 && cur.ModifyIndex != c.IfIndex {
		return nil, ErrConflict
	}
	return cur, nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, in Instance, c Cond) (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idempotent(c, func() (Change, error) { return s.put(in, c) })
}

func (s *MemStore) put(in Instance, c Cond) (Change, error) {
	cur, err := s.check(in.Key(), c)
	if err != nil {
		return Change{}, err
	}
	if cur != nil {
		in.RegisteredAt = cur.RegisteredAt
	}
	in.ModifyIndex = s.cat.version + 1
	return s.commit(Change{Version: in.ModifyIndex, Op: OpPut, Service: in.Service, ID: in.ID, Instance: &in}), nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, k Key, c Cond) (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idempotent(c, func() (Change, error) { return s.delete(k, c) })
}

func (s *MemStore) delete(k Key, c Cond) (Change, error) {
	c.MustExist = true
	if _, err := s.check(k, c); err != nil {
		return Change{}, err
	}
	return s.commit(Change{Version: s.cat.version + 1, Op: OpDelete, Service: k.Service, ID: k.ID}), nil
}

func (s *MemStore) commit(ch Change) Change {
	if s.epoch == "" {
		s.epoch = fmt.Sprintf("mem%d", s.life)
	}
	ch.Epoch = s.epoch
	if _, err := s.cat.Apply(ch); err != nil {
		panic(err) // versions are assigned here; a gap is a bug
	}
	s.log = append(s.log, ch)
	// Trimmed in bulk, once it holds twice logMax, so that a put costs
	// O(1) amortized rather than a copy of the whole log; ChangesSince
	// reads only the last logMax.
	if len(s.log) > 2*s.logMax {
		s.log = append(s.log[:0:0], s.log[len(s.log)-s.logMax:]...)
	}
	for sub := range s.subs {
		select {
		case sub <- ch.Version:
		default: // a slow subscriber catches up periodically
		}
	}
	return ch
}

// Snapshot implements Store.
func (s *MemStore) Snapshot(context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.cat.Snapshot()
	snap.Epoch, snap.RestoredFrom = s.epoch, s.restoredFrom
	return snap, nil
}

// Restore implements Store.
func (s *MemStore) Restore(_ context.Context, expect string, r RestoreRequest) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != expect {
		return false, nil
	}
	v := max(s.cat.version+1, r.Version)
	snap := s.cat.Snapshot()
	snap.Instances = append(snap.Instances, MergeRestore(r.Instances, snap.Instances)...)
	for i := range snap.Instances {
		snap.Instances[i].ModifyIndex = v
	}
	snap.Version = v
	sortInstances(snap.Instances)
	s.cat.Load(snap)
	s.log = nil
	s.epoch, s.restoredFrom = r.Epoch, r.From
	for sub := range s.subs {
		select {
		case sub <- v:
		default:
		}
	}
	return true, nil
}

// ChangesSince implements Store.
func (s *MemStore) ChangesSince(_ context.Context, since uint64, max int) ([]Change, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if since > s.cat.version {
		return nil, false, nil // the store went back (data lost): reload
	}
	if since == s.cat.version {
		return nil, true, nil
	}
	log := s.log[len(s.log)-min(len(s.log), s.logMax):]
	if len(log) == 0 || log[0].Version > since+1 {
		return nil, false, nil
	}
	start := int(since + 1 - log[0].Version)
	end := len(log)
	if max > 0 && end-start > max {
		end = start + max
	}
	return append([]Change(nil), log[start:end]...), true, nil
}

// Subscribe implements Store.
func (s *MemStore) Subscribe(ctx context.Context) <-chan uint64 {
	ch := make(chan uint64, 16)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	return ch
}

// Ping implements Store.
func (s *MemStore) Ping(context.Context) error { return nil }

// Close implements Store.
func (s *MemStore) Close() error { return nil }
