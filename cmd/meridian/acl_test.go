package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestACLCLI drives a deny-by-default agent process through the CLI only:
// the initial token from MERIDIAN_ACL_INITIAL_TOKEN, meridian acl token
// create|list|read|self|delete, --token and MERIDIAN_TOKEN on client
// subcommands; no secret in the agent's log.
func TestACLCLI(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	const root = "cli-root-5a1f3c9e-77d2-4c1b-a0e4-9b8d6f2e1c3a"
	p := startAgentProc(t, bin, addr, []string{"MERIDIAN_ACL_INITIAL_TOKEN=" + root},
		"--region", "us-east", "--serf-bind", "", "--acl-default-policy", "deny")
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--addr", addr)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	asRoot := []string{"MERIDIAN_TOKEN=" + root}

	if out, err := run(nil, "services"); err == nil || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("services without a token: %v\n%s", err, out)
	}
	out, err := run(asRoot, "acl", "token", "create", "--description", "web deployer", "--rule", "service_prefix:web:write", "--rule", "operator:read")
	if err != nil {
		t.Fatalf("acl token create: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`AccessorID:\s+(\S+)`).FindStringSubmatch(out)
	secret := regexp.MustCompile(`SecretID:\s+(\S+)`).FindStringSubmatch(out)
	if id == nil || secret == nil || !strings.Contains(out, "service_prefix:web:write operator:read") {
		t.Fatalf("acl token create printed:\n%s", out)
	}
	if out, err := run(nil, "register", "web", "web-1", "--address", "10.0.0.5", "--port", "80", "--token", secret[1]); err != nil || !strings.Contains(out, "registered web/web-1") {
		t.Fatalf("register web with the token: %v\n%s", err, out)
	}
	if out, err := run([]string{"MERIDIAN_TOKEN=" + secret[1]}, "register", "api", "api-1", "--address", "10.0.0.6", "--port", "80"); err == nil || !strings.Contains(out, "needs service:api:write") || !strings.Contains(out, "HTTP 403") {
		t.Fatalf("register api with a web token: %v\n%s", err, out)
	}
	if out, err := run(nil, "regions", "--token", secret[1]); err != nil {
		t.Fatalf("regions with operator:read: %v\n%s", err, out)
	}
	if out, err := run(nil, "regions", "forget", "eu-west", "--token", secret[1]); err == nil || !strings.Contains(out, "needs operator:write") {
		t.Fatalf("regions forget with operator:read: %v\n%s", err, out)
	}
	if out, err := run(nil, "instances", "web", "--json", "--token", secret[1]); err != nil || !strings.Contains(out, `"registered_by":"`+id[1]+`"`) {
		t.Fatalf("instances web: %v\n%s", err, out)
	}
	out, err = run(asRoot, "acl", "token", "list")
	if err != nil || !strings.Contains(out, id[1]) || !strings.Contains(out, "(management: everything)") || strings.Contains(out, secret[1]) {
		t.Fatalf("acl token list: %v\n%s", err, out)
	}
	if out, err := run(nil, "acl", "token", "list", "--token", secret[1]); err == nil || !strings.Contains(out, "needs acl:write") {
		t.Fatalf("acl token list without acl:write: %v\n%s", err, out)
	}
	if out, err := run(asRoot, "acl", "token", "read", id[1]); err != nil || !strings.Contains(out, "web deployer") {
		t.Fatalf("acl token read: %v\n%s", err, out)
	}
	if out, err := run(nil, "acl", "token", "self", "--token", secret[1]); err != nil || !strings.Contains(out, id[1]) {
		t.Fatalf("acl token self: %v\n%s", err, out)
	}
	if out, err := run(asRoot, "acl", "token", "create", "--rule", "service:web:admin"); err == nil || !strings.Contains(out, "service:web:admin") {
		t.Fatalf("acl token create with a bad rule: %v\n%s", err, out)
	}
	if out, err := run(asRoot, "acl", "token", "delete", id[1]); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("acl token delete: %v\n%s", err, out)
	}
	if out, err := run(nil, "heartbeat", "web", "web-1", "--token", secret[1]); err == nil || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("heartbeat with a deleted token: %v\n%s", err, out)
	}
	log := p.logText()
	if strings.Contains(log, root) || strings.Contains(log, secret[1]) {
		t.Fatal("a secret reached the agent's log")
	}
	if !strings.Contains(log, "ACLs are on") || !strings.Contains(log, id[1]) {
		t.Fatalf("the agent's log lacks the ACL lines:\n%s", log)
	}
}
