package gateway

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// decisionLogSize bounds the recent routing decisions a gateway keeps for
// GET /v1/decisions and the status page: a fixed ring, whatever the
// traffic.
const decisionLogSize = 128

// decisionRecord is one routing decision as GET /v1/decisions shows it.
type decisionRecord struct {
	Seq          uint64             `json:"seq"`
	Time         time.Time          `json:"time"`
	Service      string             `json:"service"`
	FromRegion   string             `json:"from_region"`
	Zone         string             `json:"zone,omitempty"`
	Tags         []string           `json:"tags,omitempty"`
	Policy       failover.Mode      `json:"policy"`
	Endpoints    int                `json:"endpoints"`
	Shares       map[string]float64 `json:"shares"`
	Failover     bool               `json:"failover"`
	Panic        bool               `json:"panic"`
	StaleRegions []string           `json:"stale_regions"`
	Explanation  string             `json:"explanation"`

	key string // routeKey: to skip a repeat of the same decision
}

// decisionLog is a ring of the last decisionLogSize routing decisions that
// differ from the one before them for the same request. The route cache
// calls add only when it computes a decision, so a steady stream of
// lookups records nothing; a decision that reads the same as the last one
// for its request (a stale region aged by a second) is not recorded again.
type decisionLog struct {
	mu   sync.Mutex
	ring [decisionLogSize]decisionRecord
	n    int    // records in the ring
	seq  uint64 // of the newest record
}

// add records d for req, unless the newest record of the same request
// says the same.
func (l *decisionLog) add(now time.Time, key string, req failover.Request, d failover.Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < l.n; i++ {
		prev := &l.ring[(l.seq-uint64(i))%decisionLogSize]
		if prev.key != key {
			continue
		}
		if prev.Explanation == d.Explanation && prev.Failover == d.Failover && prev.Panic == d.Panic &&
			prev.Endpoints == len(d.Endpoints) && maps.Equal(prev.Shares, d.Shares) {
			return
		}
		break
	}
	l.seq++
	if l.n < decisionLogSize {
		l.n++
	}
	l.ring[l.seq%decisionLogSize] = decisionRecord{
		Seq: l.seq, Time: now.UTC(), Service: req.Service, FromRegion: req.FromRegion, Zone: req.FromZone,
		Tags: boundedTags(req.Tags), Policy: req.Policy.Mode, Endpoints: len(d.Endpoints),
		Shares: maps.Clone(d.Shares), Failover: d.Failover, Panic: d.Panic,
		StaleRegions: slices.Clone(d.StaleRegions), Explanation: d.Explanation, key: key,
	}
}

// Bounds on the query tags a record keeps: they come from the lookup's
// URL, so without them 128 records of a client's longest URLs could hold
// a hundred megabytes.
const (
	decisionMaxTags   = 16
	decisionMaxTagLen = 128
)

func boundedTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(tags), decisionMaxTags+1))
	for i, t := range tags {
		if i == decisionMaxTags {
			out = append(out, "…("+strconv.Itoa(len(tags)-i)+" more)")
			break
		}
		if len(t) > decisionMaxTagLen {
			t = t[:decisionMaxTagLen] + "…"
		}
		out = append(out, t)
	}
	return out
}

// recent returns up to limit records, newest first, that keep says to
// keep; their maps and slices are shared and must not be modified.
func (l *decisionLog) recent(limit int, keep func(*decisionRecord) bool) []decisionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []decisionRecord{}
	for i := 0; i < l.n && len(out) < limit; i++ {
		r := &l.ring[(l.seq-uint64(i))%decisionLogSize]
		if keep(r) {
			out = append(out, *r)
		}
	}
	return out
}

type decisionsResponse struct {
	Region    string           `json:"region"`
	Decisions []decisionRecord `json:"decisions"`
}

// handleDecisions serves GET /v1/decisions[?limit=N][&service=S]
// [&failover=true]: this gateway's recent routing decisions, newest first,
// of the services the request's token may read.
func (s *Server) handleDecisions(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > decisionLogSize {
			writeError(w, http.StatusBadRequest, "limit", "must be an integer from 1 to "+strconv.Itoa(decisionLogSize)+", got "+strconv.Quote(v))
			return
		}
		limit = n
	}
	onlyFailover := false
	if v := q.Get("failover"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "failover", "must be true or false, got "+strconv.Quote(v))
			return
		}
		onlyFailover = b
	}
	service := q.Get("service")
	recs := s.decisions.recent(limit, func(d *decisionRecord) bool {
		return (service == "" || d.Service == service) && (!onlyFailover || d.Failover || d.Panic) && s.canRead(r, d.Service)
	})
	writeJSON(w, http.StatusOK, decisionsResponse{Region: s.cfg.Region, Decisions: recs})
}
