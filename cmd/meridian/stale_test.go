package main

import (
	"strings"
	"testing"
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
