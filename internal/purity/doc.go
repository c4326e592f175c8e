// Package purity holds the test that keeps Meridian's deciding core free of
// I/O (DESIGN.md, "a core without I/O, two drivers"): core files may not
// import the network, Redis or Serf packages, read the clock, sleep or set
// timers, use the global math/rand source, or start goroutines. The list
// of core files, and the one of drivers that are excluded by design, is in
// purity_test.go; every file of region/ and federation/ must be on one of
// them. deps_test.go checks the same per package: go list -deps of every
// deciding package (acl, egress, failover, federation, region, rt,
// scenarios, sim) may not reach net, net/http, os/exec, Redis, Serf,
// memberlist or miniredis; the adapters live in region/redisstore,
// region/probe, federation/serfmember, federation/httpsync and
// federation/redisreplica. The package has no code of its own.
package purity
