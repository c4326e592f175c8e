package gateway

import "testing"

// skipShort skips t under go test -short (make test-short) and says why;
// make test runs it. Used for tests that start several gateways or
// processes, wait on gossip timers, or loop like a soak, and whose logic
// faster unit tests (or the simulator) also cover.
func skipShort(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: " + why)
	}
}
