package sim

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/meridian-sd/meridian/region"
)

// Store is a region's store as the simulator drives it: the region.Store
// the production drivers use, and a way to lose all its data
// (store_wipe), as a Redis without persistence does when it restarts.
// region.MemStore is one; the binary may register others (RegisterStore),
// e.g. the production Redis store over an in-process Redis, so that a
// simulation runs the store's own code (its Lua scripts) rather than the
// in-memory twin. The simulator calls a Store from its one goroutine and
// waits for each answer; a Store must answer every call (a store fault is
// simulated around it, region.FaultyStore) and give the same answers for
// the same calls, so that runs stay deterministic.
type Store interface {
	region.Store
	Wipe()
}

var _ Store = (*region.MemStore)(nil)

// StoreFactory opens a region's store for one run: logMax is the change
// log's length (region.DefaultLogMax when 0).
type StoreFactory func(regionName string, logMax int) (Store, error)

// StoreMemory is the default store kind: region.MemStore.
const StoreMemory = "memory"

var (
	storesMu sync.Mutex
	stores   = map[string]StoreFactory{}
)

// RegisterStore makes a store kind available to scenarios
// (topology.store). The simulator's own packages register nothing but
// "memory": a store that does I/O lives in an adapter package and is
// registered by the binary (cmd/meridian), so that the simulator itself
// imports no I/O. Registering a kind again replaces it.
func RegisterStore(kind string, f StoreFactory) {
	storesMu.Lock()
	defer storesMu.Unlock()
	stores[kind] = f
}

// StoreKinds lists the store kinds this binary can simulate, sorted.
func StoreKinds() []string {
	storesMu.Lock()
	defer storesMu.Unlock()
	out := []string{StoreMemory}
	for k := range stores {
		if k != StoreMemory {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// openStore opens a region's store of the given kind ("" or "memory":
// region.MemStore).
func openStore(kind, regionName string, logMax int) (Store, error) {
	if kind == "" || kind == StoreMemory {
		return region.NewMemStore(logMax), nil
	}
	storesMu.Lock()
	f := stores[kind]
	storesMu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("topology.store: %q is not available in this build (have %v)", kind, StoreKinds())
	}
	s, err := f(regionName, logMax)
	if err != nil {
		return nil, fmt.Errorf("opening the %s store of region %s: %w", kind, regionName, err)
	}
	return s, nil
}

// closeStores releases the regions' stores (a Redis store's server and
// connections) at the end of a run.
func (w *world) closeStores() {
	for _, rs := range w.regions {
		if rs.mem != nil {
			_ = rs.mem.Close()
		}
	}
}

// truthStore checks the store's answers against what the simulated world
// knows it committed (ground truth, not the drivers' beliefs): a delta
// (ChangesSince that says ok) must hold every committed change after the
// version asked for, in order, with no gap. A store that answers one with
// a gap breaks its contract: every reader would either apply a catalog
// that misses a change or, as region.Cache does, ask again forever. The
// breach is an invariant violation (store_delta_complete) and the call
// fails, so that the run goes on and reports it.
type truthStore struct {
	Store
	w  *world
	rs *regionSim
}

// Put implements region.Store. While the region's store loses every
// write's reply (store_flaky), nobody tells the world of a write the store
// applied (its caller gets an unknown outcome), so it is recorded here, as
// the store committed it: the registry's truth (statuses, deregistrations,
// the commits replicas are judged by) is the store's, not the callers'.
func (s *truthStore) Put(ctx context.Context, in region.Instance, c region.Cond) (region.Change, error) {
	ch, err := s.Store.Put(ctx, in, c)
	if err == nil && s.rs.flaky {
		s.w.committed(s.rs, ch, true)
	}
	return ch, err
}

// Delete implements region.Store (see Put).
func (s *truthStore) Delete(ctx context.Context, k region.Key, c region.Cond) (region.Change, error) {
	ch, err := s.Store.Delete(ctx, k, c)
	if err == nil && s.rs.flaky {
		s.w.committed(s.rs, ch, true)
	}
	return ch, err
}

func (s *truthStore) ChangesSince(ctx context.Context, since uint64, max int) ([]region.Change, bool, error) {
	chs, ok, err := s.Store.ChangesSince(ctx, since, max)
	if err != nil || !ok || len(chs) == 0 {
		return chs, ok, err
	}
	want := since + 1
	for _, ch := range chs {
		if ch.Version != want {
			d := fmt.Sprintf("region %s: asked for changes since v%d, the store answered a delta starting %s: v%d is missing (the change log no longer reached back)",
				s.rs.name, since, fmtVersions(chs), want)
			s.w.m.violate(InvStoreDeltaComplete, d)
			return nil, false, fmt.Errorf("store answered a delta with a gap (v%d missing)", want)
		}
		want++
	}
	return chs, ok, err
}

func fmtVersions(chs []region.Change) string {
	if len(chs) == 1 {
		return fmt.Sprintf("[v%d]", chs[0].Version)
	}
	return fmt.Sprintf("[v%d..v%d]", chs[0].Version, chs[len(chs)-1].Version)
}
