// Package simredis gives the simulator the production Redis store
// (region/redisstore, its Lua scripts included) over an in-process Redis
// (miniredis), so that a scenario with topology.store: redis runs the
// store's own code instead of the in-memory twin region.MemStore. It is an
// adapter: the simulator does no I/O and imports nothing of this; the
// meridian binary registers it (sim.RegisterStore).
package simredis
