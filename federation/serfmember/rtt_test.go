package serfmember

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// RTT answers what Serf's own coordinates say (this node's current
// coordinate against the peer's cached one) as the coordinates move, and
// a repeated question costs no allocation.
func TestSerfRTTFollowsCoordinates(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	log, _ := testLogger(t, slog.LevelInfo)
	seed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := startNode(t, SerfConfig{NodeName: "gw-a", Region: "us-east", HTTPAddr: "127.0.0.1:8701",
		BindAddr: seed, Profile: federation.ProfileLocal, Logger: log})
	defer a.stop()
	b := startNode(t, SerfConfig{NodeName: "gw-b", Region: "eu-west", HTTPAddr: "127.0.0.1:8702",
		BindAddr: "127.0.0.1:0", Profile: federation.ProfileLocal, Join: []string{seed}, Logger: log})
	defer b.stop()
	waitFor(t, 5*time.Second, "an RTT estimate", func() bool { _, ok := a.RTT("gw-b"); return ok })

	// Serf's answer, read the way RTT used to: GetCoordinate (a copy of
	// this node's current coordinate) against the peer's cached one.
	serfSays := func() (time.Duration, bool) {
		me, err := a.serf.GetCoordinate()
		other, ok := a.serf.GetCachedCoordinate("gw-b")
		if err != nil || !ok {
			t.Fatalf("coordinates: %v %v", err, ok)
		}
		return me.DistanceTo(other), true
	}
	seen := map[time.Duration]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		got, ok := a.RTT("gw-b")
		want, _ := serfSays()
		again, _ := a.RTT("gw-b")
		if !ok {
			t.Fatal("RTT of gw-b stopped being known")
		}
		// A coordinate update may land between the readings; two RTT
		// calls that agree with each other must agree with Serf.
		if got == again && got != want {
			if w2, _ := serfSays(); w2 == want {
				t.Fatalf("RTT(gw-b) = %v, Serf's coordinates say %v", got, want)
			}
		}
		seen[got] = true
		time.Sleep(50 * time.Millisecond)
	}
	if len(seen) < 2 {
		t.Errorf("RTT(gw-b) took %d value(s) in 3s of probing, want it to follow the coordinates: %v", len(seen), seen)
	}
	if n := testing.AllocsPerRun(100, func() { a.RTT("gw-b") }); n > 0.1 {
		t.Errorf("RTT of a known node: %v allocations, want none while the coordinates stay", n)
	}
	if _, ok := a.RTT("nobody"); ok {
		t.Error("RTT of an unknown node is ok")
	}
}
