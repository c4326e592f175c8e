package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
)

// buildBinary builds the meridian binary once per test binary run (see
// buildonce_test.go) and returns its path; a failed build fails every
// test that asks for it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin, out, err := builtBinary()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type agentProc struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

func startAgentProc(t *testing.T, bin, addr string, env []string, args ...string) *agentProc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--serf-bind") {
		// Not the default 7946: test binaries of other packages run at
		// the same time.
		args = append(args, "--serf-bind", "127.0.0.1:0")
	}
	cmd := exec.Command(bin, append([]string{"agent", "--http", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, addr: addr, log: logf}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("agent on %s not healthy within 10s; log:\n%s", addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *agentProc) logText() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
	m["_code"] = resp.StatusCode
	return m
}

// TestSIGKILLRestartKeepsState: a gateway killed with SIGKILL and restarted
// gets its registry back from Redis. Registration goes through the CLI, as
// a user would.
func TestSIGKILLRestartKeepsState(t *testing.T) {
	bin := buildBinary(t)
	redisURL := redistest.FromEnv(t)
	region := fmt.Sprintf("kill-%08x", rand.Uint32())
	addr := freeAddr(t)
	p := startAgentProc(t, bin, addr, nil, "--region", region, "--redis", redisURL)

	out, err := exec.Command(bin, "register", "web", "web-1", "--address", "10.0.0.5", "--port", "8080",
		"--tag", "v2", "--addr", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered web/web-1") {
		t.Fatalf("meridian register: %v\n%s", err, out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()

	startAgentProc(t, bin, addr, nil, "--region", region, "--redis", redisURL)
	out, err = exec.Command(bin, "instances", "web", "--addr", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "web-1") || !strings.Contains(string(out), "10.0.0.5:8080") {
		t.Fatalf("after SIGKILL and restart, meridian instances web: %v\n%s", err, out)
	}
}

// TestEmbeddedStoreAndGracefulShutdown: without --redis the agent says its
// data will not survive, serves, and exits 0 on SIGTERM.
func TestEmbeddedStoreAndGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	p := startAgentProc(t, bin, addr, []string{"MERIDIAN_REGION=eu-west"})
	if !strings.Contains(p.logText(), "data will not survive a restart") {
		t.Fatalf("embedded-store warning missing from the log:\n%s", p.logText())
	}
	if r := getJSON(t, "http://"+addr+"/v1/services"); r["region"] != "eu-west" {
		t.Fatalf("region from MERIDIAN_REGION: got %v", r["region"])
	}
	// A blocking query in flight must not hold up the shutdown.
	go http.Get("http://" + addr + "/v1/services/web?index=0&wait=5m")
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.cmd.Wait()
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("SIGTERM: exit %v after %s; log:\n%s", err, time.Since(start), p.logText())
	}
	if !strings.Contains(p.logText(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.logText())
	}
}

func TestCLIErrors(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	startAgentProc(t, bin, addr, nil, "--region", "us-east")
	out, err := exec.Command(bin, "register", "Bad_Name!", "x", "--address", "10.0.0.5", "--port", "80", "--addr", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "field service") || !strings.Contains(string(out), "HTTP 400") {
		t.Fatalf("register with a bad name: %v\n%s", err, out)
	}
	// Without --address nothing is registered (it used to register
	// 127.0.0.1 and print success).
	out, err = exec.Command(bin, "register", "web", "x", "--port", "80", "--addr", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--address is required") {
		t.Fatalf("register without --address: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "register", "web", "lo-1", "--address-from-interface", "lo", "--port", "80", "--weight", "0", "--addr", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "at 127.0.0.1:80") {
		t.Fatalf("register --address-from-interface lo --weight 0: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "instances", "web", "--addr", addr, "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"weight":0`) {
		t.Fatalf("a drained instance is listed with weight 0: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "deregister", "web", "nobody", "--addr", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HTTP 404") {
		t.Fatalf("deregister unknown: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "agent").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--region is required") {
		t.Fatalf("agent without region: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "meridian ") {
		t.Fatalf("version: %v\n%s", err, out)
	}
}

func TestResolveFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "meridian.yaml")
	os.WriteFile(cfg, []byte("region: from-file\nhttp: 127.0.0.1:1\nlog_level: debug\n"), 0o644)
	t.Setenv("MERIDIAN_HTTP", "127.0.0.1:2")
	t.Setenv("MERIDIAN_LOG_LEVEL", "warn")

	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("config", "", "")
	region := fs.String("region", "", "")
	httpAddr := fs.String("http", "127.0.0.1:8700", "")
	level := fs.String("log-level", "info", "")
	if err := fs.Parse([]string{"--config", cfg, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if err := resolveFlags(fs); err != nil {
		t.Fatal(err)
	}
	if *region != "from-file" || *httpAddr != "127.0.0.1:2" || *level != "error" {
		t.Fatalf("got region %q http %q level %q; want file < env < flag: from-file, 127.0.0.1:2, error", *region, *httpAddr, *level)
	}

	os.WriteFile(cfg, []byte("regoin: typo\n"), 0o644)
	fs2 := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs2.String("config", cfg, "")
	fs2.String("region", "", "")
	if err := resolveFlags(fs2); err == nil || !strings.Contains(err.Error(), "regoin") {
		t.Fatalf("unknown key: got %v, want an error naming it", err)
	}
}

var _ = context.Background

// cli runs the meridian binary in a directory, for tests that drive it
// the way a person would.
type cli struct {
	t        *testing.T
	bin, dir string
}

// run runs meridian with args and env added to the test's environment and
// returns its combined output.
func (c cli) run(env []string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must is run, failing the test when the command fails.
func (c cli) must(env []string, args ...string) string {
	c.t.Helper()
	out, err := c.run(env, args...)
	if err != nil {
		c.t.Fatalf("meridian %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
