// Package observability sets up what operators read: structured logging
// (log/slog) today; OpenTelemetry traces and metrics build on it.
package observability
