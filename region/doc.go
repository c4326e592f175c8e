// Package region holds one region's service registry: the instance model and
// its validation, the Catalog state machine, the Store interface with a Redis
// implementation and an in-memory twin, the Cache that serves reads from
// memory while following the Store's change log, and the health-check state
// machine.
//
// The deciding parts (Catalog, Health) are pure: they never read the clock,
// sleep, start goroutines or do I/O. Time comes in as an argument and
// decisions come out as returned values. The drivers (Cache.Run,
// HealthRunner, RedisStore) own clocks, sockets and Redis. RedisStore
// writes through a group commit: concurrent writes share one script call
// per round trip, each keeping its own result (groupcommit.go).
package region
