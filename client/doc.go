// Package client is the Go client of a Meridian region gateway.
//
// It does three jobs for a service:
//
//   - Self-registration: Register puts an instance with a TTL check and
//     renews it with heartbeats every TTL/3 (±10% jitter), registering again
//     when a gateway answers that it no longer knows the instance; Close
//     deregisters.
//   - Client-side discovery: Lookup and Endpoints ask GET /v1/lookup once,
//     then keep the answer current with blocking queries in the background.
//     While no gateway answers, the last answer keeps being served and is
//     marked stale (LookupResult.Stale, Age).
//   - Client-side load balancing: Pick draws a priority level in proportion
//     to the gateway's shares and an endpoint within it with a picker of the
//     failover package (p2c by default), skipping endpoints whose circuit
//     breaker (github.com/sony/gobreaker/v2) is open. Do sends a request
//     through it and retries idempotent requests on another endpoint, with
//     full-jitter exponential backoff, as long as a retry budget allows.
//
// Requests to gateways go to the one that last answered; a connection error
// or a 5xx moves on to the next one in Config.Gateways.
//
// The deciding parts (retry budget, backoff) take time and randomness as
// arguments; the Client is their driver, with real time and the seeded
// Config.Rand.
package client
