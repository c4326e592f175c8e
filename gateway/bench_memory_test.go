package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/federation/serfmember"
	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/redisstore"
)

// memChildEnv names the role TestMemoryChild plays in a child process of
// BenchmarkMemoryPerInstance; memInstancesEnv overrides the instance count;
// memNoReleaseEnv turns the gateways' memory release off.
const (
	memChildEnv     = "MERIDIAN_MEM_ROLE"
	memInstancesEnv = "MERIDIAN_MEM_INSTANCES"
	memNoReleaseEnv = "MERIDIAN_MEM_NO_RELEASE" // set: the gateways do not return idle memory
)

// BenchmarkMemoryPerInstance reports the resident memory per instance of
// a gateway at 100,000 instances (MERIDIAN_MEM_INSTANCES overrides), as
// owner-B/inst (the region's own gateway, its catalog in a real
// redis-server) and replica-B/inst (a gateway of another region holding
// only the replica, synced over real Serf and HTTP, the owner stopped
// before the measure), each after answering one lookup of every service
// (so the encoded answers it keeps are counted). Each runs in its own
// process (this test binary, TestMemoryChild), so one's memory is not
// counted in the other's. The RSS is the whole process's (the runtime and
// test binary count against the instances), read once it has settled
// (unchanged for memSettle) with nothing forced by the benchmark: what a
// running gateway shows, including what it returns to the OS on its own
// (memrelease.go). The goal is 1,024 B/inst for both.
//
// Beside it: -gc-only-B/inst after a runtime.GC, -freed-B/inst after
// debug.FreeOSMemory too (the floor: live heap plus runtime),
// -heap-B/inst the live heap alone, -peak-B/inst the peak RSS (VmHWM:
// loading a snapshot holds its decoded copy; the replica's includes the
// owner's, which ran in the same process), and -over-idle-B/inst the
// settled RSS above the same gateway's with one instance (the runtime and
// binary, about 25 MB, not counted). Needs redis-server (skipped without
// one).
func BenchmarkMemoryPerInstance(b *testing.B) {
	if _, ok := redistest.Binary(); !ok {
		b.Skip("no redis-server: the owner's catalog lives in Redis, outside the gateway's process")
	}
	n := memInstances()
	type result struct{ rss, heap, peak, idle, rssGC, freed int64 }
	res := map[string]result{}
	for _, role := range []string{"owner", "replica"} {
		start := time.Now()
		m, err := runMemChild(role, n)
		if err != nil {
			b.Fatalf("%s: %v", role, err)
		}
		idle, err := runMemChild(role, 1)
		if err != nil {
			b.Fatalf("%s with one instance: %v", role, err)
		}
		b.Logf("%s: %d instances: RSS %d MB settled (%d MB with one instance), %d MB after a GC, %d MB freed, live heap %d MB, peak RSS %d MB (%s)",
			role, n, m.rss>>20, idle.rss>>20, m.rssGC>>20, m.freed>>20, m.heap>>20, m.peak>>20, time.Since(start).Round(time.Second))
		res[role] = result{m.rss, m.heap, m.peak, idle.rss, m.rssGC, m.freed}
	}
	for b.Loop() { // the measure is the children's; b.Loop's reset must come before the metrics
	}
	for role, r := range res {
		b.ReportMetric(float64(r.rss)/float64(n), role+"-B/inst")
		b.ReportMetric(float64(r.heap)/float64(n), role+"-heap-B/inst")
		b.ReportMetric(float64(r.peak)/float64(n), role+"-peak-B/inst")
		b.ReportMetric(float64(r.rss-r.idle)/float64(n-1), role+"-over-idle-B/inst")
		b.ReportMetric(float64(r.rssGC)/float64(n), role+"-gc-only-B/inst")
		b.ReportMetric(float64(r.freed)/float64(n), role+"-freed-B/inst")
	}
}

func memInstances() int {
	if v, err := strconv.Atoi(os.Getenv(memInstancesEnv)); err == nil && v > 0 {
		return v
	}
	return 100_000
}

// memReading is what a child reports.
type memReading struct{ rss, rssGC, freed, heap, peak int64 }

// runMemChild runs TestMemoryChild as role and reads its "memory:" line.
func runMemChild(role string, n int) (memReading, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestMemoryChild$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), memChildEnv+"="+role, memInstancesEnv+"="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return memReading{}, fmt.Errorf("child: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "memory: rss="); i >= 0 {
			var m memReading
			if _, err := fmt.Sscanf(sc.Text()[i:], "memory: rss=%d gc=%d freed=%d heap=%d peak=%d", &m.rss, &m.rssGC, &m.freed, &m.heap, &m.peak); err == nil {
				return m, nil
			}
		}
	}
	return memReading{}, fmt.Errorf("child printed no memory line:\n%s", out)
}

// memSettle is how long the RSS must stay put to count as settled: longer
// than the gateway's memory release takes to act after a load
// (releaseMinGap + releaseCheckEvery).
const memSettle = releaseMinGap + 2*releaseCheckEvery

// TestMemoryChild is BenchmarkMemoryPerInstance's child: it does nothing
// unless MERIDIAN_MEM_ROLE is set.
func TestMemoryChild(t *testing.T) {
	role := os.Getenv(memChildEnv)
	if role == "" {
		t.Skip("run by BenchmarkMemoryPerInstance")
	}
	n := memInstances()
	if role == "owner-serve" {
		// The replica role's owner, in a process of its own so that its
		// memory is not counted in the replica holder's: it serves until
		// its stdin closes.
		owner := startMemOwner(t, n)
		defer owner.Kill()
		fmt.Printf("owner-serf=%s\n", owner.Members.(*serfmember.SerfMembership).BindAddr())
		io.Copy(io.Discard, os.Stdin)
		return
	}
	var served *Agent
	if role == "replica" {
		ownerAddr, stopOwner := startMemOwnerProcess(t, n)
		cfg := memAgentConfig("eu-west", redistest.Start(t).URL())
		cfg.Join = []string{ownerAddr}
		holder, err := StartAgent(cfg)
		if err != nil {
			stopOwner()
			t.Fatal(err)
		}
		defer holder.Kill()
		waitFor(t, 2*time.Minute, "the replica to hold every instance", func() bool {
			got := 0
			holder.Fed.Read(func(c *federation.Core) {
				if rep := c.Replica("us-east"); rep != nil {
					got = rep.Catalog.Len()
				}
			})
			return got == n
		})
		stopOwner() // only the replica holder is measured
		served = holder
	} else {
		owner := startMemOwner(t, n)
		defer owner.Kill()
		served = owner
	}
	// A serving gateway holds the encoded answers of the services it is
	// asked for: ask for every one, once.
	query := ""
	if role == "replica" {
		query = "?region=us-east"
	}
	for s := 0; s < 100; s++ {
		resp, err := http.Get(served.URL() + "/v1/services/" + fleetInstance(s*max(n/100, 1), n).Service + query)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("lookup of service %d: HTTP %d", s, resp.StatusCode)
		}
	}
	served = nil
	// Let the gateway settle as it would on its own: the followers of
	// the catalog (health runner, check sharding, replica persistence)
	// finish what the load started and the gateway returns what it no
	// longer needs. Nothing is forced here.
	rss := settledRSS(memSettle, time.Minute)
	runtime.GC()
	rssGC := statmRSS() // what the runtime keeps on its own after a GC
	freed, heap := freedMemory()
	if p := os.Getenv("MERIDIAN_MEM_PROFILE"); p != "" && n > 1 {
		f, err := os.Create(p + "." + role)
		if err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	t.Logf("%s: %d instances, RSS %.0f B/inst settled, %.0f B/inst freed, live heap %.0f B/inst", role, n,
		float64(rss)/float64(n), float64(freed)/float64(n), float64(heap)/float64(n))
	fmt.Printf("memory: rss=%d gc=%d freed=%d heap=%d peak=%d\n", rss, rssGC, freed, heap, peakRSS())
}

// settledRSS waits until the process's RSS has not moved by more than
// 1 MiB for quiet (at most limit), and returns it.
func settledRSS(quiet, limit time.Duration) int64 {
	start := time.Now()
	last, since := statmRSS(), time.Now()
	for time.Since(start) < limit {
		time.Sleep(250 * time.Millisecond)
		r := statmRSS()
		if d := r - last; d > 1<<20 || d < -1<<20 {
			last, since = r, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return r
		}
	}
	return statmRSS()
}

// startMemOwner starts us-east's gateway on a real Redis seeded with n
// instances and waits until its cache holds them.
func startMemOwner(t *testing.T, n int) *Agent {
	t.Helper()
	srv := redistest.Start(t)
	seedStore(t, srv.URL(), "us-east", n)
	owner, err := StartAgent(memAgentConfig("us-east", srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the owner's cache to hold every instance", func() bool {
		got := 0
		owner.Cache.Read(func(c *region.Catalog) { got = c.Len() })
		return got == n
	})
	return owner
}

// startMemOwnerProcess runs startMemOwner in a child process (role
// owner-serve) and returns its Serf address and a func that stops it.
func startMemOwnerProcess(t *testing.T, n int) (serfAddr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestMemoryChild$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), memChildEnv+"=owner-serve", memInstancesEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		cmd.Wait()
		cancel()
	}
	sc := bufio.NewScanner(stdout)
	var out strings.Builder
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "owner-serf="); ok {
			serfAddr = a
			break
		}
		out.WriteString(sc.Text() + "\n")
	}
	if serfAddr == "" {
		stop()
		t.Fatalf("the owner's process gave no Serf address:\n%s", out.String())
	}
	go io.Copy(io.Discard, stdout) // the rest of its output, until it exits
	return serfAddr, stop
}

// memAgentConfig is a gateway of regionName on a real Redis, with real
// Serf on 127.0.0.1 (lan profile: the local one gives a fetch 2s, too
// short for a full catalog of 100,000 instances on a busy 2-core machine).
func memAgentConfig(regionName, redisURL string) AgentConfig {
	cfg := AgentConfig{Region: regionName, HTTPAddr: "127.0.0.1:0", RedisURL: redisURL, NodeName: regionName + "-1",
		SerfBind: "127.0.0.1:0", GossipProfile: "lan", Logger: quietLogger(), CatchUp: 100 * time.Millisecond}
	if os.Getenv(memNoReleaseEnv) != "" {
		cfg.MemoryCheck = -1 // to see what the memory release is worth
	}
	return cfg
}

// seedStore writes n instances into region's empty store before its
// gateway starts, which then loads them as a snapshot, as a restarted
// gateway does (store writes one by one would take minutes on 2 cores).
func seedStore(t *testing.T, redisURL, regionName string, n int) {
	t.Helper()
	uo, err := redisstore.ParseRedisURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	uo.ReadTimeout, uo.WriteTimeout = 30*time.Second, 30*time.Second
	c := redis.NewUniversalClient(uo)
	defer c.Close()
	st := redisstore.NewRedisStoreClient(c, regionName, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	const batch = 10_000
	expect := ""
	for i := 0; i < n; i += batch {
		ins := make([]region.Instance, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			in := fleetInstance(j, n)
			in.RegisteredAt, in.UpdatedAt = now, now
			ins = append(ins, in)
		}
		ok, err := st.Restore(ctx, expect, region.RestoreRequest{Instances: ins, Epoch: "seed", From: expect})
		if err != nil || !ok {
			t.Fatalf("seeding instances %d-%d: ok %v, %v", i, i+len(ins), ok, err)
		}
		expect = "seed"
	}
}

// fleetInstance is instance i of n.
func fleetInstance(i, n int) region.Instance {
	per := max(n/100, 1)
	svc := fmt.Sprintf("svc-%03d", i/per)
	tags := [][]string{{"v1"}, {"v2"}, {"v2", "canary"}}[i%3]
	return region.Instance{
		Service: svc, ID: fmt.Sprintf("%s-%05d", svc, i%per),
		Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 8080,
		Zone: []string{"a", "b", "c"}[i%3], Tags: tags, Meta: map[string]string{"version": "1.4.2"},
		Weight: 100, Status: region.StatusPassing,
	}
}

// peakRSS is the process's peak RSS (VmHWM); in the replica role it
// includes the owner's, which ran in the same process until the measure.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// freedMemory returns the process's RSS and live heap after a GC that
// returns free memory to the OS.
func freedMemory() (rss, heap int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return statmRSS(), int64(ms.HeapAlloc)
}

// statmRSS reads the process's RSS from /proc/self/statm.
func statmRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			pages, _ := strconv.ParseInt(f[1], 10, 64)
			return pages * int64(os.Getpagesize())
		}
	}
	return 0
}
