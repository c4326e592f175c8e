package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ReplicaStore persists replicas locally, so a gateway that restarts during
// a partition still serves the other regions.
type ReplicaStore interface {
	Save(ctx context.Context, s ReplicaSnapshot) error
	Load(ctx context.Context) ([]ReplicaSnapshot, error)
	Delete(ctx context.Context, regionName string) error
}

// RedisReplicaStore keeps replicas in the local region's Redis, in the hash
// meridian:{local}:replicas (field: remote region, value: JSON), in the
// local region's hash slot.
type RedisReplicaStore struct {
	c   redis.UniversalClient
	key string
}

var _ ReplicaStore = (*RedisReplicaStore)(nil)

// NewRedisReplicaStore returns a store for the replicas held by localRegion.
func NewRedisReplicaStore(c redis.UniversalClient, localRegion string) *RedisReplicaStore {
	return &RedisReplicaStore{c: c, key: "meridian:{" + localRegion + "}:replicas"}
}

// Save implements ReplicaStore.
func (s *RedisReplicaStore) Save(ctx context.Context, r ReplicaSnapshot) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.c.HSet(ctx, s.key, r.Region, b).Err(); err != nil {
		return fmt.Errorf("saving replica of %s: %w", r.Region, err)
	}
	return nil
}

// Load implements ReplicaStore.
func (s *RedisReplicaStore) Load(ctx context.Context) ([]ReplicaSnapshot, error) {
	m, err := s.c.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("loading replicas: %w", err)
	}
	out := make([]ReplicaSnapshot, 0, len(m))
	for name, v := range m {
		var r ReplicaSnapshot
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("decoding replica of %s: %w", name, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, nil
}

// Delete implements ReplicaStore.
func (s *RedisReplicaStore) Delete(ctx context.Context, regionName string) error {
	return s.c.HDel(ctx, s.key, regionName).Err()
}

// MemReplicaStore is the in-memory twin of RedisReplicaStore.
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
