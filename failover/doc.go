// Package failover decides where a lookup goes: locality first (same zone,
// then same region), ordered failover lists, nearest regions by Serf RTT,
// Envoy-style spillover between priorities, a panic threshold, and a
// staleness bound; and it picks one endpoint (round robin, weighted random,
// power-of-two-choices on EWMA latency, consistent hashing).
//
// Route is a pure function over a catalog view: no clock, no I/O, maps
// iterated in sorted order. Pickers keep small state and take their
// randomness from a seeded *rand.Rand.
package failover
