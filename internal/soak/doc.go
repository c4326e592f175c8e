// Package soak is the load generator behind `make soak`: minutes of mixed
// traffic (lookups, blocking queries, registrations, heartbeats,
// deregistrations, proxy calls, unique-name picks, slow clients) against
// two real gateway processes of one region sharing one real redis-server,
// with a Redis restart and a gateway SIGKILL in the middle. It keeps a
// ledger of every write the gateways acknowledged, compares it with what
// the gateways hold at the end, samples each gateway's RSS and goroutines
// every minute, counts errors by kind, and fails when a bound is broken.
//
// Everything it starts listens on, and everything it dials is, 127.0.0.1.
// The command is internal/soak/run; scripts/soak.sh (make soak) builds the
// meridian binary and runs it.
package soak
