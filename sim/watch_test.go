package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// TestPushPathConvergesInOneRoundTrip: with the push path, a registration
// acknowledged in one region is in every other region's gateways within
// one round trip of the slowest link + 50ms (wan-propagation: one-way
// 35-110ms, 5ms jitter), and never faster than the fastest one-way
// latency (the answer has to travel). Several seeds.
func TestPushPathConvergesInOneRoundTrip(t *testing.T) {
	const (
		slowestRTT = 2 * (110*time.Millisecond + 5*time.Millisecond)
		fastestWay = 35 * time.Millisecond
		bound      = slowestRTT + 50*time.Millisecond
	)
	for seed := uint64(1); seed <= 3; seed++ {
		sc, err := scenarios.Builtin("wan-propagation")
		if err != nil {
			t.Fatal(err)
		}
		r, sum := runOK(t, sc, Options{Seed: seed})
		m := r.Metrics
		if len(m.Convergence) != 60 || m.NotConverged != 0 {
			t.Fatalf("seed %d: %d registrations converged, %d not; want 60, 0\n%s", seed, len(m.Convergence), m.NotConverged, sum)
		}
		if m.Watches == 0 {
			t.Fatalf("seed %d: no watch answered\n%s", seed, sum)
		}
		lo, hi := m.Convergence[0], m.Convergence[len(m.Convergence)-1]
		if hi > bound || lo < fastestWay {
			t.Errorf("seed %d: convergence from %s to %s, want within [%s, %s]", seed, lo, hi, fastestWay, bound)
		}
		t.Logf("seed %d: convergence p50 %s p99 %s max %s (bound %s), %d watch answers, %d syncs",
			seed, m.ConvergenceP50, m.ConvergenceP99, hi, bound, m.Watches, m.Syncs)
	}
}

// TestWatchToCrashedGatewayFailsFast: when a watched gateway's process
// crashes, its host resets the connection, so the watches it held fail
// one one-way latency later (gateway-crash-restart: us-east-1 crashes at
// 3m, eu-west is 40ms away) and move to another gateway, rather than
// hanging until their timeout; registrations made while it is down still
// arrive by the push path.
func TestWatchToCrashedGatewayFailsFast(t *testing.T) {
	sc, err := scenarios.Builtin("gateway-crash-restart")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, sum := runOK(t, sc, Options{Seed: 1, EventLog: &log})
	var resets []string
	sc2 := bufio.NewScanner(&log)
	sc2.Buffer(make([]byte, 1<<20), 1<<20)
	for sc2.Scan() {
		var ev struct {
			T     string `json:"t"`
			Kind  string `json:"kind"`
			From  string `json:"from"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc2.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind == "watch" && strings.Contains(ev.Error, "connection reset") {
			if ev.From != "us-east-1" || ev.T != "3m0.04s" {
				t.Errorf("a watch reset: %+v, want one on us-east-1 at 3m0.04s", ev)
			}
			resets = append(resets, ev.T)
		}
	}
	if len(resets) == 0 {
		t.Fatalf("no watch failed when us-east-1 crashed\n%s", sum)
	}
	if r.Metrics.ConvergenceP99 > 2*40*time.Millisecond+50*time.Millisecond {
		t.Errorf("convergence p99 %s with a gateway down, want within one round trip + 50ms", r.Metrics.ConvergenceP99)
	}
}
