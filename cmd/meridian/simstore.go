package main

import (
	"github.com/meridian-sd/meridian/internal/simredis"
	"github.com/meridian-sd/meridian/sim"
)

// The simulator imports no I/O; the binary gives it the production Redis
// store (over an in-process Redis) for scenarios with topology.store: redis.
func init() {
	sim.RegisterStore("redis", func(regionName string, logMax int) (sim.Store, error) {
		return simredis.New(regionName, logMax)
	})
}
