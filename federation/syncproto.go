package federation

import (
	"context"
	"errors"
	"fmt"

	"github.com/meridian-sd/meridian/region"
)

// CatalogPath is the sync endpoint every gateway serves:
//
//	GET /v1/federation/catalog?since=V
//
// answers {"region","version","full":false,"changes":[...]} with the changes
// after V (at most MaxDeltaChanges; version is the last one's), or
// {"region","version","full":true,"instances":[...]} when V is 0, when the
// change log no longer reaches V, or when the region's store is unreachable
// and the gateway answers from its cache. Both carry "epoch" (and a snapshot
// "restored_from") when the region's store has one: which life of the store
// the catalog comes from, so a snapshot that lags is told from a region
// that lost its data and started over (see Core).
//
// With &wait=D (a Go duration; at most 10m, plus up to D/16 of jitter) it
// is a watch, the push path between regions: when the gateway's catalog is
// at V it holds the request until the catalog moves past V, then answers as
// above with everything that committed meanwhile; when D passes first it
// answers the empty delta at V. A gateway bounds the watches it holds (in
// all and per client IP) and refuses more with 429.
const CatalogPath = "/v1/federation/catalog"

// WatchHeader is set on every answer to a watch (the wait the gateway
// granted, e.g. "5m0s"). A watch answered without it reached a gateway
// that does not know watches (an older version, answering at once): it
// fails, so the watcher backs off instead of asking again and again.
const WatchHeader = "X-Meridian-Watch"

// MaxDeltaChanges bounds one delta response; a follower that is further
// behind fetches again.
const MaxDeltaChanges = 1000

// DeltaResponse is a delta answer of the sync endpoint.
type DeltaResponse struct {
	Region  string          `json:"region"`
	Version uint64          `json:"version"`
	Full    bool            `json:"full"`
	Changes []region.Change `json:"changes"`
	// Epoch is the store's epoch the changes were made in; with no
	// changes, the store's epoch at Version as the serving gateway's cache
	// found it ("" when none or not known): see FullResponse.
	Epoch string `json:"epoch,omitempty"`
}

// FullResponse is a snapshot answer of the sync endpoint.
type FullResponse struct {
	Region    string            `json:"region"`
	Version   uint64            `json:"version"`
	Full      bool              `json:"full"`
	Instances []region.Instance `json:"instances"`
	// Epoch is the life of the region's store the catalog comes from and
	// RestoredFrom the one that life was restored from (region.StoreMark;
	// "" when the store has none). A catalog in the replica's epoch that is
	// older than the replica only lags (a cache behind its store); an older
	// one in another epoch is a region that lost its data and started over.
	Epoch        string `json:"epoch,omitempty"`
	RestoredFrom string `json:"restored_from,omitempty"`
}

// CatalogSource is what the sync endpoint reads: the region's store, with
// the gateway's cache to fall back on.
type CatalogSource struct {
	Region string
	Store  region.Store
	Cache  *region.Cache
}

// Answer builds the sync endpoint's answer for since. The store's answer
// is served only when the cache trusts it (region.Cache.Trusts): while the
// store has lost data and the catalog is not restored yet, or when the store
// is behind the cache or in another epoch, the answer is the cache's whole
// catalog, so other regions never receive an emptied catalog or a version
// that goes back.
func (s CatalogSource) Answer(ctx context.Context, since uint64) (any, error) {
	trusts := func(v uint64, epoch string) bool { return s.Cache == nil || s.Cache.Trusts(v, epoch) }
	if since > 0 {
		chs, ok, err := s.Store.ChangesSince(ctx, since, MaxDeltaChanges)
		if err == nil && ok {
			v, epoch := since, ""
			complete := true // as far as the cache can tell, no change is missing
			if len(chs) > 0 {
				v, epoch = chs[len(chs)-1].Version, chs[len(chs)-1].Epoch
			} else if s.Cache != nil {
				// No change: say which life of the store is at since (as
				// the cache found it there), so that a replica of another
				// life at the same version learns it needs a snapshot (a
				// region reset that climbed back to the replica's version).
				// No change since a version the cache is past is a log
				// that lost changes (a restore cleared it and the store's
				// reach check missed that): the answer would say "v since,
				// nothing new" and the replica would never learn; serve
				// the whole catalog.
				m := s.Cache.Mark()
				if m.Version == since {
					epoch = m.Epoch
				}
				complete = m.Version <= since
			}
			if chs == nil {
				chs = []region.Change{}
			}
			if complete && (s.Cache == nil || s.Cache.TrustsChanges(epoch)) {
				return DeltaResponse{Region: s.Region, Version: v, Changes: chs, Epoch: epoch}, nil
			}
		}
	}
	snap, err := s.Store.Snapshot(ctx)
	if err != nil || !trusts(snap.Version, snap.Epoch) {
		if s.Cache == nil || !s.Cache.Freshness().Loaded {
			if err == nil {
				err = errors.New("the region's store lost data and this gateway holds no catalog to serve")
			}
			return nil, err
		}
		snap = s.Cache.Snapshot()
	}
	if snap.Instances == nil {
		snap.Instances = []region.Instance{}
	}
	return FullResponse{Region: s.Region, Version: snap.Version, Full: true, Instances: snap.Instances,
		Epoch: snap.Epoch, RestoredFrom: snap.RestoredFrom}, nil
}

// CatalogAnswer is either answer of the sync endpoint as a client reads
// it (the JSON of DeltaResponse and FullResponse decode into it).
type CatalogAnswer struct {
	Region       string            `json:"region"`
	Version      uint64            `json:"version"`
	Full         bool              `json:"full"`
	Changes      []region.Change   `json:"changes"`
	Instances    []region.Instance `json:"instances"`
	Epoch        string            `json:"epoch,omitempty"`
	RestoredFrom string            `json:"restored_from,omitempty"`
}

// AnswerOf is what a client reads of ans, an answer of CatalogSource.Answer
// (the simulator hands answers over without encoding them).
func AnswerOf(ans any) CatalogAnswer {
	switch a := ans.(type) {
	case DeltaResponse:
		return CatalogAnswer{Region: a.Region, Version: a.Version, Changes: a.Changes, Epoch: a.Epoch}
	case FullResponse:
		return CatalogAnswer{Region: a.Region, Version: a.Version, Full: true, Instances: a.Instances,
			Epoch: a.Epoch, RestoredFrom: a.RestoredFrom}
	}
	return CatalogAnswer{}
}

// Result checks that the answer is regionName's and turns it into what
// the core takes: the changes, or a catalog built from the snapshot.
func (a CatalogAnswer) Result(regionName string) (SyncResult, error) {
	if a.Region != regionName {
		return SyncResult{}, fmt.Errorf("answers for region %q, not %q", a.Region, regionName)
	}
	if !a.Full {
		return SyncResult{Version: a.Version, Changes: a.Changes, Epoch: a.Epoch}, nil
	}
	cat := region.NewCatalog()
	cat.Load(region.Snapshot{Version: a.Version, Instances: a.Instances})
	return SyncResult{Version: a.Version, Full: true, Catalog: cat, Epoch: a.Epoch, RestoredFrom: a.RestoredFrom}, nil
}
