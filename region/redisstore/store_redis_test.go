package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/internal/redistest"

	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/region/storetest"
)

// uniqueRegion gives each test its own keys on a shared server.
func uniqueRegion() string { return fmt.Sprintf("test-%08x", rand.Uint32()) }

// TestRedisStoreRealContract runs the Store contract against a real
// redis-server (MERIDIAN_TEST_REDIS, or one started for the test).
func TestRedisStoreRealContract(t *testing.T) {
	url := redistest.FromEnv(t)
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store {
		s, err := NewRedisStore(RedisOptions{URL: url, Region: uniqueRegion(), LogMax: logMax})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestRedisStoreClusterContract runs the Store contract against a real
// three-master Redis Cluster: every region's keys share one hash slot, so
// the Lua scripts and MULTI snapshots work there too.
func TestRedisStoreClusterContract(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	cl := redistest.StartCluster(t)
	addrs := cl.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	regions := 0
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store {
		regions++
		s, err := NewRedisStore(RedisOptions{URL: url, Region: fmt.Sprintf("cluster-%d-%s", regions, uniqueRegion()), LogMax: logMax})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Client().(*redis.ClusterClient); !ok {
			t.Fatalf("store client is %T, want *redis.ClusterClient", s.Client())
		}
		t.Cleanup(func() { s.Close() })
		return s
	})

	// Regions land on different masters: a cluster is really in use, not
	// one node answering everything. 20 regions all on one of 3 masters
	// would happen with probability 3^-19.
	ctx := context.Background()
	for i := range 20 {
		s, err := NewRedisStore(RedisOptions{URL: url, Region: fmt.Sprintf("spread-%d-%s", i, uniqueRegion())})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, storetest.TestInstance("web", "a", 80), region.Cond{}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	var mu sync.Mutex
	nodes := map[string]bool{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if err == nil && n > 0 {
			mu.Lock()
			nodes[m.Options().Addr] = true
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) < 2 {
		t.Fatalf("regions' keys landed on %d of 3 masters, want at least 2 (one slot per region, regions spread)", len(nodes))
	}
}

// TestRedisStoreSentinelContract runs the Store contract through Redis
// Sentinel: a real master and a real sentinel (redis-server --sentinel)
// that the store asks for the master's address.
func TestRedisStoreSentinelContract(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master and a sentinel")
	}
	master := redistest.Start(t)
	bin, ok := redistest.Binary()
	if !ok {
		t.Skip("redis-server not found")
	}
	port := freeLocalPort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\n", port, dir, master.Port())
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	url := fmt.Sprintf("redis://127.0.0.1:%d?master_name=mymaster", port)
	// Wait until the sentinel knows the master.
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(context.Background(), "mymaster").Result()
		if err == nil && len(addr) == 2 && addr[1] == fmt.Sprint(master.Port()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %d does not report the master: %v %v", port, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store {
		s, err := NewRedisStore(RedisOptions{URL: url, Region: uniqueRegion(), LogMax: logMax})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRedisStoreWriteStalled: Redis stalls longer than the read timeout.
// The write's error must say that its outcome is unknown (not that nothing
// was written), and repeating it with its write id, once Redis answers
// again, must leave exactly one change whichever way the first copy went.
func TestRedisStoreWriteStalled(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := NewRedisStore(RedisOptions{URL: srv.URL() + "?read_timeout=150ms&write_timeout=150ms", Region: uniqueRegion()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	_, err = s.Put(ctx, storetest.TestInstance("web", "a", 1), region.Cond{WriteID: "stall-1"})
	srv.Resume(t)
	if !errors.Is(err, region.ErrOutcomeUnknown) {
		t.Fatalf("write during a stall: got %v, want ErrOutcomeUnknown", err)
	}
	for i := range 2 {
		again, err := s.Put(ctx, storetest.TestInstance("web", "a", 1), region.Cond{WriteID: "stall-1"})
		if err != nil || again.Version != 1 {
			t.Fatalf("repeat %d with the write id: got %+v, %v; want v1", i, again, err)
		}
	}
	chs, _, err := s.ChangesSince(ctx, 0, 100)
	if err != nil || len(chs) != 1 {
		t.Fatalf("change log: %d entries (%v), want exactly 1", len(chs), err)
	}
	// A refused connection is known to have written nothing.
	srv.Stop(t)
	_, err = s.Put(ctx, storetest.TestInstance("web", "b", 1), region.Cond{WriteID: "down-1"})
	if err == nil || errors.Is(err, region.ErrOutcomeUnknown) {
		t.Fatalf("write to a stopped server: got %v, want a known failure (nothing written)", err)
	}
}
