package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

func TestDecisionLogRing(t *testing.T) {
	var l decisionLog
	now := time.Unix(1700000000, 0)
	all := func(*decisionRecord) bool { return true }
	req := func(s string) failover.Request { return failover.Request{Service: s, FromRegion: "us-east"} }
	d := func(expl string, fo bool) failover.Decision {
		return failover.Decision{Explanation: expl, Failover: fo, Shares: map[string]float64{"eu-west": 1}}
	}
	l.add(now, "k-web", req("web"), d("local", false))
	l.add(now, "k-web", req("web"), d("local", false)) // the same again: not recorded
	l.add(now, "k-api", req("api"), d("fails over", true))
	l.add(now, "k-web", req("web"), d("local", false)) // same as web's last, though not the newest
	if got := l.recent(10, all); len(got) != 2 || got[0].Service != "api" || got[1].Service != "web" || got[0].Seq != 2 {
		t.Fatalf("after repeats: %+v, want api then web", got)
	}
	l.add(now, "k-web", req("web"), d("now fails over", true))
	got := l.recent(10, func(r *decisionRecord) bool { return r.Failover })
	if len(got) != 2 || got[0].Explanation != "now fails over" || got[1].Service != "api" {
		t.Fatalf("failover only: %+v", got)
	}
	// Bounded: many distinct decisions keep the last decisionLogSize.
	for i := range 3 * decisionLogSize {
		l.add(now, fmt.Sprint("k", i), req(fmt.Sprint("s", i)), d("x", false))
	}
	got = l.recent(decisionLogSize+10, all)
	if len(got) != decisionLogSize || got[0].Service != fmt.Sprint("s", 3*decisionLogSize-1) || got[decisionLogSize-1].Service != fmt.Sprint("s", 2*decisionLogSize) {
		t.Fatalf("after %d decisions: %d kept, newest %s, oldest %s", 3*decisionLogSize, len(got), got[0].Service, got[len(got)-1].Service)
	}
	if got := l.recent(3, all); len(got) != 3 {
		t.Fatalf("limit 3: %d", len(got))
	}
	// A lookup's tags are kept within bounds.
	many := make([]string, 1000)
	for i := range many {
		many[i] = strings.Repeat("t", 1000)
	}
	l.add(now, "k-many", failover.Request{Service: "web", Tags: many}, d("tags", false))
	tags := l.recent(1, all)[0].Tags
	if len(tags) != decisionMaxTags+1 || len(tags[0]) > decisionMaxTagLen+len("…") || tags[decisionMaxTags] != "…(984 more)" {
		t.Fatalf("kept %d tags, first %d bytes, last %q", len(tags), len(tags[0]), tags[len(tags)-1])
	}
}

// TestDecisionsAPI: lookups record decisions; GET /v1/decisions lists them
// newest first, filters them, rejects bad parameters, and with ACLs shows
// only the services the token may read.
func TestDecisionsAPI(t *testing.T) {
	a := startAgent(t, AgentConfig{ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	base := a.URL()
	tok := func(method, path, body, secret string) response {
		return callWithHeader(t, method, base+path, body, TokenHeader, secret)
	}
	tok("PUT", "/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`, rootSecret).want(t, 200)
	tok("GET", "/v1/lookup/web", "", rootSecret).want(t, 200)
	tok("GET", "/v1/lookup/web", "", rootSecret).want(t, 200) // cached: nothing new
	tok("GET", "/v1/lookup/api", "", rootSecret).want(t, 200) // no instances anywhere
	r := tok("GET", "/v1/decisions", "", rootSecret).want(t, 200)
	list, _ := r.body["decisions"].([]any)
	if len(list) != 2 || r.body["region"] != "us-east" {
		t.Fatalf("decisions: %s", r.raw)
	}
	first := list[0].(map[string]any)
	if first["service"] != "api" || first["endpoints"] != 0.0 || first["explanation"] == "" || first["policy"] != "local" {
		t.Fatalf("newest decision: %v", first)
	}
	if r := tok("GET", "/v1/decisions?service=web&limit=1", "", rootSecret).want(t, 200); len(r.body["decisions"].([]any)) != 1 {
		t.Fatalf("service=web: %s", r.raw)
	}
	if r := tok("GET", "/v1/decisions?failover=true", "", rootSecret).want(t, 200); len(r.body["decisions"].([]any)) != 0 {
		t.Fatalf("failover=true: %s", r.raw)
	}
	tok("GET", "/v1/decisions?limit=0", "", rootSecret).want(t, 400)
	tok("GET", "/v1/decisions?limit=x", "", rootSecret).want(t, 400)
	tok("GET", "/v1/decisions?failover=maybe", "", rootSecret).want(t, 400)
	tok("POST", "/v1/decisions", "", rootSecret).want(t, 405)
	call(t, "GET", base+"/v1/decisions", "").want(t, 401)
	// A token that reads web only sees web's decision.
	webTok := createToken(t, base, rootSecret, `{"description":"web reader","rules":[{"service":"web","access":"read"}]}`)
	r = tok("GET", "/v1/decisions", "", webTok.secret).want(t, 200)
	if list := r.body["decisions"].([]any); len(list) != 1 || list[0].(map[string]any)["service"] != "web" {
		t.Fatalf("web reader sees: %s", r.raw)
	}
}
