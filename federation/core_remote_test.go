package federation

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// agreeRemote checks that AppendRemoteReplicas and AppendAliveGateways say
// what Regions says of the regions with a replica (agree calls it).
func agreeRemote(t *testing.T, c *Core) {
	t.Helper()
	var want []RemoteReplica
	wantAlive := map[string][]string{}
	for _, v := range c.Regions() {
		if v.Local || v.Replica == nil {
			continue
		}
		want = append(want, RemoteReplica{Name: v.Name, Replica: v.Replica, Stale: v.Stale, Reachable: v.Reachable})
		for _, g := range v.Gateways {
			if g.Status == StatusAlive {
				wantAlive[v.Name] = append(wantAlive[v.Name], g.Name)
			}
		}
	}
	got := c.AppendRemoteReplicas(nil)
	if !slices.Equal(got, want) {
		t.Fatalf("AppendRemoteReplicas: %+v\nRegions says:    %+v", got, want)
	}
	for _, r := range got {
		if alive := c.AppendAliveGateways(nil, r.Name); !slices.Equal(alive, wantAlive[r.Name]) {
			t.Fatalf("AppendAliveGateways(%s): %v, Regions says %v", r.Name, alive, wantAlive[r.Name])
		}
	}
}

// The lookup path's view of the remote regions agrees with Regions as
// regions sync, go stale, fail, become unreachable and are forgotten; it
// appends after what out holds and costs no allocation into a buffer.
func TestCoreAppendRemoteReplicas(t *testing.T) {
	c := newTestCore(t)
	agreeRemote(t, c)
	for _, g := range []Member{gw("eu-1", "eu-west", 3), gw("eu-2", "eu-west", 3), gw("ap-1", "ap-south", 2), gw("sa-1", "sa-east", 1)} {
		c.Member(t0, MemberEvent{Kind: EventJoin, Member: g})
	}
	agreeRemote(t, c) // gateways known, no replica yet
	now := t0
	for _, f := range fetches(c.Tick(now)) {
		now = now.Add(time.Millisecond)
		v := map[string]uint64{"eu-west": 3, "ap-south": 2, "sa-east": 1}[f.Region]
		if f.Region == "sa-east" {
			c.FetchFailed(now, f, errors.New("connection refused"))
			continue
		}
		if err := c.FetchDone(now, f, SyncResult{Full: true, Version: v, Catalog: catalogAt(v)}); err != nil {
			t.Fatal(err)
		}
	}
	agreeRemote(t, c)
	if got := c.AppendRemoteReplicas(nil); len(got) != 2 || got[0].Name != "ap-south" || got[1].Name != "eu-west" {
		t.Fatalf("after syncing ap-south and eu-west: %+v", got)
	}
	// eu-west advertises a newer version (stale), one of its gateways fails,
	// ap-south's only gateway fails (unreachable).
	c.Member(now, MemberEvent{Kind: EventUpdate, Member: gw("eu-1", "eu-west", 4)})
	dead := gw("eu-2", "eu-west", 3)
	dead.Status = StatusFailed
	c.Member(now, MemberEvent{Kind: EventFailed, Member: dead})
	ap := gw("ap-1", "ap-south", 2)
	ap.Status = StatusFailed
	c.Member(now, MemberEvent{Kind: EventFailed, Member: ap})
	agreeRemote(t, c)
	got := c.AppendRemoteReplicas([]RemoteReplica{{Name: "kept"}})
	if len(got) != 3 || got[0].Name != "kept" || !got[1].Stale || got[1].Reachable || !got[2].Stale {
		t.Fatalf("appending after one entry, with ap-south failed and eu-west behind: %+v", got)
	}
	if alive := c.AppendAliveGateways([]string{"x"}, "eu-west"); !slices.Equal(alive, []string{"x", "eu-1"}) {
		t.Fatalf("alive gateways of eu-west after x: %v", alive)
	}
	c.Forget("ap-south")
	agreeRemote(t, c)
	var buf [8]RemoteReplica
	var nbuf [8]string
	if n := testing.AllocsPerRun(100, func() {
		for _, r := range c.AppendRemoteReplicas(buf[:0]) {
			c.AppendAliveGateways(nbuf[:0], r.Name)
		}
	}); n != 0 {
		t.Errorf("AppendRemoteReplicas and AppendAliveGateways into buffers: %v allocations, want 0", n)
	}
}
