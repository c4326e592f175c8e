// Package redistest runs real redis-server processes on 127.0.0.1 for Go
// tests.
//
// Start gives a test its own standalone server with persistence on (an
// append-only file synced on every write), so Stop, Kill and Restart keep the
// data: a test can check that nothing acknowledged is lost across a crash.
// StartCluster gives a test a three-master Redis Cluster. FromEnv returns the
// shared server named by MERIDIAN_TEST_REDIS (set by scripts/test.sh) or, when
// that is unset, starts a private one.
//
// Every server listens on a free port, works in its own t.TempDir(), logs to
// redis.log there and is stopped by t.Cleanup. A test whose machine has no
// redis-server (or, for a cluster, no redis-cli) is skipped with a message
// that says how to install it.
//
// The server behind MERIDIAN_TEST_REDIS is shared by every test in every
// package of one `go test ./...` run, and packages run in parallel: tests that
// use FromEnv must keep their keys under a prefix of their own (KeyPrefix
// gives one) and must never FLUSHDB or FLUSHALL.
package redistest
