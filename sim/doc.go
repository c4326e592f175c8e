// Package sim is Meridian's deterministic simulator. It runs a scenario
// (package scenarios) against the real cores — region.Catalog, region.Cache
// and region.Health, federation.Core, failover.Route and the failover
// pickers — on one goroutine, with a virtual clock, an event queue ordered
// by (time, sequence) and random streams derived from one seed, so that the
// same binary, scenario and seed give a byte-identical event log and
// summary.
//
// It runs the production drivers too, not copies: each simulated gateway
// drives its cache follower (region.Cache.Start), federation.Federator,
// federation.Publisher, federation.Shards, region.Registrar and
// region.HealthRunner (with its region.StatusWriter) on gwRuntime, an
// rt.Runtime over the event queue whose tasks die with the gateway's
// incarnation. Fetches go through a simulated federation.SyncTransport over
// the simulated network (gateway.Fetch), probes through a simulated
// region.ProbeTransport over the simulated instances (gateway.Probe),
// replicas through a simulated federation.ReplicaStore. An instance's TTL
// heartbeats go to one gateway of its region, which routes them as the
// heartbeat handler does (region.HeartbeatRoute: take it, or forward it
// once to the check's owner) into HealthRunner.Heartbeat.
//
// The simulated world: a network of regions (latency per pair with jitter
// and loss, partitions in any grouping, one-way cuts, degraded links); a
// membership model of Serf/memberlist (package sim/gossip: failure
// detection, gossip spread, rejoin); one region.MemStore per region with
// injectable faults (down, slow); gateways that crash, restart and leave;
// instances that fail, flap, slow down, register in storms and deregister;
// and traffic: lookups per region and service, routed by the serving
// gateway and picked by a picker, each judged against the ground truth.
//
// Invariants are checked as the run goes (versions never go backwards; no
// dead or deregistered instance served past the staleness bound from a view
// that does not say it is stale; no traffic to an unreachable region while
// a reachable healthy one exists, outside panic) and at the end (after
// healing and settling, nothing acknowledged is lost; and the availability
// oracle of oracles.go: over steady stretches, a stream with a sure
// allowed region gets under 1% dead answers).
//
// The package never reads the wall clock, sleeps, starts goroutines or
// touches the network; Run returns when the simulated time is over.
package sim
