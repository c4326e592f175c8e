// Package gateway is Meridian's HTTP API (v1): registration, deregistration,
// heartbeats and lookups of one region's services, the gateway's own health,
// and Prometheus metrics. It wires the region package's Store, Cache and
// HealthRunner together; it decides nothing itself.
//
// It is also where tracing and metrics live (telemetry.go, metrics.go): an
// OpenTelemetry server span per request named by route, the routing
// decision as attributes of lookup, pick and proxy spans, trace context
// passed on to proxied backends and other gateways, and OpenTelemetry
// metrics served on /metrics. The deciding cores (region.Health,
// federation.Core, failover.Route) stay free of it.
//
// GET / and /ui/ serve the status page (ui.go, files in ui/), the one
// answer that is not JSON; it reads the JSON API, including
// /v1/decisions, the ring of recent routing decisions (decisions.go).
//
// Every other response is JSON. Errors are {"error": "...", "field": "..."} with
// 400 (bad input, naming the field), 404 (unknown instance or route), 405
// (wrong method, with Allow), 413 (body over 64 KiB) or 503 with Retry-After
// (the store cannot take a write; nothing was acknowledged).
package gateway
