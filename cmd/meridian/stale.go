package main

import (
	"fmt"
	"net/http"
	"time"
)

// regionStatus is one region of GET /v1/regions, as the CLI reads it.
type regionStatus struct {
	Name              string   `json:"name"`
	Local             bool     `json:"local"`
	AdvertisedVersion uint64   `json:"advertised_version"`
	ReplicaVersion    uint64   `json:"replica_version"`
	ReplicaAgeMS      int64    `json:"replica_age_ms"`
	Reachable         bool     `json:"reachable"`
	Stale             bool     `json:"stale"`
	RTTMS             *float64 `json:"rtt_ms"`
	LastError         string   `json:"last_error"`
	Gateways          []struct {
		Name, Address, Status string
	} `json:"gateways"`
}

// staleReason says why an answer about region name is stale. A stale
// answer about the gateway's own region means its store is out of reach;
// about another region, that region's replica may be behind, for the
// reason GET /v1/regions shows (asked here; a token without operator:read
// gets a pointer to 'meridian regions' instead).
func staleReason(c *apiClient, name string, ageMS int64) string {
	var resp struct {
		Local   string         `json:"local"`
		Regions []regionStatus `json:"regions"`
	}
	if _, err := c.do(http.MethodGet, "/v1/regions", nil, &resp); err != nil {
		return fmt.Sprintf(" (STALE: the data of region %s may be out of date; 'meridian regions' says why)", name)
	}
	if name == "" || name == resp.Local {
		return " (STALE: the gateway cannot reach its store; answering from cache)"
	}
	for _, r := range resp.Regions {
		if r.Name == name {
			return " (STALE: " + remoteStaleReason(r, ageMS) + ")"
		}
	}
	return fmt.Sprintf(" (STALE: region %s is no longer known to this gateway)", name)
}

// remoteStaleReason explains a stale replica of another region, in the
// order the gateway decides staleness (federation: no alive gateway,
// failing fetches, a newer advertised version, a restored replica).
func remoteStaleReason(r regionStatus, ageMS int64) string {
	age := (time.Duration(ageMS) * time.Millisecond).Round(time.Second)
	alive := 0
	for _, g := range r.Gateways {
		if g.Status == "alive" {
			alive++
		}
	}
	switch {
	case alive == 0:
		return fmt.Sprintf("no gateway of region %s is alive in the gossip pool; answering from its last replica, synced %s ago", r.Name, age)
	case r.LastError != "":
		return fmt.Sprintf("fetching region %s's catalog fails (%s); answering from its last replica, synced %s ago", r.Name, r.LastError, age)
	case r.AdvertisedVersion > r.ReplicaVersion:
		return fmt.Sprintf("region %s is at version %d, this gateway's replica at %d: catching up", r.Name, r.AdvertisedVersion, r.ReplicaVersion)
	case !r.Reachable:
		return fmt.Sprintf("region %s is unreachable from this gateway; answering from its last replica, synced %s ago", r.Name, age)
	}
	return fmt.Sprintf("the replica of region %s was restored from the store and has not synced yet", r.Name)
}

// advertisedCell is the ADVERTISED column of 'meridian regions': "-" when
// no gateway of the region is alive to advertise a version.
func advertisedCell(r regionStatus) string {
	if r.Local {
		return fmt.Sprint(r.AdvertisedVersion)
	}
	for _, g := range r.Gateways {
		if g.Status == "alive" {
			return fmt.Sprint(r.AdvertisedVersion)
		}
	}
	if r.AdvertisedVersion == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (last seen)", r.AdvertisedVersion)
}

// staleCell is the STALE column of 'meridian regions': no, or yes and
// the short reason ('meridian instances SERVICE --region R' gives the long one).
func staleCell(r regionStatus) string {
	if !r.Stale {
		return "no"
	}
	if r.Local {
		return "yes (store unreachable)"
	}
	alive := 0
	for _, g := range r.Gateways {
		if g.Status == "alive" {
			alive++
		}
	}
	switch {
	case alive == 0:
		return "yes (no alive gateway)"
	case r.LastError != "":
		return "yes (fetches fail)"
	case r.AdvertisedVersion > r.ReplicaVersion:
		return "yes (catching up)"
	case !r.Reachable:
		return "yes (unreachable)"
	}
	return "yes (restored, not synced)"
}
