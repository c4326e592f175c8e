// Package rt is the runtime seam of Meridian's drivers: the one place where
// the glue around the deciding cores (health runner, cache follower,
// federator, version publisher, catalog watch, sync client) gets time and
// starts work.
//
// A driver never calls time.Now, time.AfterFunc, time.Sleep or `go`
// itself; it asks its Runtime. Production passes Real(): the wall clock,
// real timers and goroutines. The simulator passes its own implementation:
// a virtual clock and an event queue run on one goroutine, so that the same
// driver code runs deterministically (same seed, same event order).
//
// Drivers are written as callbacks, not loops that block: a Loop runs a
// step function when kicked or when its deadline passes, never two at a
// time. In the real runtime a blocked step only delays that one driver; in
// the simulated runtime every task must return without waiting on another
// task (blocking calls go to simulated stores and networks that answer
// synchronously or through a callback).
package rt
