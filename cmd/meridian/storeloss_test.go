package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
)

// TestOnStoreLossFlag: two agent processes (two regions) share a real
// redis-server without persistence, which is killed and restarted empty.
// The default agent restores its catalog; the one started with
// --on-store-loss accept serves the emptied store and says so at ERROR.
func TestOnStoreLossFlag(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "agent", "--region", "x", "--on-store-loss", "ignore").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "on-store-loss: must be restore or accept") {
		t.Fatalf("--on-store-loss ignore: %v\n%s", err, out)
	}
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "no", "--save", ""))
	res := startAgentProc(t, bin, freeAddr(t), nil, "--region", "res", "--redis", srv.URL(), "--catch-up", "100ms")
	acc := startAgentProc(t, bin, freeAddr(t), nil, "--region", "acc", "--redis", srv.URL(), "--catch-up", "100ms", "--on-store-loss", "accept")
	put := func(addr, id string) int {
		req, _ := http.NewRequest("PUT", "http://"+addr+"/v1/services/web/instances/"+id, strings.NewReader(`{"address":"10.0.0.5","port":80}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ids := func(addr string) string {
		var out []string
		list, _ := getJSON(t, "http://"+addr+"/v1/services/web")["instances"].([]any)
		for _, x := range list {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		return strings.Join(out, " ")
	}
	for _, p := range []*agentProc{res, acc} {
		for i := range 3 {
			if code := put(p.addr, fmt.Sprint("w", i)); code != 200 {
				t.Fatalf("register: HTTP %d", code)
			}
		}
	}
	srv.Kill(t)
	srv.Restart(t)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nres log:\n%s\nacc log:\n%s", what, res.logText(), acc.logText())
			}
		}
	}
	wait("a registration after the loss", func() bool { return put(acc.addr, "late") == 200 })
	wait("the default agent to restore its catalog", func() bool {
		h := getJSON(t, "http://"+res.addr+"/v1/health")
		return strings.Contains(fmt.Sprint(h["checks"]), "restored:true") && ids(res.addr) == "w0 w1 w2"
	})
	wait("the accepting agent to serve the emptied store", func() bool { return ids(acc.addr) == "late" })
	if !strings.Contains(res.logText(), "level=ERROR msg=\"store data loss") {
		t.Fatalf("restoring agent did not log the loss at ERROR:\n%s", res.logText())
	}
	if !strings.Contains(acc.logText(), "level=ERROR msg=\"store data loss accepted") {
		t.Fatalf("accepting agent did not say it accepted the loss at ERROR:\n%s", acc.logText())
	}
}
