package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

func TestGenerateKey(t *testing.T) {
	k, err := generateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := serfmember.ParseKey(k); err != nil || len(b) != 32 || b[0] != 7 {
		t.Errorf("generateKey = %q: %d bytes, %v; want 32 bytes of 7", k, len(b), err)
	}
	if _, err := generateKey(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("generateKey with 5 random bytes: no error")
	}
}

// regionsAt is the sorted region names of a gateway's /v1/regions.
func regionsAt(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/regions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Regions []struct{ Name string } `json:"regions"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	var names []string
	for _, r := range body.Regions {
		names = append(names, r.Name)
	}
	return strings.Join(names, ",")
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyringCLIEndToEnd: real meridian processes. Two gateways started
// with --encrypt (one from MERIDIAN_ENCRYPT) and --keyring-file federate,
// a gateway without the key never shows up; `meridian keyring` rotates the
// key (generate, install, use, remove) with the files following; the
// restarted gateway comes back from its keyring file although its
// --encrypt is stale; no key ever reaches a log.
func TestKeyringCLIEndToEnd(t *testing.T) {
	skipShort(t, "several gateway processes federating over encrypted Serf; TestGenerateKey and serfmember keyring tests cover the keys")
	bin := buildBinary(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("meridian %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	k1 := strings.TrimSpace(run("keyring", "generate"))
	k2 := strings.TrimSpace(run("keyring", "generate"))
	if b, err := serfmember.ParseKey(k1); err != nil || len(b) != 32 || k1 == k2 {
		t.Fatalf("keyring generate: %q %q: %v", k1, k2, err)
	}

	usHTTP, euHTTP, apHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	usSerf, euSerf, apSerf := freeAddr(t), freeAddr(t), freeAddr(t)
	usFile, euFile := filepath.Join(dir, "us.keyring"), filepath.Join(dir, "eu.keyring")
	common := []string{"--gossip-profile", "local"}
	us := startAgentProc(t, bin, usHTTP, nil, append(common, "--region", "us-east", "--serf-bind", usSerf,
		"--encrypt", k1, "--keyring-file", usFile)...)
	euArgs := append(common, "--region", "eu-west", "--serf-bind", euSerf, "--keyring-file", euFile, "--join", usSerf)
	eu := startAgentProc(t, bin, euHTTP, []string{"MERIDIAN_ENCRYPT=" + k1}, euArgs...)
	ap := startAgentProc(t, bin, apHTTP, nil, append(common, "--region", "ap-south", "--serf-bind", apSerf,
		"--join", usSerf+","+euSerf)...)
	waitUntil(t, 10*time.Second, "us-east and eu-west federated", func() bool {
		return regionsAt(t, usHTTP) == "eu-west,us-east" && regionsAt(t, euHTTP) == "eu-west,us-east"
	})
	time.Sleep(2 * time.Second)
	if got := regionsAt(t, usHTTP); got != "eu-west,us-east" {
		t.Errorf("us-east's regions with an unkeyed gateway trying to join: %s", got)
	}
	if got := regionsAt(t, apHTTP); got != "ap-south" {
		t.Errorf("the unkeyed gateway's regions: %s", got)
	}
	if !strings.Contains(us.logText(), "gossip encryption is on") || !strings.Contains(ap.logText(), "gossip encryption is off") {
		t.Errorf("startup logs do not say whether gossip is encrypted:\n%s\n%s", us.logText(), ap.logText())
	}

	out := run("keyring", "list", "--addr", usHTTP)
	if !strings.Contains(out, "gossip pool: 2 gateways, 2 answered") || !strings.Contains(out, k1) {
		t.Errorf("keyring list:\n%s", out)
	}
	// Errors come back as the gateway's message.
	bad, err := exec.Command(bin, "keyring", "use", k2, "--addr", usHTTP).CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "key is not installed") || !strings.Contains(string(bad), "HTTP 404") {
		t.Errorf("keyring use (not installed): %v\n%s", err, bad)
	}
	bad, err = exec.Command(bin, "keyring", "install", "c2hvcnQ=", "--addr", usHTTP).CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "KEY: decodes to 5 bytes") {
		t.Errorf("keyring install (short key): %v\n%s", err, bad)
	}
	if out := run("keyring", "install", k2, "--addr", usHTTP); !strings.Contains(out, "installed the key on 2 of 2 gateways") {
		t.Errorf("keyring install: %s", out)
	}
	run("keyring", "use", k2, "--addr", euHTTP)
	// The client's --addr may come from MERIDIAN_ADDR.
	cmd := exec.Command(bin, "keyring", "remove", k1)
	cmd.Env = append(os.Environ(), "MERIDIAN_ADDR="+usHTTP)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "removed the key on 2 of 2") {
		t.Fatalf("keyring remove: %v\n%s", err, out)
	}
	out = run("keyring", "list", "--addr", euHTTP)
	if strings.Contains(out, k1) || !strings.Contains(out, "\n"+k2) || !slices.Equal(strings.Fields(strings.SplitN(out, "\n"+k2, 2)[1])[:2], []string{"2/2", "2/2"}) {
		t.Errorf("keyring list after rotation:\n%s", out)
	}
	for _, f := range []string{usFile, euFile} {
		keys, err := serfmember.ReadKeyringFile(f)
		if err != nil || len(keys) != 1 || serfmember.EncodeKey(keys[0]) != k2 {
			t.Errorf("%s after rotation: %d keys, %v; want [k2]", f, len(keys), err)
		}
	}

	// Restart eu-west with its stale MERIDIAN_ENCRYPT (k1): the file wins.
	eu.cmd.Process.Signal(syscall.SIGTERM)
	if err := eu.cmd.Wait(); err != nil {
		t.Fatalf("eu-west exit: %v\n%s", err, eu.logText())
	}
	eu2 := startAgentProc(t, bin, euHTTP, []string{"MERIDIAN_ENCRYPT=" + k1}, euArgs...)
	waitUntil(t, 10*time.Second, "the restarted eu-west back in the pool", func() bool {
		return regionsAt(t, usHTTP) == "eu-west,us-east" && regionsAt(t, euHTTP) == "eu-west,us-east"
	})
	if !strings.Contains(eu2.logText(), "--encrypt ignored") {
		t.Errorf("restart log does not say the keyring file won:\n%s", eu2.logText())
	}
	for _, p := range []*agentProc{us, eu, eu2, ap} {
		for _, k := range []string{k1, k2} {
			if strings.Contains(p.logText(), k) {
				t.Errorf("a gossip key is in the log:\n%s", p.logText())
			}
		}
	}
}
