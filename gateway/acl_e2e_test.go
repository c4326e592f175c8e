package gateway

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/internal/redistest"
)

// TestACLReplicationEndToEnd: two regions with real Serf on 127.0.0.1 and
// real Redis. A token created in the primary region A authorizes in B
// within about a round trip; B forwards token writes to A; after A is
// killed B keeps authorizing (and says its replica is stale), also after
// B restarts while cut off.
func TestACLReplicationEndToEnd(t *testing.T) {
	skipShort(t, "two regions over real Serf; acl replication unit tests cover it")
	rurl := redistest.FromEnv(t)
	sfx := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	ra, rb := "acl-a-"+sfx, "acl-b-"+sfx
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deny := func(primary string) func(*AgentConfig) {
		return func(c *AgentConfig) {
			c.Logger = logger
			c.ACL = ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret, PrimaryRegion: primary,
				Replication: acl.ReplicationConfig{Wait: 500 * time.Millisecond, StaleAfter: 2 * time.Second, BackoffMax: 300 * time.Millisecond}}
		}
	}
	a := startFedNodeWith(t, deny(ra), ra, ra+"-1", rurl)
	b := startFedNodeWith(t, deny(ra), rb, rb+"-1", rurl, a.serfAddr())

	status := func(n *fedNode) response {
		return callTok(t, "GET", n.URL()+"/v1/acl/replication", "", "").want(t, 200)
	}
	waitFor(t, 20*time.Second, "B to replicate the initial token from A", func() bool {
		s := status(b)
		v, _ := s.body["version"].(float64)
		return v >= 1 && s.body["stale"] == false
	})
	if s := status(b); s.body["primary"] != ra || s.body["enabled"] != true {
		t.Fatalf("B's replication status: %s", s.raw)
	}

	// A token created in A works in B within seconds.
	web := createToken(t, a.URL(), rootSecret, `{"description":"web","rules":[{"service_prefix":"web","access":"write"}]}`)
	start := time.Now()
	waitFor(t, 5*time.Second, "A's new token to authorize in B", func() bool {
		return callTok(t, "PUT", b.URL()+"/v1/services/web/instances/web-1", `{"address":"10.2.0.1","port":80}`, web.secret).code == 200
	})
	t.Logf("a token created in %s authorized in %s after %s", ra, rb, time.Since(start).Round(time.Millisecond))
	callTok(t, "PUT", b.URL()+"/v1/services/api/instances/api-1", `{"address":"10.2.0.2","port":80}`, web.secret).wantError(t, 403, "needs service:api:write")
	inst := callTok(t, "GET", b.URL()+"/v1/services/web/instances/web-1", "", web.secret).want(t, 200)
	if inst.body["registered_by"] != web.id {
		t.Fatalf("registered_by in B: %s", inst.raw)
	}

	// A token write sent to B is forwarded to the primary.
	viaB := createToken(t, b.URL(), rootSecret, `{"description":"reader via B","rules":[{"service":"web","access":"read"}]}`)
	callTok(t, "GET", a.URL()+"/v1/services/web", "", viaB.secret).want(t, 200)
	waitFor(t, 5*time.Second, "the token created through B to authorize in B", func() bool {
		return callTok(t, "GET", b.URL()+"/v1/services/web", "", viaB.secret).code == 200
	})
	callTok(t, "PUT", b.URL()+"/v1/services/web/instances/web-1/heartbeat", `{"status":"passing"}`, viaB.secret).wantError(t, 403, "needs service:web:write")
	// Deletion replicates too.
	callTok(t, "DELETE", b.URL()+"/v1/acl/tokens/"+viaB.id, "", rootSecret).want(t, 200)
	waitFor(t, 5*time.Second, "the deleted token to stop authorizing in B", func() bool {
		return callTok(t, "GET", b.URL()+"/v1/services/web", "", viaB.secret).code == 401
	})

	// Catalog sync runs under deny: each gateway's fetches carry its
	// replication token (the initial token), which the peer honours.
	waitFor(t, 10*time.Second, "A's replica of B to hold web-1", func() bool {
		r := callTok(t, "GET", a.URL()+"/v1/services/web?region="+rb, "", web.secret)
		return r.code == 200 && strings.Contains(r.raw, `"web-1"`)
	})
	callTok(t, "GET", a.URL()+"/v1/services/web?region="+rb, "", "").want(t, 401)

	// The primary dies: B keeps authorizing with what it has, and says
	// its replica is stale.
	a.Kill()
	waitFor(t, 10*time.Second, "B's replica to turn stale", func() bool { return status(b).body["stale"] == true })
	callTok(t, "PUT", b.URL()+"/v1/services/web/instances/web-2", `{"address":"10.2.0.3","port":80}`, web.secret).want(t, 200)
	callTok(t, "PUT", b.URL()+"/v1/acl/tokens", `{"rules":[]}`, rootSecret).wantError(t, 503, ra)

	// B restarts while cut off: the replica persisted in its Redis still
	// authorizes.
	b.Kill()
	b2 := startFedNodeWith(t, deny(ra), rb, rb+"-2", rurl)
	callTok(t, "PUT", b2.URL()+"/v1/services/web/instances/web-3", `{"address":"10.2.0.4","port":80}`, web.secret).want(t, 200)
	callTok(t, "GET", b2.URL()+"/v1/services/web", "", viaB.secret).want(t, 401)
	if s := status(b2); s.body["stale"] != true || s.body["tokens"].(float64) < 2 {
		t.Fatalf("restarted B's replication status: %s", s.raw)
	}

	out := logs.String()
	for _, s := range []string{rootSecret, web.secret, viaB.secret} {
		if strings.Contains(out, s) {
			t.Fatal("a secret reached the log")
		}
	}
	if !strings.Contains(out, "restored the ACL replica") {
		t.Fatal("the restarted gateway did not log restoring its replica")
	}
}

// TestACLTwoGatewaysOneRegion: the primary region's gateways share its
// Redis: a token created at one authorizes at the other within about a
// second, and heartbeats forwarded to the instance's check owner carry
// the client's token (the owner authorizes it again).
func TestACLTwoGatewaysOneRegion(t *testing.T) {
	skipShort(t, "two gateways; ACL unit tests cover the rules")
	rurl := redistest.FromEnv(t)
	use := fmt.Sprintf("acl-r-%06x", rand.Uint32()&0xffffff)
	// A replication token no gateway knows: a forwarded heartbeat passes
	// at the owner only with the client's own token.
	deny := func(c *AgentConfig) {
		c.ACL = ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret, ReplicationToken: "unknown-replication-token"}
	}
	g1 := startFedNodeWith(t, deny, use, use+"-1", rurl)
	g2 := startFedNodeWith(t, deny, use, use+"-2", rurl, g1.serfAddr())
	waitFor(t, 20*time.Second, "both gateways see each other alive", func() bool {
		return gatewayStatusTok(t, g1, use, use+"-2") == "alive" && gatewayStatusTok(t, g2, use, use+"-1") == "alive"
	})
	tok := createToken(t, g1.URL(), rootSecret, `{"rules":[{"service_prefix":"web","access":"write"}]}`)
	start := time.Now()
	waitFor(t, 5*time.Second, "g2 to load the token from the shared Redis", func() bool {
		return callTok(t, "GET", g2.URL()+"/v1/acl/token/self", "", tok.secret).code == 200
	})
	t.Logf("a token created at %s authorized at %s after %s", g1.cfg.NodeName, g2.cfg.NodeName, time.Since(start).Round(time.Millisecond))
	// Enough instances that both gateways own some checks: every
	// heartbeat sent to g1 for an instance g2 owns is forwarded.
	for i := 0; i < 8; i++ {
		inst := fmt.Sprintf("%s/v1/services/web/instances/web-%d", g1.URL(), i)
		callTok(t, "PUT", inst, `{"address":"10.3.0.1","port":80,"check":{"ttl":"1m"}}`, tok.secret).want(t, 200)
		callTok(t, "PUT", inst+"/heartbeat", `{"status":"passing"}`, tok.secret).want(t, 200)
		callTok(t, "PUT", inst+"/heartbeat", `{"status":"passing"}`, "").want(t, 401)
	}
	forwarded := 0
	for i := 0; i < 8; i++ {
		if g1.checkOwnerAddr(regionKey("web", fmt.Sprintf("web-%d", i))) != "" {
			forwarded++
		}
	}
	if forwarded == 0 || forwarded == 8 {
		t.Fatalf("%d of 8 heartbeats were forwarded; want some, not all", forwarded)
	}
	reader := createToken(t, g1.URL(), rootSecret, `{"rules":[{"service_prefix":"web","access":"read"}]}`)
	waitFor(t, 5*time.Second, "g2 to load the reader token", func() bool {
		return callTok(t, "GET", g2.URL()+"/v1/acl/token/self", "", reader.secret).code == 200
	})
	for i := 0; i < 8; i++ {
		callTok(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/web-%d/heartbeat", g1.URL(), i), `{"status":"passing"}`, reader.secret).wantError(t, 403, "needs service:web:write")
	}
}

func gatewayStatusTok(t *testing.T, n *fedNode, regionName, node string) string {
	r := callTok(t, "GET", n.URL()+"/v1/regions", "", rootSecret).want(t, 200)
	list, _ := r.body["regions"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		if m["name"] != regionName {
			continue
		}
		for _, g := range m["gateways"].([]any) {
			gm := g.(map[string]any)
			if gm["name"] == node {
				return gm["status"].(string)
			}
		}
	}
	return ""
}
