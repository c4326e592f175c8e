//go:build tools

// Package tools pins the Jaeger all-in-one binary (v2, built on the
// OpenTelemetry collector) in its own module, so its older OpenTelemetry
// versions never reach Meridian's go.mod. Build it with `make jaeger` or
// `bash tools/jaeger/build.sh`.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
