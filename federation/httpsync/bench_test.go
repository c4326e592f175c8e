package httpsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/federation"
)

func benchInstance(i int) region.Instance {
	return region.Instance{
		ID: fmt.Sprintf("web-%06d", i), Service: fmt.Sprintf("svc-%03d", i%500), Address: "10.1.2.3", Port: 8000 + i%1000,
		Zone: "eu-west-a", Tags: []string{"v2", "canary"}, Meta: map[string]string{"version": "1.4.2"},
		Weight: 100, Status: region.StatusPassing,
		RegisteredAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	}
}

// syncServer serves the sync endpoint for a region with n instances.
func syncServer(b *testing.B, n int) (*region.MemStore, *httptest.Server) {
	b.Helper()
	ctx := context.Background()
	store := region.NewMemStore(10000)
	for i := range n {
		if _, err := store.Put(ctx, benchInstance(i), region.Cond{}); err != nil {
			b.Fatal(err)
		}
	}
	src := federation.CatalogSource{Region: "eu-west", Store: store}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		ans, err := src.Answer(r.Context(), since)
		if err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		body, _ := json.Marshal(ans)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return store, srv
}

// BenchmarkDeltaSync fetches one change over HTTP from regions of growing
// size: time and bytes must not grow with the catalog.
func BenchmarkDeltaSync(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("catalog=%d", n), func(b *testing.B) {
			store, srv := syncServer(b, n)
			ch, _ := store.Put(context.Background(), benchInstance(n+1), region.Cond{})
			since := ch.Version - 1
			addr := srv.Listener.Addr().String()
			var bytes int
			for b.Loop() {
				res, err := Fetch(context.Background(), srv.Client(), addr, "eu-west", since)
				if err != nil || res.Full || len(res.Changes) != 1 {
					b.Fatalf("delta fetch: %+v %v", res, err)
				}
			}
			src := federation.CatalogSource{Region: "eu-west", Store: store}
			ans, _ := src.Answer(context.Background(), since)
			body, _ := json.Marshal(ans)
			bytes = len(body)
			b.ReportMetric(float64(bytes), "resp-bytes")
		})
	}
}

// BenchmarkFullSnapshot fetches a whole 100k-instance catalog.
func BenchmarkFullSnapshot(b *testing.B) {
	const n = 100_000
	store, srv := syncServer(b, n)
	addr := srv.Listener.Addr().String()
	for b.Loop() {
		res, err := Fetch(context.Background(), srv.Client(), addr, "eu-west", 0)
		if err != nil || !res.Full || res.Catalog.Len() != n {
			b.Fatalf("full fetch: %v", err)
		}
	}
	ans, _ := federation.CatalogSource{Region: "eu-west", Store: store}.Answer(context.Background(), 0)
	body, _ := json.Marshal(ans)
	b.ReportMetric(float64(len(body)), "resp-bytes")
	b.ReportMetric(float64(len(body))/n, "bytes/instance")
}

// BenchmarkReplicaMemory measures the heap a replica holds per instance,
// decoded from the wire as a sync does (target: at most 1 KiB).
func BenchmarkReplicaMemory(b *testing.B) {
	const n = 100_000
	ins := make([]region.Instance, n)
	for i := range ins {
		ins[i] = benchInstance(i)
	}
	body, err := json.Marshal(federation.FullResponse{Region: "eu-west", Version: n, Full: true, Instances: ins})
	if err != nil {
		b.Fatal(err)
	}
	ins = nil
	var perInstance float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var cr federation.CatalogAnswer
		if err := json.Unmarshal(body, &cr); err != nil {
			b.Fatal(err)
		}
		cat := region.NewCatalog()
		cat.Load(region.Snapshot{Version: cr.Version, Instances: cr.Instances})
		cr = federation.CatalogAnswer{}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perInstance = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(cat)
	}
	b.ReportMetric(perInstance, "heap-bytes/instance")
}
