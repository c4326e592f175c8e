// Package serfmember is the Serf adapter of federation.Membership: the
// Serf agent with its tags (region, HTTP address, catalog version, the
// latter through federation.Publisher), the gossip keyring, and in-memory
// and fault-injecting memberlist transports for tests.
package serfmember
