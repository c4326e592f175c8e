// Package redisreplica keeps a gateway's replicas of other regions in its
// region's Redis (federation.ReplicaStore), so a restarted gateway serves
// them before its first sync.
package redisreplica

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/federation"
)

// Store keeps replicas in the local region's Redis, in the hash
// meridian:{local}:replicas (field: remote region, value: JSON), in the
// local region's hash slot.
type Store struct {
	c   redis.UniversalClient
	key string
}

var _ federation.ReplicaStore = (*Store)(nil)

// NewStore returns a store for the replicas held by localRegion.
func New(c redis.UniversalClient, localRegion string) *Store {
	return &Store{c: c, key: "meridian:{" + localRegion + "}:replicas"}
}

// Save implements ReplicaStore.
func (s *Store) Save(ctx context.Context, r federation.ReplicaSnapshot) error {
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
func (s *Store) Load(ctx context.Context) ([]federation.ReplicaSnapshot, error) {
	m, err := s.c.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("loading replicas: %w", err)
	}
	out := make([]federation.ReplicaSnapshot, 0, len(m))
	for name, v := range m {
		var r federation.ReplicaSnapshot
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("decoding replica of %s: %w", name, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, nil
}

// Delete implements ReplicaStore.
func (s *Store) Delete(ctx context.Context, regionName string) error {
	return s.c.HDel(ctx, s.key, regionName).Err()
}
