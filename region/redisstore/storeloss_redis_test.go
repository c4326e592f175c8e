package redisstore

import (
	"context"
	"testing"

	"github.com/meridian-sd/meridian/internal/redistest"

	"github.com/meridian-sd/meridian/region/storetest"
)

// TestRedisStoreRealLossContract runs the loss contract on a real
// redis-server without persistence, wiped by killing and restarting it.
func TestRedisStoreRealLossContract(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "no", "--save", ""))
	s, err := NewRedisStore(RedisOptions{URL: srv.URL(), Region: uniqueRegion()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.LossContract(t, s, func() {
		srv.Kill(t)
		srv.Restart(t)
		// The pool's connections died with the server: the first command
		// on each may fail once.
		for range 3 {
			if s.Ping(context.Background()) == nil {
				break
			}
		}
	})
}
