package federation

import (
	"context"
	"sort"
	"sync"
)

// ReplicaStore persists replicas locally, so a gateway that restarts during
// a partition still serves the other regions.
type ReplicaStore interface {
	Save(ctx context.Context, s ReplicaSnapshot) error
	Load(ctx context.Context) ([]ReplicaSnapshot, error)
	Delete(ctx context.Context, regionName string) error
}

// MemReplicaStore is the in-memory twin of redisreplica.Store.
type MemReplicaStore struct {
	mu sync.Mutex
	m  map[string]ReplicaSnapshot
}

var _ ReplicaStore = (*MemReplicaStore)(nil)

// NewMemReplicaStore returns an empty store.
func NewMemReplicaStore() *MemReplicaStore { return &MemReplicaStore{m: map[string]ReplicaSnapshot{}} }

// Save implements ReplicaStore.
func (s *MemReplicaStore) Save(_ context.Context, r ReplicaSnapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.Region] = r
	return nil
}

// Load implements ReplicaStore.
func (s *MemReplicaStore) Load(context.Context) ([]ReplicaSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ReplicaSnapshot, 0, len(s.m))
	for _, r := range s.m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, nil
}

// Delete implements ReplicaStore.
func (s *MemReplicaStore) Delete(_ context.Context, regionName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, regionName)
	return nil
}
