// Package e2e holds opt-in end-to-end tests that need outside programs.
//
// jaeger_test.go sends a live gateway's and a simulation's traces to a real
// Jaeger and reads them back through Jaeger's /api/v3 query API. Run it
// with `make e2e-jaeger`, which builds Jaeger (tools/jaeger), starts it on
// free 127.0.0.1 ports and sets MERIDIAN_E2E_JAEGER=1,
// MERIDIAN_JAEGER_OTLP_HTTP and MERIDIAN_JAEGER_QUERY for the test.
package e2e
