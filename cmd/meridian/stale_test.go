package main

import (
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation/serfmember"
	"github.com/meridian-sd/meridian/gateway"
)

func TestStaleReasons(t *testing.T) {
	gw := func(status string) []struct{ Name, Address, Status string } {
		return []struct{ Name, Address, Status string }{{"eu-1", "10.0.0.1:8700", status}}
	}
	for _, c := range []struct {
		name      string
		r         regionStatus
		reason    string // substring of remoteStaleReason
		cell, adv string
	}{
		{"all gateways failed", regionStatus{Name: "eu-west", Stale: true, Gateways: gw("failed")},
			"no gateway of region eu-west is alive", "yes (no alive gateway)", "-"},
		{"failed but last seen", regionStatus{Name: "eu-west", Stale: true, AdvertisedVersion: 7, Gateways: gw("failed")},
			"synced 3s ago", "yes (no alive gateway)", "7 (last seen)"},
		{"fetches fail", regionStatus{Name: "eu-west", Stale: true, Reachable: false, LastError: "connection refused", AdvertisedVersion: 9, ReplicaVersion: 7, Gateways: gw("alive")},
			"fetching region eu-west's catalog fails (connection refused)", "yes (fetches fail)", "9"},
		{"behind", regionStatus{Name: "eu-west", Stale: true, Reachable: true, AdvertisedVersion: 9, ReplicaVersion: 7, Gateways: gw("alive")},
			"region eu-west is at version 9, this gateway's replica at 7", "yes (catching up)", "9"},
		{"restored", regionStatus{Name: "eu-west", Stale: true, Reachable: true, AdvertisedVersion: 7, ReplicaVersion: 7, Gateways: gw("alive")},
			"restored from the store", "yes (restored, not synced)", "7"},
		{"fresh", regionStatus{Name: "eu-west", Reachable: true, AdvertisedVersion: 7, ReplicaVersion: 7, Gateways: gw("alive")},
			"", "no", "7"},
		{"local", regionStatus{Name: "us-east", Local: true, Stale: true, AdvertisedVersion: 0},
			"", "yes (store unreachable)", "0"},
	} {
		if c.reason != "" {
			if got := remoteStaleReason(c.r, 3000); !strings.Contains(got, c.reason) || strings.Contains(got, "store") && !strings.Contains(c.reason, "store") {
				t.Errorf("%s: reason %q, want it to say %q", c.name, got, c.reason)
			}
		}
		if got := staleCell(c.r); got != c.cell {
			t.Errorf("%s: STALE %q, want %q", c.name, got, c.cell)
		}
		if got := advertisedCell(c.r); got != c.adv {
			t.Errorf("%s: ADVERTISED %q, want %q", c.name, got, c.adv)
		}
	}
}

// TestStaleRemoteRegionCLI: with real gateways, a replica of a region
// whose gateway crashed is reported by 'meridian instances --region' with
// the real reason (not the local store), and 'meridian regions' shows it
// in the STALE column.
func TestStaleRemoteRegionCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for gossip to notice a crashed gateway")
	}
	bin := buildBinary(t)
	quiet := slog.New(slog.DiscardHandler)
	start := func(region string, join ...string) *gateway.Agent {
		a, err := gateway.StartAgent(gateway.AgentConfig{Region: region, NodeName: region + "-1", HTTPAddr: "127.0.0.1:0",
			SerfBind: "127.0.0.1:0", GossipProfile: "local", Join: join, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Kill() })
		return a
	}
	us := start("us-east")
	eu := start("eu-west", us.Members.(*serfmember.SerfMembership).BindAddr())
	if err := devPut(eu.URL()+"/v1/services/web/instances/web-1", `{"address":"10.0.2.1","port":80}`, ""); err != nil {
		t.Fatal(err)
	}
	try := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--addr", us.Addr())...).CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) string {
		out, err := try(args...)
		if err != nil {
			t.Fatalf("meridian %v: %v\n%s", args, err, out)
		}
		return out
	}
	waitUntil := func(what string, cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Until us-east has pulled eu-west's catalog, the command may fail
	// (no replica of the region yet): keep asking.
	waitUntil("us-east's replica of eu-west", func() bool {
		out, err := try("instances", "web", "--region", "eu-west")
		return err == nil && strings.Contains(out, "web-1")
	})
	if out := run("instances", "web", "--region", "eu-west"); strings.Contains(out, "STALE") {
		t.Fatalf("fresh replica reported stale:\n%s", out)
	}
	eu.Kill()
	var out string
	waitUntil("the replica to turn stale", func() bool {
		out = run("instances", "web", "--region", "eu-west")
		return strings.Contains(out, "STALE")
	})
	if strings.Contains(out, "store") || !strings.Contains(out, "region eu-west") {
		t.Errorf("stale remote replica explained as:\n%s", out)
	}
	waitUntil("gossip to mark eu-west's gateway failed", func() bool {
		out = run("instances", "web", "--region", "eu-west")
		return strings.Contains(out, "no gateway of region eu-west is alive")
	})
	regions := run("regions")
	if !strings.Contains(regions, "STALE") || !strings.Contains(regions, "yes (no alive gateway)") {
		t.Errorf("regions table:\n%s", regions)
	}
	t.Logf("%s\n%s", out, regions)
}
