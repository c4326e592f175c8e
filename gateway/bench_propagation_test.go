package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkPropagation measures the push path between two real gateways
// (real HTTP and real Serf over 127.0.0.1, the wan profile, embedded
// stores): each iteration registers an instance in region B and waits
// until region A's replica holds it. It reports, from "write acked in B"
// (the PUT's answer) to "visible in A's replica" (polled every 100µs):
//
//	p50-ms, p99-ms, max-ms   the propagation latency (goal: p99 <= 50ms)
//
// ns/op is the whole iteration (write plus propagation). It runs for
// -benchtime (b.Loop: the gateways start once); `make bench` passes
// BENCH_DURATION as -benchtime.
//
//	go test -run '^$' -bench 'BenchmarkPropagation$' ./gateway/
func BenchmarkPropagation(b *testing.B) {
	ra, rb := uniqueRegion("pa"), uniqueRegion("pb")
	a := startWatchNode(b, nil, ra, ra+"-1", "")
	nb := startWatchNode(b, func(c *AgentConfig) { c.Limits.WriteRate = -1 }, rb, rb+"-1", "", a.serfAddr())
	watching(b, a, nb)
	client := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		v := registerAt(b, client, nb, "web", fmt.Sprintf("p%d", i%32), 1+i)
		acked := time.Now()
		el, ok := visibleAfter(a, rb, v, acked, 5*time.Second)
		if !ok {
			b.Fatalf("v%d of %s not in %s's replica after %s", v, rb, ra, el)
		}
		lat = append(lat, el)
		i++
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
