// Package gateway is Meridian's HTTP API (v1): registration, deregistration,
// heartbeats and lookups of one region's services, the gateway's own health,
// and Prometheus metrics. It wires the region package's Store, Cache and
// HealthRunner together; it decides nothing itself.
//
// Every response is JSON. Errors are {"error": "...", "field": "..."} with
// 400 (bad input, naming the field), 404 (unknown instance or route), 405
// (wrong method, with Allow), 413 (body over 64 KiB) or 503 with Retry-After
// (the store cannot take a write; nothing was acknowledged).
package gateway
