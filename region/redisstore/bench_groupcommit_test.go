package redisstore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

// BenchmarkStorePutConcurrent puts new instances from 32 goroutines
// straight into a RedisStore over the embedded miniredis (no HTTP), to
// show what the group commit itself does.
func BenchmarkStorePutConcurrent(b *testing.B) {
	m := miniredis.RunT(b)
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + m.Addr() + "/0", Region: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				in := storetest.TestInstance("svc-"+strconv.FormatInt(i%100, 10), "i-"+strconv.FormatInt(i, 10), 1)
				if _, err := s.Put(context.Background(), in, region.Cond{WriteID: "w-" + strconv.FormatInt(i, 10)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	trips, writes := s.CommitStats()
	b.ReportMetric(float64(writes)/float64(max(trips, 1)), "writes/roundtrip")
}
