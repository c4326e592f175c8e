package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// handleCatalog serves the sync protocol (federation.CatalogPath).
func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || !s.requireGateway(w, r, "", "the sync endpoint") {
		return
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		var err error
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "since", "must be a catalog version (an unsigned integer), got "+strconv.Quote(v))
			return
		}
	}
	s.watches.requests.Add(1)
	if r.URL.Query().Has("wait") && !s.waitCatalog(w, r, since) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	src := federation.CatalogSource{Region: s.cfg.Region, Store: s.cfg.Store, Cache: s.cfg.Cache}
	resp, err := src.Answer(ctx, since)
	span := trace.SpanFromContext(r.Context())
	if err != nil {
		span.RecordError(err)
		s.cfg.Logger.Warn("serving the catalog failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "", "catalog unavailable: "+storeErrorText(err))
		return
	}
	if span.IsRecording() {
		// The fetching gateway's "federation.sync" span is this span's
		// parent (its traceparent came with the request).
		attrs := []attribute.KeyValue{attribute.Int64("meridian.sync.version_from", int64(since))}
		switch a := resp.(type) {
		case federation.DeltaResponse:
			attrs = append(attrs, attribute.Int64("meridian.sync.version_to", int64(a.Version)),
				attribute.Bool("meridian.sync.full", false), attribute.Int("meridian.sync.changes", len(a.Changes)))
		case federation.FullResponse:
			attrs = append(attrs, attribute.Int64("meridian.sync.version_to", int64(a.Version)),
				attribute.Bool("meridian.sync.full", true), attribute.Int("meridian.sync.changes", len(a.Instances)))
		}
		span.SetAttributes(attrs...)
	}
	writeJSON(w, http.StatusOK, resp)
}

// regionAnswer is one region's part of a cross-region read.
type regionAnswer struct {
	Region    string            `json:"region"`
	Version   uint64            `json:"version"`
	Stale     bool              `json:"stale"`
	AgeMS     int64             `json:"age_ms"`
	Instances []region.Instance `json:"instances"`
}

type allRegionsResponse struct {
	Service string         `json:"service"`
	Regions []regionAnswer `json:"regions"`
}

// errUnknownRegion: no gateway of the region was ever seen here.
var errUnknownRegion = errors.New("unknown region")

func errNoReplica(name string) error { return errors.New("no replica of region " + name + " yet") }

// remoteAnswer answers a lookup from a remote region's replica.
func (s *Server) remoteAnswer(name, service string, f region.Filter, now time.Time) (regionAnswer, error) {
	var ans regionAnswer
	var err error
	s.cfg.Fed.Read(func(c *federation.Core) {
		rep, stale, known := c.Lookup(name)
		switch {
		case !known:
			err = errUnknownRegion
		case rep == nil:
			err = errNoReplica(name)
		default:
			ans = regionAnswer{Region: name, Version: rep.Version(), Stale: stale,
				AgeMS:     max(now.Sub(rep.LastSync), 0).Milliseconds(),
				Instances: rep.Catalog.Instances(service, f)}
		}
	})
	return ans, err
}

func (s *Server) localAnswer(service string, f region.Filter) regionAnswer {
	fr := s.freshness()
	ans := regionAnswer{Region: s.cfg.Region, Stale: fr.Stale, AgeMS: fr.AgeMS}
	s.cfg.Cache.Read(func(c *region.Catalog) {
		ans.Version = c.Version()
		ans.Instances = c.Instances(service, f)
	})
	return ans
}

// serveRegionLookup answers ?region=R (R remote) and ?region=*.
func (s *Server) serveRegionLookup(w http.ResponseWriter, service, which string, f region.Filter) {
	now := s.cfg.Now()
	if which == "*" {
		resp := allRegionsResponse{Service: service}
		var names []string
		s.cfg.Fed.Read(func(c *federation.Core) {
			for _, v := range c.Regions() {
				names = append(names, v.Name)
			}
		})
		for _, n := range names {
			if n == s.cfg.Region {
				resp.Regions = append(resp.Regions, s.localAnswer(service, f))
				continue
			}
			if ans, err := s.remoteAnswer(n, service, f, now); err == nil {
				resp.Regions = append(resp.Regions, ans)
			}
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if err := region.ValidateService(which); err != nil {
		writeError(w, http.StatusBadRequest, "region", "region must be a region name or *: "+strconv.Quote(which))
		return
	}
	ans, err := s.remoteEncoded(which, service, f)
	switch {
	case errors.Is(err, errUnknownRegion):
		writeError(w, http.StatusNotFound, "region", "region "+strconv.Quote(which)+" is not known to this gateway")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "region", err.Error())
		return
	}
	answerDate.set(w.Header(), lookupStart(w, false)) // dateheader.go; asked before any wait
	writeServiceAnswer(w, service, ans)
}

type gatewayView struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Status  string `json:"status"`
}

type regionView struct {
	Name              string        `json:"name"`
	Local             bool          `json:"local"`
	Gateways          []gatewayView `json:"gateways"`
	AdvertisedVersion uint64        `json:"advertised_version"`
	ReplicaVersion    uint64        `json:"replica_version"`
	ReplicaAgeMS      int64         `json:"replica_age_ms"`
	Reachable         bool          `json:"reachable"`
	Stale             bool          `json:"stale"`
	RTTMS             *float64      `json:"rtt_ms"`
	LastError         string        `json:"last_error,omitempty"`
}

// handleRegions lists every known region (GET), or forgets one (DELETE
// /v1/regions/{region}).
func (s *Server) handleRegions(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	if s.cfg.Fed == nil {
		fr := s.freshness()
		writeJSON(w, http.StatusOK, map[string]any{"local": s.cfg.Region, "regions": []regionView{{
			Name: s.cfg.Region, Local: true, AdvertisedVersion: fr.Version, ReplicaVersion: fr.Version,
			ReplicaAgeMS: fr.AgeMS, Reachable: true, Stale: fr.Stale, Gateways: []gatewayView{}}}})
		return
	}
	now := s.cfg.Now()
	var views []federation.RegionView
	// Replicas change under the federator's lock: copy what is shown
	// while holding it.
	type replicaInfo struct {
		version uint64
		ageMS   int64
	}
	reps := map[string]replicaInfo{}
	s.cfg.Fed.Read(func(c *federation.Core) {
		views = c.Regions()
		for _, v := range views {
			if v.Replica != nil {
				reps[v.Name] = replicaInfo{v.Replica.Version(), max(now.Sub(v.Replica.LastSync), 0).Milliseconds()}
			}
		}
	})
	mem := s.cfg.Fed.Membership()
	out := make([]regionView, 0, len(views))
	for _, v := range views {
		rv := regionView{Name: v.Name, Local: v.Local, AdvertisedVersion: v.Advertised, Reachable: v.Reachable,
			Stale: v.Stale, LastError: v.LastError, Gateways: []gatewayView{}}
		var best time.Duration
		found := false
		for _, g := range v.Gateways {
			rv.Gateways = append(rv.Gateways, gatewayView{Name: g.Name, Address: g.HTTPAddr, Status: g.Status.String()})
			if g.Status != federation.StatusAlive || g.Name == mem.LocalName() {
				continue
			}
			if d, ok := mem.RTT(g.Name); ok && (!found || d < best) {
				best, found = d, true
			}
		}
		if found {
			ms := float64(best.Microseconds()) / 1000
			rv.RTTMS = &ms
		}
		switch {
		case v.Local:
			fr := s.freshness()
			rv.ReplicaVersion, rv.ReplicaAgeMS, rv.Stale, rv.Reachable = fr.Version, fr.AgeMS, fr.Stale, true
		default:
			if ri, ok := reps[v.Name]; ok {
				rv.ReplicaVersion, rv.ReplicaAgeMS = ri.version, ri.ageMS
			}
		}
		out = append(out, rv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"local": s.cfg.Region, "regions": out})
}

func (s *Server) handleRegion(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodDelete) {
		return
	}
	name := r.PathValue("region")
	if s.cfg.Fed == nil {
		writeError(w, http.StatusNotFound, "region", "federation is off on this gateway")
		return
	}
	if name == s.cfg.Region {
		writeError(w, http.StatusBadRequest, "region", "a gateway cannot forget its own region")
		return
	}
	known := false
	s.cfg.Fed.Read(func(c *federation.Core) {
		for _, v := range c.Regions() {
			known = known || v.Name == name
		}
	})
	if !known {
		writeError(w, http.StatusNotFound, "region", "region "+strconv.Quote(name)+" is not known to this gateway")
		return
	}
	if err := s.cfg.Fed.Forget(name); err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "broadcasting the forget event: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"forgotten": name})
}

// regionCounts adds per-region counts to the services list.
func (s *Server) regionCounts(local []region.ServiceSummary) []serviceSummary {
	byName := map[string]*serviceSummary{}
	var order []string
	add := func(regionName string, sums []region.ServiceSummary, isLocal bool) {
		for _, sum := range sums {
			e := byName[sum.Name]
			if e == nil {
				e = &serviceSummary{ServiceSummary: region.ServiceSummary{Name: sum.Name}, Regions: map[string]regionCount{}}
				byName[sum.Name] = e
				order = append(order, sum.Name)
			}
			if isLocal {
				e.ServiceSummary = sum
			}
			e.Regions[regionName] = regionCount{Instances: sum.Instances, Passing: sum.Passing, Warning: sum.Warning, Critical: sum.Critical}
		}
	}
	add(s.cfg.Region, local, true)
	if s.cfg.Fed != nil {
		s.cfg.Fed.Read(func(c *federation.Core) {
			for _, v := range c.Regions() {
				if !v.Local && v.Replica != nil {
					add(v.Name, v.Replica.Catalog.Services(), false)
				}
			}
		})
	}
	slices.Sort(order)
	out := make([]serviceSummary, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out
}

type regionCount struct {
	Instances int `json:"instances"`
	Passing   int `json:"passing"`
	Warning   int `json:"warning"`
	Critical  int `json:"critical"`
}

// serviceSummary is a service in GET /v1/services: the local region's
// counts at the top level, every region's under "regions".
type serviceSummary struct {
	region.ServiceSummary
	Regions map[string]regionCount `json:"regions"`
}
