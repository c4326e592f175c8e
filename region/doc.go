// Package region holds one region's service registry: the instance model and
// its validation, the Catalog state machine, the Store interface with an
// in-memory twin, the Cache that serves reads from memory while following
// the Store's change log, and the health-check state machine.
//
// The deciding parts (Catalog, Health) are pure: they never read the clock,
// sleep, start goroutines or do I/O. Time comes in as an argument and
// decisions come out as returned values. The drivers around them are
// written once against the rt seam (rt.Runtime: Now, AfterFunc, Go) and
// run in production on goroutines and in the simulator on its event
// queue: the cache follower (Cache.Start), HealthRunner (probes through a
// ProbeTransport), StatusWriter (health writes) and Registrar (the logic
// of the registration handlers). The I/O adapters live in their own
// packages: region/redisstore (the Store on Redis) and region/probe (HTTP
// and TCP probes); this package imports neither (internal/purity checks
// it with go list -deps). RedisStore writes through a group commit:
// concurrent writes share one script call per round trip, each keeping its
// own result (region/redisstore/groupcommit.go).
package region
