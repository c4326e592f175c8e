package gateway

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian-sd/meridian/federation"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

func gossipKey(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return serfmember.EncodeKey(b)
}

func regionNames(t *testing.T, n *fedNode) []string {
	t.Helper()
	var out []string
	for name := range regionsOf(t, n) {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// keyringList GETs /v1/operator/keyring and returns its one pool.
func keyringList(t *testing.T, n *fedNode) KeyringResponse {
	t.Helper()
	r := call(t, "GET", n.URL()+"/v1/operator/keyring", "").want(t, 200)
	var pools []KeyringResponse
	if err := json.Unmarshal([]byte(r.raw), &pools); err != nil || len(pools) != 1 {
		t.Fatalf("keyring list: %v, %d pools; body %s", err, len(pools), r.raw)
	}
	return pools[0]
}

func keyBody(k string) string { return fmt.Sprintf(`{"Key": %q}`, k) }

// TestGossipEncryptionEndToEnd: gateways with real Serf on 127.0.0.1.
// Two encrypted gateways federate; a gateway without a key and one with
// another key never appear in their /v1/regions (nor they in theirs);
// the key is rotated through /v1/operator/keyring with the pool staying
// together and the keyring files following; a gateway restarted with a
// stale --encrypt comes back from its keyring file; the API's errors.
func TestGossipEncryptionEndToEnd(t *testing.T) {
	skipShort(t, "several gateways over encrypted Serf; serfmember keyring tests cover the keys")
	dir := t.TempDir()
	k1, k2, k3 := gossipKey(t, 32), gossipKey(t, 32), gossipKey(t, 16)
	usFile, euFile := filepath.Join(dir, "us.keyring"), filepath.Join(dir, "eu.keyring")
	keyed := func(key, file string) func(*AgentConfig) {
		return func(c *AgentConfig) { c.Encrypt, c.KeyringFile = key, file }
	}
	us := startFedNodeWith(t, keyed(k1, usFile), "us-east", "us-1", "")
	eu := startFedNodeWith(t, keyed(k1, euFile), "eu-west", "eu-1", "", us.serfAddr())
	waitFor(t, 5*time.Second, "us-east and eu-west federated", func() bool {
		return slices.Equal(regionNames(t, us), []string{"eu-west", "us-east"}) &&
			slices.Equal(regionNames(t, eu), []string{"eu-west", "us-east"})
	})

	plain := startFedNode(t, "ap-south", "ap-1", "", us.serfAddr(), eu.serfAddr())
	wrong := startFedNodeWith(t, keyed(k3, ""), "sa-east", "sa-1", "", us.serfAddr(), eu.serfAddr())
	time.Sleep(3 * time.Second) // joins retried, dozens of gossip rounds
	for _, n := range []*fedNode{us, eu} {
		if got := regionNames(t, n); !slices.Equal(got, []string{"eu-west", "us-east"}) {
			t.Errorf("%s's /v1/regions: %v; want only eu-west, us-east", n.region, got)
		}
	}
	for _, n := range []*fedNode{plain, wrong} {
		if got := regionNames(t, n); !slices.Equal(got, []string{n.region}) {
			t.Errorf("rogue %s's /v1/regions: %v; want only itself", n.region, got)
		}
		if ms := n.Members.Members(); len(ms) != 1 {
			t.Errorf("rogue %s knows %d members, want 1", n.region, len(ms))
		}
	}

	// The API's answers and errors.
	l := keyringList(t, us)
	if !l.WAN || l.NumNodes != 2 || l.NumResp != 2 || l.Keys[k1] != 2 || l.PrimaryKeys[k1] != 2 || len(l.Keys) != 1 {
		t.Errorf("keyring list = %+v; want k1 on 2 of 2", l)
	}
	ops := []struct {
		method, body string
		code         int
		want         string
	}{
		{"POST", `{"Key": "bm90IGEga2V5"}`, 400, "decodes to 9 bytes"},
		{"POST", `{"Key": ""}`, 400, "empty key"},
		{"POST", `[1]`, 400, "want a JSON object"},
		{"PUT", keyBody(k2), 404, "key is not installed"},
		{"DELETE", keyBody(k1), 409, "primary key cannot be removed"},
		{"PATCH", keyBody(k2), 405, "not allowed"},
	}
	for _, op := range ops {
		r := call(t, op.method, us.URL()+"/v1/operator/keyring", op.body)
		if r.code != op.code || !strings.Contains(fmt.Sprint(r.body["error"]), op.want) {
			t.Errorf("%s %s: HTTP %d %s; want %d with %q", op.method, op.body, r.code, r.raw, op.code, op.want)
		}
		if strings.Contains(r.raw, k1) || strings.Contains(r.raw, k2) {
			t.Errorf("%s: error body repeats a key: %s", op.method, r.raw)
		}
	}
	r := call(t, "GET", plain.URL()+"/v1/operator/keyring", "").want(t, 400)
	if !strings.Contains(r.raw, "gossip encryption is off") {
		t.Errorf("unencrypted gateway: %s", r.raw)
	}
	lone := startAgent(t, AgentConfig{Region: "lone"})
	r = call(t, "GET", lone.URL()+"/v1/operator/keyring", "").want(t, 404)
	if !strings.Contains(r.raw, "federation is off") {
		t.Errorf("lone gateway: %s", r.raw)
	}

	// Rotation: install k2, use it, remove k1.
	call(t, "POST", us.URL()+"/v1/operator/keyring", keyBody(k2)).want(t, 200)
	if l := keyringList(t, eu); l.Keys[k1] != 2 || l.Keys[k2] != 2 || l.PrimaryKeys[k1] != 2 {
		t.Errorf("after install: %+v", l)
	}
	call(t, "PUT", eu.URL()+"/v1/operator/keyring", keyBody(k2)).want(t, 200)
	call(t, "DELETE", us.URL()+"/v1/operator/keyring", keyBody(k1)).want(t, 200)
	l = keyringList(t, eu)
	if len(l.Keys) != 1 || l.Keys[k2] != 2 || l.PrimaryKeys[k2] != 2 {
		t.Errorf("after rotation: %+v; want only k2, primary on 2 of 2", l)
	}
	for _, f := range []string{usFile, euFile} {
		keys, err := serfmember.ReadKeyringFile(f)
		if err != nil || len(keys) != 1 || serfmember.EncodeKey(keys[0]) != k2 {
			t.Errorf("%s after rotation: %d keys, %v; want [k2]", f, len(keys), err)
		}
	}
	if got := gatewayStatus(t, us, "eu-west", "eu-1"); got != "alive" {
		t.Errorf("eu-1 at us-east after rotation: %q, want alive", got)
	}

	// Restart eu-west's gateway (a crash, then the same name and port)
	// with the stale --encrypt k1: its keyring file (k2) wins; it rejoins.
	_, port, _ := net.SplitHostPort(eu.serfAddr())
	bindPort, _ := strconv.Atoi(port)
	eu.Kill()
	eu2 := &fedNode{region: "eu-west", http: &cutHTTP{}}
	eu2.cfg = eu.cfg
	eu2.cfg.FetchClient = &http.Client{Transport: eu2.http, Timeout: 2 * time.Second}
	eu2.cfg.NewMembership = func(c serfmember.SerfConfig) (federation.Membership, error) {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: bindPort})
		if err != nil {
			return nil, err
		}
		eu2.faults = serfmember.NewFaultTransport(nt)
		c.Transport = eu2.faults
		c.AdvertiseAddr = fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
		return serfmember.NewSerfMembership(c)
	}
	logs := &syncBuffer{}
	eu2.cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	eu2.Agent = startAgent(t, eu2.cfg)
	waitFor(t, 10*time.Second, "the restarted eu-west gateway back in the pool", func() bool {
		return gatewayStatus(t, us, "eu-west", "eu-1") == "alive" &&
			slices.Equal(regionNames(t, eu2), []string{"eu-west", "us-east"})
	})
	if l := keyringList(t, eu2); len(l.Keys) != 1 || l.Keys[k2] != 2 {
		t.Errorf("after restart: %+v; want k2 on 2 of 2", l)
	}
	out := logs.String()
	if !strings.Contains(out, "gossip encryption is on") || !strings.Contains(out, "--encrypt ignored") {
		t.Errorf("restart log does not say encryption is on from the file:\n%s", out)
	}
	for _, k := range []string{k1, k2, k3} {
		if strings.Contains(out, k) {
			t.Errorf("a gossip key is in the log:\n%s", out)
		}
	}

	// A gateway that does not answer: 502 with what the others said.
	eu2.Kill()
	r = call(t, "POST", us.URL()+"/v1/operator/keyring", keyBody(k3))
	if r.code != 502 || r.body["num_nodes"] != 2.0 || r.body["num_resp"] != 1.0 {
		t.Errorf("install with a dead gateway: HTTP %d %s; want 502, 1 of 2 answered", r.code, r.raw)
	}
}

func TestAgentConfigValidateEncryption(t *testing.T) {
	base := AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", SerfBind: "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		edit func(*AgentConfig)
		want string // "" = valid
	}{
		{"key", func(c *AgentConfig) { c.Encrypt = serfmember.EncodeKey(make([]byte, 24)) }, ""},
		{"key and file", func(c *AgentConfig) { c.Encrypt, c.KeyringFile = serfmember.EncodeKey(make([]byte, 16)), "/tmp/k" }, ""},
		{"bad base64", func(c *AgentConfig) { c.Encrypt = "%%%" }, "encrypt: not valid standard base64"},
		{"short key", func(c *AgentConfig) { c.Encrypt = serfmember.EncodeKey(make([]byte, 8)) }, "encrypt: decodes to 8 bytes"},
		{"no federation", func(c *AgentConfig) {
			c.SerfBind, c.Encrypt = "", serfmember.EncodeKey(make([]byte, 32))
		}, "gossip encryption needs federation"},
	} {
		c := base
		tc.edit(&c)
		err := c.Validate()
		if (tc.want == "" && err != nil) || (tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want))) {
			t.Errorf("%s: Validate() = %v; want %q", tc.name, err, tc.want)
		}
	}
}
