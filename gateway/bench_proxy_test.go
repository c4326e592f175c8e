package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// BenchmarkProxyTail sends requests through /v1/proxy to five backends, one
// of them 200ms slower than the others, and reports the latency
// percentiles with p2c (peak EWMA) and with round robin. Run with
// -benchtime 1x: each iteration is 1,000 requests, 8 at a time.
func BenchmarkProxyTail(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	for _, lb := range []string{"round_robin", "p2c"} {
		b.Run("lb="+lb, func(b *testing.B) {
			store := region.NewMemStore(0)
			cache := region.NewCache(store, region.CacheOptions{Logger: log})
			cache.Sync(context.Background())
			health := region.NewHealthRunner(store, cache, region.HealthRunnerOptions{Logger: log})
			gw := httptest.NewServer(New(Config{Region: "us-east", Store: store, Cache: cache, Health: health, Logger: log}).Handler())
			defer gw.Close()
			for i := range 5 {
				delay := time.Millisecond
				if i == 0 {
					delay = 200 * time.Millisecond
				}
				be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(delay)
					io.WriteString(w, "ok")
				}))
				defer be.Close()
				host, port, _ := net.SplitHostPort(be.Listener.Addr().String())
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/services/api/instances/b%d", gw.URL, i),
					strings.NewReader(fmt.Sprintf(`{"address":%q,"port":%s}`, host, port)))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("registering backend %d: %v", i, err)
				}
				resp.Body.Close()
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			var all []time.Duration
			for b.Loop() {
				lat := make([]time.Duration, 1000)
				var wg sync.WaitGroup
				next := make(chan int)
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							req, _ := http.NewRequest("GET", gw.URL+"/v1/proxy/api/work", nil)
							req.Header.Set("X-Meridian-LB", lb)
							start := time.Now()
							resp, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							lat[i] = time.Since(start)
						}
					}()
				}
				for i := range 1000 {
					next <- i
				}
				close(next)
				wg.Wait()
				all = append(all, lat...)
			}
			slices.Sort(all)
			q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(0.999), "p99.9-ms")
		})
	}
}
