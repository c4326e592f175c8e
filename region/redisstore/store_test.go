package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/region/storetest"
)

func newMiniredisStore(t *testing.T, logMax int) *RedisStore {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	s := NewRedisStoreClient(c, "us-east", logMax)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRedisStoreMiniredisContract(t *testing.T) {
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store { return newMiniredisStore(t, logMax) })
}

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		addrs   int
		master  string
		cluster bool
		wantErr bool
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: 1},
		{url: "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", addrs: 3, cluster: true},
		{url: "redis://127.0.0.1:7000?cluster=true", addrs: 1, cluster: true},
		{url: "redis://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", addrs: 2, master: "mymaster"},
		{url: "http://127.0.0.1:6379", wantErr: true},
		{url: "redis://127.0.0.1:6379?bogus=1", wantErr: true},
	} {
		o, err := ParseRedisURL(tc.url)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.url, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if len(o.Addrs) != tc.addrs || o.MasterName != tc.master || o.IsClusterMode != tc.cluster {
			t.Errorf("%s: got addrs %v master %q cluster %v; want %d addrs master %q cluster %v",
				tc.url, o.Addrs, o.MasterName, o.IsClusterMode, tc.addrs, tc.master, tc.cluster)
		}
		if o.DialTimeout != time.Second {
			t.Errorf("%s: dial timeout %v, want 1s default", tc.url, o.DialTimeout)
		}
	}
}

func TestRedisStoreMiniredisLossContract(t *testing.T) {
	s := newMiniredisStore(t, 0)
	storetest.LossContract(t, s, func() { s.Client().FlushDB(context.Background()) })
}
