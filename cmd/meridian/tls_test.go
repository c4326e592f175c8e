package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/meridiantls"
)

// TestTLSFromScratch: the README's steps with real processes: make a CA and
// certificates with meridian tls, start two TLS gateways (one requiring
// client certificates) that federate over mutual TLS, and use the client
// subcommands over HTTPS.
func TestTLSFromScratch(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	c := cli{t: t, bin: bin, dir: dir}
	run := c.run
	mustRun := func(args ...string) string {
		t.Helper()
		return c.must(nil, args...)
	}
	mustRun("tls", "ca", "create")
	mustRun("tls", "cert", "create", "--region", "us-east")
	mustRun("tls", "cert", "create", "--region", "eu-west")
	if out := mustRun("tls", "cert", "create", "--client"); !strings.Contains(out, "client-meridian-0.pem") {
		t.Fatalf("client certificate: %s", out)
	}
	if st, err := os.Stat(filepath.Join(dir, "meridian-agent-ca-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", st, err)
	}
	ca := filepath.Join(dir, "meridian-agent-ca.pem")
	cert := func(name string) string { return filepath.Join(dir, name) }

	// Flag errors name the flag.
	if out, err := run(nil, "agent", "--region", "us-east", "--tls-cert", cert("us-east-gateway-meridian-0.pem"), "--tls-ca", ca); err == nil || !strings.Contains(out, "tls-key") {
		t.Fatalf("--tls-cert without --tls-key: %v\n%s", err, out)
	}

	usHTTP, euHTTP, usSerf := freeAddr(t), freeAddr(t), freeAddr(t)
	us := startTLSAgent(t, bin, ca, usHTTP, []string{
		"MERIDIAN_TLS_CERT=" + cert("us-east-gateway-meridian-0.pem"),
		"MERIDIAN_TLS_KEY=" + cert("us-east-gateway-meridian-0-key.pem"),
		"MERIDIAN_TLS_CA=" + ca, "MERIDIAN_TLS_VERIFY_INCOMING=true",
	}, "--region", "us-east", "--serf-bind", usSerf, "--gossip-profile", "local")
	startTLSAgent(t, bin, ca, euHTTP, nil, "--region", "eu-west", "--serf-bind", freeAddr(t), "--gossip-profile", "local",
		"--join", usSerf, "--tls-cert", cert("eu-west-gateway-meridian-0.pem"), "--tls-key", cert("eu-west-gateway-meridian-0-key.pem"), "--tls-ca", ca)

	clientEnv := []string{"MERIDIAN_CACERT=" + ca, "MERIDIAN_CLIENT_CERT=" + cert("client-meridian-0.pem"), "MERIDIAN_CLIENT_KEY=" + cert("client-meridian-0-key.pem")}
	if out, err := run(nil, "register", "web", "web-1", "--address", "10.0.0.5", "--port", "8080", "--addr", "https://"+euHTTP, "--ca-file", ca); err != nil || !strings.Contains(out, "registered web/web-1") {
		t.Fatalf("register over HTTPS: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := run(clientEnv, "instances", "web", "--region", "eu-west", "--addr", "https://"+usHTTP)
		if err == nil && strings.Contains(out, "10.0.0.5:8080") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eu-west's registration did not reach us-east over mutual TLS: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// us-east requires a client certificate (TLS 1.3 reports the refusal
	// after the handshake: "certificate required", or a broken pipe or
	// reset, depending on timing); a plain http:// address fails.
	if out, err := run([]string{"MERIDIAN_CACERT=" + ca}, "services", "--addr", "https://"+usHTTP); err == nil || !strings.Contains(out, "unreachable") {
		t.Fatalf("services without a client certificate: %v\n%s", err, out)
	}
	if out, err := run(clientEnv, "services", "--addr", "http://"+usHTTP); err == nil {
		t.Fatalf("plain HTTP to a TLS gateway worked:\n%s", out)
	}
	if out, err := run(nil, "services", "--addr", "https://"+usHTTP, "--ca-file", ca, "--client-cert", cert("client-meridian-0.pem")); err == nil || !strings.Contains(out, "client-key") {
		t.Fatalf("--client-cert without --client-key: %v\n%s", err, out)
	}

	// SIGHUP re-reads the TLS files; the gateway keeps serving.
	if err := us.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(us.logText(), "TLS files reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP; log:\n%s", us.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := run(clientEnv, "services", "--addr", "https://"+usHTTP); err != nil {
		t.Fatalf("services after SIGHUP: %v\n%s", err, out)
	}
}

// startTLSAgent starts an agent process and waits until it answers over
// HTTPS.
func startTLSAgent(t *testing.T, bin, ca, addr string, env []string, args ...string) *agentProc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"agent", "--http", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	tc, err := meridiantls.ClientConfig(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A handshake refused for want of a client certificate also
		// shows the TLS listener is up.
		resp, err := c.Get("https://" + addr + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &agentProc{cmd: cmd, addr: addr, log: logf}
			}
		} else if strings.Contains(err.Error(), "certificate required") {
			return &agentProc{cmd: cmd, addr: addr, log: logf}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("agent on %s not up over HTTPS within 10s: %v; log:\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
