// Package scenarios defines Meridian's simulation scenarios: their schema,
// the built-in scenarios (the *.yaml files of this directory, embedded into
// the binary), strict parsing with file:line errors, and Generate, which
// builds random scenarios for swarm testing.
//
// A scenario is a YAML file: a topology of regions and gateways, the
// services registered in them, lookup traffic, a timeline of faults and
// the expectations the run must meet. `meridian sim run FILE --seed N` runs
// one; the same file, seed and binary give a byte-identical event log.
//
//	# my-scenario.yaml
//	name: my-scenario
//	description: eu-west loses its web instances for 5m
//	duration: 15m                 # simulated time (required)
//	settle: 2m                    # quiet time at the end before "nothing lost" is checked
//	topology:
//	  gossip_profile: lan         # wan, lan (default) or local
//	  regions:
//	    - {name: us-east, gateways: 2, zones: [a, b]}
//	    - {name: eu-west}         # gateways 1, zones [a]
//	  network:
//	    latency: 40ms             # one-way, between regions
//	    links:
//	      - {from: us-east, to: eu-west, latency: 35ms}
//	services:
//	  - {name: web, instances: 4, check: http, interval: 5s}
//	traffic:
//	  - {from: eu-west, service: web, rate: 20, policy: {mode: ordered, regions: [us-east]}}
//	timeline:
//	  - {at: 3m, kind: instances_fail, region: eu-west, service: web, fraction: 1, for: 5m}
//	expect:
//	  - {metric: availability, region: eu-west, min: 0.99}
//	  - {metric: failover_time, region: eu-west, max_duration: 15s}
//
// # Top level
//
//   - name: the scenario's name (default: the file name without .yaml);
//     lowercase letters, digits, '-' and '_'.
//   - description: one line, shown by `meridian sim list` and in reports.
//   - start: simulated wall-clock time of t=0, RFC 3339 (default
//     2026-01-01T00:00:00Z); stamps the event log and trace spans.
//   - duration (required): simulated time of the run, > 0, at most 24h.
//   - settle: quiet time at the end of the run after which acknowledged
//     registrations must be visible everywhere (default 2m, < duration).
//
// # topology
//
//   - gossip_profile: wan, lan or local (default lan): the membership
//     model follows that Serf/memberlist profile's timing.
//   - anti_entropy: federation anti-entropy interval (default: the
//     federation core's default).
//   - change_log: changes each region's store keeps in its change log
//     (default 10000, at most 1000000); a replica further behind gets a
//     snapshot instead of a delta.
//   - store: memory (default: the in-memory twin) or redis (the production
//     Redis store, Lua scripts included, over an in-process Redis; the
//     meridian binary provides it).
//   - regions (at least one): name (required, unique), gateways (default 1,
//     at most 16; they are named "<region>-<n>", n from 1), zones (default
//     [a]; instances are spread over them round robin).
//   - network: latency (default 40ms one-way between regions), jitter
//     (default 0), loss (in [0, 1), default 0), intra (latency inside a
//     region, default 1ms) and links: per pair overrides {from, to,
//     latency, jitter, loss, one_way}.
//
// # services
//
// Each: name (required, unique), regions (default: every region), instances
// per region (default 3), check: http (probed by the owning gateway,
// default) or ttl (heartbeats), interval (probe interval or TTL, default
// 10s), failures_before_critical and success_before_passing (flap damping,
// default 1 each), deregister_critical_after (0: never).
//
// # traffic
//
// Each: from (required region), zone (default: the region's first zone),
// service (required), rate (lookups per simulated second, default 10, at
// most 10000), picker (round_robin, weighted, p2c (default) or hash) and
// policy: {mode: local (default) | ordered | nearest, regions (for ordered),
// nearest_n (default 2), overprovisioning (default 1.4), panic_threshold
// (default 0.5), staleness_bound (default 30s), zone_preference (default
// true)} — the failover package's Policy.
//
// # timeline
//
// Each entry has at (required, within the run) and kind (required); a kind
// uses only the fields listed for it, and setting any other is an error.
// for, where allowed, ends the fault after that long (at + for must end
// within the run).
//
//   - partition: groups of regions that cannot talk to each other
//     (regions not listed form one more group); for.
//   - cut: packets from -> to are dropped (one way); for.
//   - degrade: the from <-> to link gains latency and/or loss; for.
//   - heal: every partition, cut and degraded link ends.
//   - gateway_crash: gateway ("us-east-1") or region (all its gateways)
//     stops without leaving; for.
//   - gateway_restart: gateway or region comes back.
//   - rolling_restart: every gateway of region (all regions when empty)
//     restarts one at a time, every apart, each down for down (both
//     required, >= 100ms).
//   - store_down: region's store rejects every operation; for.
//   - store_slow: region's store answers after latency (required); for.
//   - store_up: region's store recovers.
//   - store_wipe: region's store loses all its data at once, as a Redis
//     without persistence restarting would (the gateways restore it).
//   - store_flaky: region's store connection resets mid-write: every
//     write's outcome is unknown to its caller (alternately applied and
//     not); reads pass; for.
//   - instances_fail, instances_flap, instances_slow: count or fraction
//     (one of them, required) of service's instances in region stop
//     answering, alternate down/up every period (required, >= 100ms), or
//     answer after latency (required); for.
//   - instances_heal: they answer again (count or fraction; default all).
//   - register_storm: count (required) new instances of service register in
//     region, spread over over.
//   - register_invalid: count (required) misconfigured clients register
//     instances of service in region with port 0, spread over over; each
//     must be refused (invariant invalid_refused).
//   - deregister: count (required) instances of service in region
//     deregister; with for, the same instances register again after it.
//   - peer_refused: from's gateways refuse to's gateways as sources of
//     to's catalog, as the per-region peer check (certificate naming
//     another region) does: their fetches fail; for.
//   - probe_blocked: gateway's (required, of region) probes of count or
//     fraction of service's instances in region time out while the other
//     gateways' probes pass: the region's gateways disagree on the check;
//     for.
//   - redeploy: count (required) redeploys of service's instances in
//     region, spread over over, taking the registered instances in turn:
//     the new process registers the same id on the next port, and the old
//     one stops once that is acknowledged (invariant registration_kept: no
//     health write based on the old record replaces the new registration).
//
// # expect
//
// Each bounds one metric, for one region and/or service when given:
// availability and dead_share (shares in [0, 1]), lookups, sync_bytes,
// sync_failed (federation fetches lost, unanswered, answered too late or
// with an error), status_writes (health status writes that reached the
// store: the bound that keeps two gateways that disagree on a check from
// rewriting its status in a loop), unreachable_sent, snapshot_syncs
// (fetches since a version answered with a snapshot: gap recovery),
// stale_demoted (lookups routed while an allowed remote region was stale
// past the bound), peer_refused (fetches refused by the peer check),
// deregistered and remote_share (share of lookups answered by another
// region than the caller's) take min and/or max;
// failover_time, convergence_p50 and convergence_p99 are times and take
// max_duration. A run fails when a bound does not hold or an invariant of
// the simulator is violated.
//
// An expectation over an empty population fails as "not measured":
// failover_time with no local outage, convergence_* with no registration
// that converged, availability and dead_share with no lookup. Say
// allow_empty: true on it when that is expected (the bound then applies
// only when something was measured).
//
// # Errors
//
// Parse is strict: unknown keys, wrong types, unknown regions, services,
// gateways, fault kinds or metrics, values out of range and fields that do
// not apply to a fault kind are all errors, reported together as
// "file.yaml:LINE: field.path: message", for example
//
//	scenarios/x.yaml:23: timeline[2].region: unknown region "us-wset" (known: us-east, eu-west)
package scenarios
