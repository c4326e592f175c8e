package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	// Default pool settings: a client whose pool is no bigger than its
	// count of failed dials (say PoolSize 1 and one dial to a stopped
	// server) returns the last dial error, without dialing, until a
	// background probe that runs once a second reconnects.
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartAddrAndURL(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
		t.Errorf("Addr() = %q, want %q", s.Addr(), want)
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("redis.ParseURL(%q): %v", s.URL(), err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING via URL %s: %v", s.URL(), err)
	}
	if _, err := os.Stat(s.logPath()); err != nil {
		t.Errorf("log file: %v", err)
	}
}

// TestStopRestartKeepsData checks that a write acknowledged before a clean
// Stop, or before a Kill, is there after Restart, on the same address.
func TestStopRestartKeepsData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		down func(*Server, testing.TB)
	}{
		{"Stop", (*Server).Stop},
		{"Kill", (*Server).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := Start(t)
			addr := s.Addr()
			c := newClient(t, addr)
			if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
				t.Fatalf("SET k: %v", err)
			}
			if err := c.Incr(ctx, "n").Err(); err != nil {
				t.Fatalf("INCR n: %v", err)
			}

			tc.down(s, t)
			// Probe without c: go-redis would spend ~2s retrying dials.
			if reply, err := command(addr, "PING"); err == nil {
				t.Fatalf("PING after %s = %q, want an error", tc.name, reply)
			}

			s.Restart(t)
			if s.Addr() != addr {
				t.Errorf("Addr() after Restart = %q, want %q", s.Addr(), addr)
			}
			if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v1" {
				t.Errorf("GET k after %s+Restart = %q, %v; want %q, nil", tc.name, got, err, "v1")
			}
			if got, err := c.Get(ctx, "n").Int(); err != nil || got != 1 {
				t.Errorf("GET n after %s+Restart = %d, %v; want 1, nil", tc.name, got, err)
			}
		})
	}
}

func TestStopTwiceAndRestartRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	c := newClient(t, s.Addr())
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET k: %v", err)
	}
	s.Restart(t) // running: Restart stops it first
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k after Restart = %q, %v; want %q, nil", got, err, "v")
	}
	s.Stop(t)
	s.Stop(t) // no-op
	s.Kill(t) // no-op
}

func TestStartFailureQuotesLog(t *testing.T) {
	t.Parallel()
	if _, ok := Binary(); !ok {
		t.Skip(skipNoServer)
	}
	s := &Server{dir: t.TempDir(), cfg: defaultConfig()}
	s.bin, _ = Binary()
	s.cfg.args = []string{"--no-such-directive", "x"}
	var err error
	if s.port, err = freePort(false); err != nil {
		t.Fatal(err)
	}
	err = s.launch()
	if err == nil {
		s.shutdown()
		t.Fatal("launch with a bad directive succeeded, want an error")
	}
	if errors.Is(err, errPortInUse) || !strings.Contains(err.Error(), "no-such-directive") {
		t.Errorf("launch error = %v; want one quoting the bad directive from the log", err)
	}
}

func TestStartCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	c := StartCluster(t)
	t.Logf("StartCluster took %v", time.Since(start))

	addrs := c.Addrs()
	if len(addrs) != 3 || len(c.Nodes()) != 3 {
		t.Fatalf("Addrs() = %v, Nodes() has %d; want 3 of each", addrs, len(c.Nodes()))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()

	// Pick keys until they cover every master, so the client must follow
	// the slot map to all three nodes.
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	owner := func(slot int64) string {
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) {
				return r.Nodes[0].Addr
			}
		}
		return ""
	}
	keys := map[string]string{} // owner address -> key
	for i := 0; len(keys) < 3 && i < 1000; i++ {
		key := fmt.Sprintf("key-%d", i)
		slot, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		if o := owner(slot); o != "" && keys[o] == "" {
			keys[o] = key
		}
	}
	if len(keys) != 3 {
		t.Fatalf("keys cover owners %v, want all three of %v (slots %v)", keys, addrs, slots)
	}
	for node, key := range keys {
		if err := cc.Set(ctx, key, node, 0).Err(); err != nil {
			t.Fatalf("SET %s (on %s): %v", key, node, err)
		}
	}
	for node, key := range keys {
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != node {
			t.Errorf("GET %s = %q, %v; want %q, nil", key, got, err, node)
		}
		// The key lives on its owner and nowhere else.
		direct := newClient(t, node)
		if got, err := direct.Get(ctx, key).Result(); err != nil || got != node {
			t.Errorf("GET %s directly on %s = %q, %v; want %q, nil", key, node, got, err, node)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		t.Setenv(EnvVar, "127.0.0.1:1")
		if got := FromEnv(t); got != "127.0.0.1:1" {
			t.Errorf("FromEnv() = %q, want %q", got, "127.0.0.1:1")
		}
	})
	t.Run("unset", func(t *testing.T) {
		t.Setenv(EnvVar, "")
		url := FromEnv(t)
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("FromEnv() = %q: %v", url, err)
		}
		c := redis.NewClient(opts)
		defer c.Close()
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Errorf("PING %s: %v", url, err)
		}
	})
}

func TestKeyPrefix(t *testing.T) {
	a, b := KeyPrefix(t), KeyPrefix(t)
	if a == b {
		t.Errorf("KeyPrefix twice = %q both times, want distinct", a)
	}
	if !strings.HasPrefix(a, "test:TestKeyPrefix:") || strings.ContainsAny(a, "{}") {
		t.Errorf("KeyPrefix() = %q, want test:TestKeyPrefix:<hex>: without braces", a)
	}
}
