// Package redisstore is the Redis adapter of region.Store: a region's
// catalog, version and change log in Redis (standalone, Sentinel or
// Cluster through go-redis's UniversalClient), applied by Lua scripts,
// with pub/sub notifications and OpenTelemetry instrumentation of the
// commands. The deciding code in package region never imports it.
package redisstore
