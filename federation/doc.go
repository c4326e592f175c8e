// Package federation replicates region catalogs between gateways.
//
// Gateways of every region join one Serf WAN pool (Membership). Each
// gateway's Serf tags carry its region, HTTP address and its region's
// catalog version. The pure Core decides, from membership events, sync
// results and the time it is given, which region to fetch from which
// gateway and when; the driver (Federator) carries out its effects over HTTP
// (GET /v1/federation/catalog?since=V) and keeps the replicas, which are
// read-only: a newer version replaces an older one, and a partition never
// wipes out what a region knows.
package federation
