package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// staticMembership is a pool that never changes, for benchmarks.
type staticMembership struct {
	members []federation.Member
	events  chan federation.MemberEvent
	users   chan federation.UserEvent
}

var _ federation.Membership = (*staticMembership)(nil)

func (m *staticMembership) LocalName() string                       { return m.members[0].Name }
func (m *staticMembership) Members() []federation.Member            { return m.members }
func (m *staticMembership) Events() <-chan federation.MemberEvent   { return m.events }
func (m *staticMembership) SetVersion(uint64)                       {}
func (m *staticMembership) RTT(string) (time.Duration, bool)        { return 0, false }
func (m *staticMembership) UserEvent(string, []byte) error          { return nil }
func (m *staticMembership) UserEvents() <-chan federation.UserEvent { return m.users }
func (m *staticMembership) Leave() error                            { return nil }
func (m *staticMembership) Shutdown() error                         { return nil }

// BenchmarkLookupCrossRegion compares a lookup answered from a remote
// region's replica (?region=eu-west) with the same lookup answered from
// the local cache, on the same instances: the target is a ratio of at
// least 0.95 (remote ns/op at most local ns/op / 0.95).
func BenchmarkLookupCrossRegion(b *testing.B) {
	now := func() time.Time { return benchNow }
	log := slog.New(slog.DiscardHandler)
	body := get(b, newBenchServer(b), "/v1/services/web")

	// eu-west's replica holds the same three instances, restored from the
	// replica store as a restarted gateway would.
	var snap region.Snapshot
	store := region.NewMemStore(0)
	cache := region.NewCache(store, region.CacheOptions{Logger: log, Now: now})
	cache.Sync(context.Background())
	reps := federation.NewMemReplicaStore()
	mem := &staticMembership{members: []federation.Member{
		{Name: "us-east-1", Region: "us-east", HTTPAddr: "127.0.0.1:1", Status: federation.StatusAlive},
	}, events: make(chan federation.MemberEvent), users: make(chan federation.UserEvent)}
	// Build the replica from the local answer's instances.
	var ans struct {
		Instances []region.Instance `json:"instances"`
	}
	mustUnmarshal(b, body, &ans)
	snap = region.Snapshot{Version: 3, Instances: ans.Instances}
	for _, in := range ans.Instances { // the local region has the same three
		if _, err := store.Put(context.Background(), in, region.Cond{}); err != nil {
			b.Fatal(err)
		}
	}
	cache.Sync(context.Background())
	reps.Save(context.Background(), federation.ReplicaSnapshot{Region: "eu-west", Version: snap.Version,
		LastSync: benchNow, Source: "eu-west-1", Instances: snap.Instances})
	fed, err := federation.NewFederator(federation.FederatorConfig{
		Core: federation.DefaultCoreConfig("us-east", "us-east-1"), Membership: mem, Replicas: reps, Logger: log, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fed.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; {
		ok := false
		fed.Read(func(c *federation.Core) { ok = c.Replica("eu-west") != nil })
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("replica not restored")
		}
		time.Sleep(time.Millisecond)
	}
	health := region.NewHealthRunner(store, cache, region.HealthRunnerOptions{Logger: log, Now: now})
	h := New(Config{Region: "us-east", Store: store, Cache: cache, Health: health, Fed: fed, Logger: log, Now: now}).Handler()

	remoteBody := get(b, h, "/v1/services/web?region=eu-west")
	if bytes.Count(remoteBody, []byte(`"id":`)) != 3 {
		b.Fatalf("remote lookup: %s", remoteBody)
	}
	// The same request shape on both sides: a region named in the query.
	localBody := get(b, h, "/v1/services/web?region=us-east")
	b.Run("local", func(b *testing.B) { benchGet(b, h, "/v1/services/web?region=us-east", len(localBody)) })
	b.Run("remote", func(b *testing.B) { benchGet(b, h, "/v1/services/web?region=eu-west", len(remoteBody)) })
}

func mustUnmarshal(b *testing.B, data []byte, v any) {
	b.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		b.Fatal(err)
	}
}
