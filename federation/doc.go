// Package federation replicates region catalogs between gateways.
//
// Gateways of every region join one Serf WAN pool (Membership). Each
// gateway's Serf tags carry its region, HTTP address and its region's
// catalog version. The pure Core decides, from membership events, sync
// results and the time it is given, which region to fetch from which
// gateway and when; the driver (Federator) carries out its effects through
// a SyncTransport (GET /v1/federation/catalog?since=V) and keeps the
// replicas, which are read-only: a newer version replaces an older one,
// and a partition never wipes out what a region knows.
//
// The drivers (Federator, Publisher for the version tag, Shards for check
// ownership) are written once against the rt seam and run unchanged in
// production and in the simulator. The I/O adapters live in their own
// packages: federation/serfmember (Serf), federation/httpsync (the HTTP
// fetch client) and federation/redisreplica (replicas in Redis).
package federation
