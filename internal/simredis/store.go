package simredis

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/redisstore"
)

// Store is one region's production RedisStore over its own in-process
// Redis. The simulator calls it from one goroutine and waits for each
// answer, so the store's group commit sends one write per round trip and
// every answer depends only on the calls made: runs stay deterministic.
//
// One difference from production, for determinism: a store's epoch (a
// random id the batch script creates with the first write of each life
// of the store) is set beforehand, to "redis-<region>-<life>", whenever
// the store has none, so that the same run gives the same epochs.
type Store struct {
	*redisstore.RedisStore
	srv      *miniredis.Miniredis
	c        *redis.Client
	region   string
	epochKey string
	life     int // Wipes so far
}

var _ region.Store = (*Store)(nil)

// timeout bounds one command. The simulator waits for every answer; a
// timeout would make a run differ from the next, so it is long.
const timeout = time.Minute

// New starts an in-process Redis and opens the region's RedisStore on it
// with a change log of logMax (region.DefaultLogMax when 0).
func New(regionName string, logMax int) (*Store, error) {
	srv, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("starting an in-process redis: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: timeout, ReadTimeout: timeout,
		WriteTimeout: timeout, MaxRetries: -1, PoolSize: 2})
	rs := redisstore.NewRedisStoreClient(c, regionName, logMax)
	rs.SetCommitOptions(redisstore.CommitOptions{Timeout: timeout})
	return &Store{RedisStore: rs, srv: srv, c: c, region: regionName,
		epochKey: "meridian:{" + regionName + "}:epoch"}, nil
}

// seedEpoch gives a store without an epoch its deterministic one.
func (s *Store) seedEpoch(ctx context.Context) error {
	err := s.c.HSetNX(ctx, s.epochKey, "id", fmt.Sprintf("redis-%s-%d", s.region, s.life)).Err()
	if err != nil {
		return fmt.Errorf("redis epoch of region %s: %w", s.region, err)
	}
	return nil
}

// Put implements region.Store.
func (s *Store) Put(ctx context.Context, in region.Instance, c region.Cond) (region.Change, error) {
	if err := s.seedEpoch(ctx); err != nil {
		return region.Change{}, err
	}
	return s.RedisStore.Put(ctx, in, c)
}

// Delete implements region.Store.
func (s *Store) Delete(ctx context.Context, k region.Key, c region.Cond) (region.Change, error) {
	if err := s.seedEpoch(ctx); err != nil {
		return region.Change{}, err
	}
	return s.RedisStore.Delete(ctx, k, c)
}

// Wipe empties the Redis, as a Redis without persistence that restarted:
// catalog, version, epoch, change log and write results are gone.
func (s *Store) Wipe() {
	s.srv.FlushAll()
	s.life++
}

// Close stops the store and its Redis.
func (s *Store) Close() error {
	err := s.RedisStore.Close()
	s.srv.Close()
	return err
}
