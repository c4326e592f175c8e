package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecureFederationFromScratch runs the README's "Securing a federation"
// with real processes and nothing but meridian commands: a CA and
// certificates, a gossip key, an initial management token, three gateways
// with TLS (client certificates required), ACLs on deny and encrypted
// gossip. A token created in the primary region authorizes in another
// region; without a token or with the wrong rule the API refuses; a gateway
// without the gossip key never joins; no secret reaches any log.
func TestSecureFederationFromScratch(t *testing.T) {
	skipShort(t, "three gateway processes with TLS, ACLs and encrypted Serf; TestTLSFromScratch and TestACLCLI cover one process")
	bin := buildBinary(t)
	dir := t.TempDir()
	c := cli{t: t, bin: bin, dir: dir}
	run, must := c.run, c.must
	must(nil, "tls", "ca", "create")
	regions := []string{"us-east", "eu-west", "ap-south"}
	for _, r := range regions {
		must(nil, "tls", "cert", "create", "--region", r)
	}
	must(nil, "tls", "cert", "create", "--client")
	key := strings.TrimSpace(must(nil, "keyring", "generate"))
	secret := strings.TrimSpace(must(nil, "acl", "token", "generate"))
	if len(key) < 20 || len(secret) < 20 {
		t.Fatalf("generated key %q, secret %q", key, secret)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	ca := file("meridian-agent-ca.pem")

	httpAddr := map[string]string{}
	var procs []*agentProc
	var primarySerf string
	for i, r := range regions {
		httpAddr[r] = freeAddr(t)
		serf := freeAddr(t)
		args := []string{"--region", r, "--serf-bind", serf, "--gossip-profile", "local",
			"--tls-cert", file(r + "-gateway-meridian-0.pem"), "--tls-key", file(r + "-gateway-meridian-0-key.pem"),
			"--tls-ca", ca, "--tls-verify-incoming",
			"--keyring-file", file(r + ".keyring"),
			"--acl-default-policy", "deny", "--primary-region", "us-east"}
		if i == 0 {
			primarySerf = serf
		} else {
			args = append(args, "--join", primarySerf)
		}
		env := []string{"MERIDIAN_ENCRYPT=" + key, "MERIDIAN_ACL_INITIAL_TOKEN=" + secret}
		procs = append(procs, startTLSAgent(t, bin, ca, httpAddr[r], env, args...))
	}
	client := func(r, token string) []string {
		return []string{"MERIDIAN_ADDR=https://" + httpAddr[r], "MERIDIAN_CACERT=" + ca,
			"MERIDIAN_CLIENT_CERT=" + file("client-meridian-0.pem"), "MERIDIAN_CLIENT_KEY=" + file("client-meridian-0-key.pem"),
			"MERIDIAN_TOKEN=" + token}
	}
	eventually := func(what string, f func() (string, bool)) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, ok := f()
			if ok {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s; last output:\n%s", what, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The three regions federate over mutual TLS and encrypted gossip.
	eventually("three regions in eu-west's view", func() (string, bool) {
		out, err := run(client("eu-west", secret), "regions")
		return out, err == nil && strings.Contains(out, "us-east") && strings.Contains(out, "ap-south")
	})

	// A token made in the primary region...
	out := must(client("us-east", secret), "acl", "token", "create", "--description", "web deployer",
		"--rule", "service_prefix:web:write", "--json")
	var tok struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	// ...authorizes in ap-south.
	eventually("the web token to register in ap-south", func() (string, bool) {
		out, err := run(client("ap-south", tok.Secret), "register", "web", "web-1", "--address", "10.0.0.5", "--port", "8080")
		return out, err == nil && strings.Contains(out, "registered web/web-1")
	})
	if out, err := run(client("ap-south", tok.Secret), "register", "api", "api-1", "--address", "10.0.0.6", "--port", "8080"); err == nil || !strings.Contains(out, "403") || !strings.Contains(out, "service:api:write") {
		t.Fatalf("web token registering api: %v\n%s", err, out)
	}
	if out, err := run(client("ap-south", ""), "register", "web", "web-2", "--address", "10.0.0.7", "--port", "8080"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("anonymous register: %v\n%s", err, out)
	}
	if out, err := run(client("eu-west", tok.Secret), "regions", "forget", "ap-south"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("forget without operator write: %v\n%s", err, out)
	}
	// Without the client certificate the gateway refuses the handshake.
	if out, err := run([]string{"MERIDIAN_ADDR=https://" + httpAddr["us-east"], "MERIDIAN_CACERT=" + ca, "MERIDIAN_TOKEN=" + secret}, "services"); err == nil {
		t.Fatalf("no client certificate: served\n%s", out)
	}
	// The registration made in ap-south is read in us-east.
	eventually("ap-south's web-1 in us-east", func() (string, bool) {
		out, err := run(client("us-east", secret), "instances", "web", "--region", "ap-south")
		return out, err == nil && strings.Contains(out, "10.0.0.5:8080")
	})

	// A gateway with another gossip key never joins.
	otherKey := strings.TrimSpace(must(nil, "keyring", "generate"))
	must(nil, "tls", "cert", "create", "--region", "rogue")
	rogue := startTLSAgent(t, bin, ca, freeAddr(t), []string{"MERIDIAN_ENCRYPT=" + otherKey, "MERIDIAN_ACL_INITIAL_TOKEN=" + secret},
		"--region", "rogue", "--serf-bind", freeAddr(t), "--gossip-profile", "local", "--join", primarySerf,
		"--tls-cert", file("rogue-gateway-meridian-0.pem"), "--tls-key", file("rogue-gateway-meridian-0-key.pem"), "--tls-ca", ca,
		"--acl-default-policy", "deny", "--primary-region", "us-east")
	procs = append(procs, rogue)
	time.Sleep(3 * time.Second)
	if out := must(client("us-east", secret), "regions"); strings.Contains(out, "rogue") {
		t.Fatalf("a gateway with another gossip key joined:\n%s", out)
	}

	for _, p := range procs {
		log := p.logText()
		for name, s := range map[string]string{"initial token": secret, "web token": tok.Secret, "gossip key": key, "rogue key": otherKey} {
			if strings.Contains(log, s) {
				t.Fatalf("the %s appears in a gateway's log:\n%s", name, log)
			}
		}
	}
}
