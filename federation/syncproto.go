package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

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
// and the gateway answers from its cache.
const CatalogPath = "/v1/federation/catalog"

// MaxDeltaChanges bounds one delta response; a follower that is further
// behind fetches again.
const MaxDeltaChanges = 1000

// DeltaResponse is a delta answer of the sync endpoint.
type DeltaResponse struct {
	Region  string          `json:"region"`
	Version uint64          `json:"version"`
	Full    bool            `json:"full"`
	Changes []region.Change `json:"changes"`
}

// FullResponse is a snapshot answer of the sync endpoint.
type FullResponse struct {
	Region    string            `json:"region"`
	Version   uint64            `json:"version"`
	Full      bool              `json:"full"`
	Instances []region.Instance `json:"instances"`
}

// catalogResponse decodes either answer.
type catalogResponse struct {
	Region    string            `json:"region"`
	Version   uint64            `json:"version"`
	Full      bool              `json:"full"`
	Changes   []region.Change   `json:"changes"`
	Instances []region.Instance `json:"instances"`
}

// CatalogSource is what the sync endpoint reads: the region's store, with
// the gateway's cache to fall back on.
type CatalogSource struct {
	Region string
	Store  region.Store
	Cache  *region.Cache
}

// Answer builds the sync endpoint's answer for since.
func (s CatalogSource) Answer(ctx context.Context, since uint64) (any, error) {
	if since > 0 {
		chs, ok, err := s.Store.ChangesSince(ctx, since, MaxDeltaChanges)
		if err == nil && ok {
			v := since
			if len(chs) > 0 {
				v = chs[len(chs)-1].Version
			}
			if chs == nil {
				chs = []region.Change{}
			}
			return DeltaResponse{Region: s.Region, Version: v, Changes: chs}, nil
		}
	}
	snap, err := s.Store.Snapshot(ctx)
	if err != nil {
		if s.Cache == nil || !s.Cache.Freshness().Loaded {
			return nil, err
		}
		s.Cache.Read(func(c *region.Catalog) { snap = c.Snapshot() })
	}
	if snap.Instances == nil {
		snap.Instances = []region.Instance{}
	}
	return FullResponse{Region: s.Region, Version: snap.Version, Full: true, Instances: snap.Instances}, nil
}

// Fetch asks the gateway at addr for region's catalog since a version and
// returns the result, the full catalog built (off any lock) when the answer
// is a snapshot.
func Fetch(ctx context.Context, c *http.Client, addr, regionName string, since uint64) (SyncResult, error) {
	u := (&url.URL{Scheme: "http", Host: addr, Path: CatalogPath, RawQuery: "since=" + strconv.FormatUint(since, 10)}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return SyncResult{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return SyncResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return SyncResult{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var cr catalogResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		return SyncResult{}, fmt.Errorf("decoding catalog of %s: %w", regionName, err)
	}
	if cr.Region != regionName {
		return SyncResult{}, fmt.Errorf("gateway %s answers for region %q, not %q", addr, cr.Region, regionName)
	}
	if !cr.Full {
		return SyncResult{Version: cr.Version, Changes: cr.Changes}, nil
	}
	cat := region.NewCatalog()
	cat.Load(region.Snapshot{Version: cr.Version, Instances: cr.Instances})
	return SyncResult{Version: cr.Version, Full: true, Catalog: cat}, nil
}
