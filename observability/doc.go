// Package observability sets up what operators read: structured logging
// (log/slog), OpenTelemetry traces and metrics for live processes (Setup),
// and deterministic traces for the simulator (NewSimTracing).
//
// Live processes export spans over OTLP (http/protobuf or grpc, as the
// standard OTEL_EXPORTER_OTLP_* variables or Config say) or to a trace file
// of OTLP JSON lines, and serve metrics in the Prometheus format; Jaeger
// reads OTLP directly (see the README's "Trace analysis in Jaeger").
//
// The simulator's spans carry simulated timestamps and ids drawn from the
// scenario seed, and are written synchronously in a fixed order, so the
// same seed and scenario give a byte-identical trace file.
package observability
