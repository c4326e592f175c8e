package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProductionExample starts the three gateways of examples/production
// from their config files, as packaging/meridian.service would, with only
// what cannot hold on a test machine overridden on the command line
// (addresses on 127.0.0.1, embedded stores, the test's certificate files,
// the local gossip profile): TLS, ACLs on deny, encrypted gossip, the
// routing file and every other key come from the files. The three regions
// see each other, and the management token reads them over HTTPS.
func TestProductionExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gateway processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	c := cli{t: t, bin: bin, dir: dir}
	c.must(nil, "tls", "ca", "create")
	regions := []string{"us-east", "eu-west", "ap-south"}
	for _, r := range regions {
		c.must(nil, "tls", "cert", "create", "--region", r)
	}
	key := strings.TrimSpace(c.must(nil, "keyring", "generate"))
	secret := strings.TrimSpace(c.must(nil, "acl", "token", "generate"))
	ca := filepath.Join(dir, "meridian-agent-ca.pem")
	routing, err := filepath.Abs("../../examples/production/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, serf := map[string]string{}, map[string]string{}
	for _, r := range regions {
		httpAddr[r], serf[r] = freeAddr(t), freeAddr(t)
	}
	for i, r := range regions {
		conf, _ := filepath.Abs("../../examples/production/" + r + ".yaml")
		join := serf[regions[(i+1)%3]] // retried until it answers
		env := []string{"MERIDIAN_ENCRYPT=" + key, "MERIDIAN_ACL_INITIAL_TOKEN=" + secret}
		p := startTLSAgent(t, bin, ca, httpAddr[r], env, "--config", conf,
			"--serf-bind", serf[r], "--join", join, "--redis", "", "--gossip-profile", "local",
			"--keyring-file", filepath.Join(dir, r+".keyring"), "--routing", routing,
			"--tls-cert", filepath.Join(dir, r+"-gateway-meridian-0.pem"),
			"--tls-key", filepath.Join(dir, r+"-gateway-meridian-0-key.pem"), "--tls-ca", ca)
		if log := p.logText(); strings.Contains(log, "ignoring environment variable") || strings.Contains(log, secret) || strings.Contains(log, key) {
			t.Fatalf("%s's log warns about the environment or holds a secret:\n%s", r, log)
		}
	}
	env := func(r, token string) []string {
		return []string{"MERIDIAN_ADDR=https://" + httpAddr[r], "MERIDIAN_CACERT=" + ca, "MERIDIAN_TOKEN=" + token}
	}
	if out, err := c.run(env("us-east", ""), "regions"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("regions without a token under acl-default-policy deny (from the file): %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.run(env("eu-west", secret), "regions", "--json")
		var resp struct {
			Regions []struct {
				Name      string `json:"name"`
				Reachable bool   `json:"reachable"`
			} `json:"regions"`
		}
		n := 0
		if err == nil && json.Unmarshal([]byte(out), &resp) == nil {
			for _, r := range resp.Regions {
				if r.Reachable {
					n++
				}
			}
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eu-west does not see three reachable regions within 30s: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "us-east.keyring")); err != nil {
		t.Errorf("the keyring file was not created from MERIDIAN_ENCRYPT: %v", err)
	}
}

// TestSampleConfig starts an agent from packaging/meridian.yaml (the
// systemd unit's config), with only its addresses and store overridden:
// every key of the sample is a flag the agent knows.
func TestSampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway process")
	}
	bin := buildBinary(t)
	conf, _ := filepath.Abs("../../packaging/meridian.yaml")
	key, err := exec.Command(bin, "keyring", "generate").Output()
	if err != nil {
		t.Fatal(err)
	}
	// As meridian.env gives it: the gossip key that creates keyring-file.
	env := []string{"MERIDIAN_ENCRYPT=" + strings.TrimSpace(string(key))}
	p := startAgentProc(t, bin, freeAddr(t), env, "--config", conf, "--redis", "", "--serf-bind", freeAddr(t),
		"--join", freeAddr(t), "--keyring-file", filepath.Join(t.TempDir(), "keyring.json"))
	if log := p.logText(); !strings.Contains(log, `"region":"us-east"`) || strings.Contains(log, "ignoring environment variable") {
		t.Errorf("the sample's json logs and region us-east are not in the log:\n%s", log)
	}
}
