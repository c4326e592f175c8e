package gateway

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region/redisstore"
)

// TestConcurrentRegistrationsGroupCommit: 32 clients register at once
// through one gateway on a real redis-server. Each acknowledgement must
// carry its own X-Meridian-Index (all distinct), the instance must be
// readable from the gateway as soon as it is acknowledged (read your
// writes, although the writes were committed in batches), a repeat with
// the same Idempotency-Key must answer the first index, and the writes
// must have gone to Redis in fewer round trips than writes.
func TestConcurrentRegistrationsGroupCommit(t *testing.T) {
	srv := redistest.Start(t)
	a := startAgent(t, AgentConfig{RedisURL: srv.URL(), Limits: Limits{WriteRate: -1}})
	base := "http://" + a.Addr()
	const writers, each = 32, 8
	type ack struct {
		id    string
		index uint64
	}
	acks := make(chan ack, writers*each)
	errs := make(chan error, writers)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	do := func(method, url, body, key string) (int, string, string, error) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			return 0, "", "", err
		}
		if key != "" {
			req.Header.Set(idempotencyHeader, key)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("X-Meridian-Index"), string(b), nil
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%02d-%d", w, i)
				url := base + "/v1/services/web/instances/" + id
				code, idx, body, err := do(http.MethodPut, url, `{"address":"10.0.0.5","port":8080}`, "key-"+id)
				if err != nil || code != http.StatusOK {
					errs <- fmt.Errorf("PUT %s: HTTP %d, %v; body %s", id, code, err, body)
					return
				}
				v, err := strconv.ParseUint(idx, 10, 64)
				if err != nil || v == 0 {
					errs <- fmt.Errorf("PUT %s: X-Meridian-Index %q", id, idx)
					return
				}
				code, _, body, err = do(http.MethodGet, url, "", "")
				if err != nil || code != http.StatusOK || !strings.Contains(body, `"modify_index":`+idx) {
					errs <- fmt.Errorf("GET %s right after its acknowledgement at index %s: HTTP %d, %v; body %s", id, idx, code, err, body)
					return
				}
				acks <- ack{id, v}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(acks)
	for err := range errs {
		t.Fatal(err)
	}
	var indexes []uint64
	first := map[string]uint64{}
	for a := range acks {
		indexes = append(indexes, a.index)
		first[a.id] = a.index
	}
	slices.Sort(indexes)
	if n := len(slices.Compact(slices.Clone(indexes))); n != writers*each {
		t.Fatalf("%d distinct indexes for %d registrations", n, writers*each)
	}
	// A repeat with the same key answers the first index, writing nothing.
	for _, id := range []string{"w00-0", "w31-7"} {
		code, idx, body, err := do(http.MethodPut, base+"/v1/services/web/instances/"+id, `{"address":"10.0.0.5","port":8080}`, "key-"+id)
		if err != nil || code != http.StatusOK || idx != strconv.FormatUint(first[id], 10) {
			t.Fatalf("repeat of %s: HTTP %d, index %s, %v; want the first index %d; body %s", id, code, idx, err, first[id], body)
		}
	}
	rs, ok := a.Store.(*redisstore.RedisStore)
	if !ok {
		t.Fatalf("the agent's store is %T, want *redisstore.RedisStore", a.Store)
	}
	trips, writes := rs.CommitStats()
	if trips >= writes {
		t.Fatalf("%d writes in %d round trips: not batched", writes, trips)
	}
	t.Logf("%d writes in %d round trips", writes, trips)
}
