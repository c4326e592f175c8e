package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config says what to soak and for how long.
type Config struct {
	// Meridian is the meridian binary; RedisServer the redis-server one.
	Meridian, RedisServer string
	// Duration of the load (make soak: SOAK_MINUTES, default 5 minutes).
	Duration time.Duration
	// Dir holds Redis's data and the gateways' logs.
	Dir string
	// Out gets progress and the report.
	Out io.Writer
}

// Growth is the bound on RSS and goroutines: the last minute's sample may
// be at most this much of the second minute's.
const Growth = 1.2

// run is one soak.
type run struct {
	cfg      Config
	out      io.Writer
	redis    *redisProc
	gws      []*gateway
	client   *http.Client // short requests
	watch    *http.Client // blocking queries
	ledger   *Ledger
	errs     *errs
	maxIndex map[string]*atomic.Uint64
	// faultUntil (Unix ns) is when the last fault's effects may end: a
	// 503 or a timeout is expected only before it.
	faultUntil atomic.Int64
	start      time.Time
	pipelined  int // reads of soak-big a never-reading client sends at once
}

// Sample is one minute's reading of one gateway.
type Sample struct {
	Minute     int
	Gateway    string
	PID        int
	RSS        int64 // bytes
	Goroutines int64
	Err        string
}

// Report is the outcome of a soak.
type Report struct {
	Verdict  Verdict
	Samples  []Sample
	Errors   map[string]int
	Requests map[string]int
	OKs      map[string]int
	// Broken lists the bounds that were broken; empty means pass.
	Broken []string
}

// Run runs the soak and returns its report; err is for a soak that could
// not run at all (a bound broken is in Report.Broken).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s := &run{cfg: cfg, out: cfg.Out, ledger: NewLedger(), errs: newErrs(), maxIndex: map[string]*atomic.Uint64{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	s.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	s.watch = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: watchers,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}, Timeout: watchWait + 10*time.Second}
	defer tr.CloseIdleConnections()

	var err error
	redisDir := filepath.Join(cfg.Dir, "redis")
	if err := os.MkdirAll(redisDir, 0o755); err != nil {
		return nil, err
	}
	if s.redis, err = startRedis(cfg.RedisServer, redisDir); err != nil {
		return nil, err
	}
	defer s.redis.stop()
	s.logf("redis-server (appendonly, fsync always) on %s, pid %d", s.redis.addr(), s.redis.cmd.Process.Pid)

	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	for i, name := range []string{"gw-a", "gw-b"} {
		args := []string{"--region", "soak", "--redis", "redis://" + s.redis.addr() + "/0",
			"--serf-bind", "127.0.0.1:" + strconv.Itoa(ports[2+i]), "--node-name", "soak-" + name,
			"--gossip-profile", "local", "--log-level", "warn"}
		if i > 0 {
			args = append(args, "--join", "127.0.0.1:"+strconv.Itoa(ports[2]))
		}
		g := &gateway{name: name, bin: cfg.Meridian, dir: cfg.Dir, httpAddr: "127.0.0.1:" + strconv.Itoa(ports[i]), args: args}
		s.gws = append(s.gws, g)
		s.maxIndex[name] = new(atomic.Uint64)
		if err := g.start(ctx); err != nil {
			return nil, err
		}
		defer g.stop()
		s.logf("%s: meridian agent on %s, pid %d", name, g.httpAddr, g.pid())
	}

	bl, bsrv, err := startBackend()
	if err != nil {
		return nil, err
	}
	defer bsrv.Close()
	if err := s.setup(bl.Addr().(*net.TCPAddr).Port); err != nil {
		return nil, err
	}

	rep := &Report{}
	s.start = time.Now()
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	spawn := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(loadCtx) }()
	}
	for w := range writers {
		spawn(func(ctx context.Context) { s.writer(ctx, w) })
	}
	for n := range watchers {
		spawn(func(ctx context.Context) { s.watcher(ctx, n) })
	}
	for n := range slowBodies {
		spawn(func(ctx context.Context) { s.slowBody(ctx, n) })
	}
	for n := range neverReaders {
		spawn(func(ctx context.Context) { s.neverReader(ctx, n) })
	}
	spawn(s.lookups)
	spawn(s.heartbeats)
	spawn(s.proxyCalls)
	spawn(s.picks)
	spawn(s.faults)
	s.logf("load running for %s (lookups %d/s, writes %d/s, heartbeats %d/s, proxy %d/s, unique picks %d/s, %d blocking queries, %d slow-body and %d never-reading clients)",
		cfg.Duration, lookupRate, writeRate, heartbeatRate, proxyRate, pickRate, watchers, slowBodies, neverReaders)

	minutes := int(cfg.Duration / time.Minute)
	for m := 1; m <= minutes; m++ {
		if !sleepCtx(ctx, time.Until(s.start.Add(time.Duration(m)*time.Minute))) {
			break
		}
		for _, g := range s.gws {
			smp := s.sample(m, g)
			rep.Samples = append(rep.Samples, smp)
		}
		s.logf("minute %d: %s", m, s.progress(rep.Samples[len(rep.Samples)-len(s.gws):]))
	}
	<-loadCtx.Done()
	s.logf("load stopped; waiting for writes in flight to learn their outcome")
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.verify(rep)
	s.errs.mu.Lock()
	rep.Errors, rep.Requests, rep.OKs = s.errs.kinds, s.errs.requests, s.errs.oks
	for kind := range s.errs.unexpected {
		rep.Broken = append(rep.Broken, fmt.Sprintf("unexpected error %q (%d times)", kind, s.errs.kinds[kind]))
	}
	s.errs.mu.Unlock()
	for _, op := range []string{"register", "deregister", "heartbeat", "lookup", "read service", "list services",
		"blocking query", "proxy", "pick unknown name", "slow body", "never-reading client"} {
		if rep.OKs[op] == 0 {
			rep.Broken = append(rep.Broken, "no successful "+op+": the load did not run")
		}
	}
	rep.Broken = append(rep.Broken, growth(rep.Samples, s.gws)...)
	slices.Sort(rep.Broken)
	return rep, nil
}

func (s *run) logf(format string, args ...any) {
	el := ""
	if !s.start.IsZero() {
		el = fmt.Sprintf("[%5.1fs] ", time.Since(s.start).Seconds())
	}
	fmt.Fprintf(s.out, "soak: "+el+format+"\n", args...)
}

// setup registers what the load needs: the proxy's backend, TTL-checked
// instances for heartbeats, and one big service for never-reading
// clients. These writes are in the ledger too.
func (s *run) setup(backendPort int) error {
	rng := rand.New(rand.NewPCG(9, 9))
	s.write(OpRegister, Key{"soak-backend", "b-1"}, regBody("127.0.0.1", backendPort, ""), rng)
	for i := range hbInstances {
		s.write(OpRegister, Key{"soak-hb", "hb-" + strconv.Itoa(i)},
			regBody("10.8.0."+strconv.Itoa(i+1), 9000, `,"check":{"ttl":"30s"}`), rng)
	}
	meta := `,"meta":{`
	for i := range 4 {
		if i > 0 {
			meta += ","
		}
		meta += fmt.Sprintf(`"k%d":%q`, i, strings.Repeat("x", 250))
	}
	meta += "}"
	for i := range bigInstances {
		s.write(OpRegister, Key{"soak-big", "big-" + strconv.Itoa(i)},
			regBody(fmt.Sprintf("10.7.%d.%d", i/250, i%250+1), 9000, meta), rng)
	}
	v := s.ledger.Verify(nil)
	if v.ExpectPresent != 1+hbInstances+bigInstances {
		return fmt.Errorf("setup: %d of %d registrations acknowledged; errors: %v", v.ExpectPresent, 1+hbInstances+bigInstances, s.errs.kinds)
	}
	resp, err := s.client.Get(s.gws[0].base() + "/v1/services/soak-big")
	if err != nil {
		return fmt.Errorf("setup: reading soak-big: %w", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setup: reading soak-big: %s %v", resp.Status, err)
	}
	s.pipelined = pipelineFor(int(n))
	s.logf("setup: registered the proxy backend (127.0.0.1:%d), %d TTL-checked and %d big instances (%d KB answer; never-reading clients pipeline %d of them)",
		backendPort, hbInstances, bigInstances, n>>10, s.pipelined)
	return nil
}

// faults restarts Redis at 30% of the run, SIGKILLs gw-b at 50% and
// pauses Redis at 70%.
func (s *run) faults(ctx context.Context) {
	d := s.cfg.Duration
	if !sleepCtx(ctx, time.Until(s.start.Add(d*3/10))) {
		return
	}
	s.logf("fault: stopping redis-server (SIGTERM) for 5s")
	s.faultBegins()
	s.redis.stop()
	sleepCtx(ctx, 5*time.Second)
	if err := s.redis.launch(); err != nil {
		s.errs.add("redis-server restart failed: "+err.Error(), true)
		return
	}
	s.logf("fault: redis-server back (pid %d)", s.redis.cmd.Process.Pid)
	s.faultEnds()

	if !sleepCtx(ctx, time.Until(s.start.Add(d*5/10))) {
		return
	}
	g := s.gws[1]
	s.logf("fault: SIGKILL %s (pid %d)", g.name, g.pid())
	s.faultBegins()
	g.kill()
	sleepCtx(ctx, 3*time.Second)
	if err := g.start(context.Background()); err != nil {
		s.errs.add("gateway restart failed: "+err.Error(), true)
		return
	}
	s.logf("fault: %s restarted (pid %d) and healthy", g.name, g.pid())
	s.faultEnds()

	// A stalled Redis (SIGSTOP) outlasting the gateways' write timeout:
	// writes answer 503 "outcome":"unknown", which the writers resolve by
	// repeating them with their Idempotency-Key.
	if !sleepCtx(ctx, time.Until(s.start.Add(d*7/10))) {
		return
	}
	p := s.redis.cmd.Process
	s.logf("fault: pausing redis-server (SIGSTOP) for %s", redisPause)
	s.faultBegins()
	p.Signal(syscall.SIGSTOP)
	sleepCtx(ctx, redisPause)
	p.Signal(syscall.SIGCONT)
	s.logf("fault: redis-server resumed (SIGCONT)")
	s.faultEnds()
}

// redisPause is longer than the gateways' store write timeout (5s).
const redisPause = 7 * time.Second

// faultGrace is how long after a fault ends its effects may last: the
// gateways reconnect to Redis within their catch-up period, and gossip
// takes a few seconds to agree on who owns which check again.
const faultGrace = 15 * time.Second

func (s *run) faultBegins() { s.faultUntil.Store(time.Now().Add(time.Hour).UnixNano()) }
func (s *run) faultEnds()   { s.faultUntil.Store(time.Now().Add(faultGrace).UnixNano()) }

// inFault says whether a fault (or its grace period) is in progress.
func (s *run) inFault() bool { return time.Now().UnixNano() < s.faultUntil.Load() }

func (s *run) sample(m int, g *gateway) Sample {
	smp := Sample{Minute: m, Gateway: g.name, PID: g.pid()}
	rss, err := rssBytes(smp.PID)
	if err != nil {
		smp.Err = err.Error()
	}
	smp.RSS = rss
	// The least of three reads: requests in flight at one instant are
	// noise, a leak shows in all three.
	c := &http.Client{Timeout: 5 * time.Second}
	smp.Goroutines = -1
	for i := range 3 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		n, err := goroutines(c, g.base())
		if err != nil {
			smp.Err = err.Error()
			continue
		}
		if smp.Goroutines < 0 || n < smp.Goroutines {
			smp.Goroutines = n
		}
	}
	return smp
}

func (s *run) progress(smps []Sample) string {
	var b strings.Builder
	for _, smp := range smps {
		fmt.Fprintf(&b, "%s rss %.1f MB goroutines %d; ", smp.Gateway, float64(smp.RSS)/(1<<20), smp.Goroutines)
	}
	s.errs.mu.Lock()
	n, e := 0, 0
	for _, v := range s.errs.requests {
		n += v
	}
	for _, v := range s.errs.kinds {
		e += v
	}
	s.errs.mu.Unlock()
	fmt.Fprintf(&b, "%d requests, %d errors", n, e)
	return b.String()
}

// growth checks the last minute's samples against the second minute's.
func growth(smps []Sample, gws []*gateway) []string {
	var broken []string
	for _, g := range gws {
		var mine []Sample
		for _, smp := range smps {
			if smp.Gateway == g.name {
				mine = append(mine, smp)
				if smp.Err != "" {
					broken = append(broken, fmt.Sprintf("%s minute %d: sampling failed: %s", g.name, smp.Minute, smp.Err))
				}
			}
		}
		if len(mine) < 3 {
			continue // no warm-up minute to compare against
		}
		second, last := mine[1], mine[len(mine)-1]
		if float64(last.RSS) > Growth*float64(second.RSS) {
			broken = append(broken, fmt.Sprintf("%s RSS grew: minute %d %.1f MB > %.1f x minute 2 %.1f MB",
				g.name, last.Minute, float64(last.RSS)/(1<<20), Growth, float64(second.RSS)/(1<<20)))
		}
		if float64(last.Goroutines) > Growth*float64(second.Goroutines) {
			broken = append(broken, fmt.Sprintf("%s goroutines grew: minute %d %d > %.1f x minute 2 %d",
				g.name, last.Minute, last.Goroutines, Growth, second.Goroutines))
		}
	}
	return broken
}

// verify reads every soak service from both gateways once they agree on
// the version, and compares with the ledger.
func (s *run) verify(rep *Report) {
	deadline := time.Now().Add(30 * time.Second)
	var versions []uint64
	for {
		versions = versions[:0]
		for _, g := range s.gws {
			v, err := s.version(g)
			if err != nil {
				versions = append(versions, 0)
				continue
			}
			versions = append(versions, v)
		}
		if versions[0] != 0 && versions[0] == versions[1] || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if versions[0] == 0 || versions[0] != versions[1] {
		rep.Broken = append(rep.Broken, fmt.Sprintf("the gateways did not agree on the catalog version within 30s after the load: %v", versions))
	}
	for _, g := range s.gws {
		if st, err := s.health(g); err != nil || st != "healthy" {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s /v1/health at the end: %q %v", g.name, st, err))
		}
	}
	services := []string{"soak-backend", "soak-hb", "soak-big", "soak-slow"}
	for w := range writers {
		services = append(services, fmt.Sprintf("soak-w%d", w))
	}
	var sets []map[Key]bool
	for _, g := range s.gws {
		present := map[Key]bool{}
		for _, svc := range services {
			ids, err := s.instances(g, svc)
			if err != nil {
				rep.Broken = append(rep.Broken, fmt.Sprintf("%s: reading %s at the end: %v", g.name, svc, err))
				continue
			}
			for _, id := range ids {
				present[Key{svc, id}] = true
			}
		}
		sets = append(sets, present)
	}
	for i, g := range s.gws[1:] {
		if d := diff(sets[0], sets[i+1]); d != "" {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s and %s disagree at the end: %s", s.gws[0].name, g.name, d))
		}
	}
	rep.Verdict = s.ledger.Verify(sets[0])
	v := rep.Verdict
	if v.Present != v.ExpectPresent {
		rep.Broken = append(rep.Broken, fmt.Sprintf("acknowledged registrations lost: %d expected present, %d present; missing %v",
			v.ExpectPresent, v.Present, first(v.Missing)))
	}
	if len(v.Extra) > 0 {
		rep.Broken = append(rep.Broken, fmt.Sprintf("%d instances present that were deregistered or never acknowledged: %v", len(v.Extra), first(v.Extra)))
	}
	if len(v.Unresolved) > 0 {
		rep.Broken = append(rep.Broken, fmt.Sprintf("%d writes whose outcome stayed unknown after %s of repeats: %v", len(v.Unresolved), writeResolve, first(v.Unresolved)))
	}
}

func first(ks []Key) []string {
	var out []string
	for i, k := range ks {
		if i == 5 {
			out = append(out, fmt.Sprintf("... %d more", len(ks)-5))
			break
		}
		out = append(out, k.String())
	}
	return out
}

func diff(a, b map[Key]bool) string {
	var only []string
	for k := range a {
		if !b[k] {
			only = append(only, "-"+k.String())
		}
	}
	for k := range b {
		if !a[k] {
			only = append(only, "+"+k.String())
		}
	}
	slices.Sort(only)
	if len(only) > 5 {
		only = append(only[:5], fmt.Sprintf("... %d more", len(only)-5))
	}
	return strings.Join(only, " ")
}

func (s *run) version(g *gateway) (uint64, error) {
	resp, err := s.client.Get(g.base() + "/v1/services")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New(resp.Status)
	}
	return strconv.ParseUint(resp.Header.Get("X-Meridian-Index"), 10, 64)
}

func (s *run) health(g *gateway) (string, error) {
	resp, err := s.client.Get(g.base() + "/v1/health")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h.Status, err
}

func (s *run) instances(g *gateway, svc string) ([]string, error) {
	resp, err := s.client.Get(g.base() + "/v1/services/" + svc)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	var body struct {
		Instances []struct {
			ID string `json:"id"`
		} `json:"instances"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	ids := make([]string, len(body.Instances))
	for i, in := range body.Instances {
		ids[i] = in.ID
	}
	return ids, nil
}

// Print writes the report: samples per minute, requests and errors by
// kind, the ledger's verdict and the bounds broken.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintln(w, "\n== RSS and goroutines per gateway, each minute")
	fmt.Fprintf(w, "%-7s %-6s %8s %10s %11s\n", "minute", "gw", "pid", "rss MB", "goroutines")
	for _, smp := range r.Samples {
		fmt.Fprintf(w, "%-7d %-6s %8d %10.1f %11d", smp.Minute, smp.Gateway, smp.PID, float64(smp.RSS)/(1<<20), smp.Goroutines)
		if smp.Err != "" {
			fmt.Fprintf(w, "  (%s)", smp.Err)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\n== requests by kind (ok / sent)")
	for _, op := range sortedKeys(r.Requests) {
		fmt.Fprintf(w, "%-28s %7d / %7d\n", op, r.OKs[op], r.Requests[op])
	}
	fmt.Fprintln(w, "\n== errors by kind (! = breaks a bound)")
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "none")
	}
	bad := map[string]bool{}
	for _, b := range r.Broken {
		if k, ok := strings.CutPrefix(b, "unexpected error "); ok {
			if q, err := strconv.QuotedPrefix(k); err == nil {
				u, _ := strconv.Unquote(q)
				bad[u] = true
			}
		}
	}
	for _, kind := range sortedKeys(r.Errors) {
		mark := " "
		if bad[kind] {
			mark = "!"
		}
		fmt.Fprintf(w, "%s %7d  %s\n", mark, r.Errors[kind], kind)
	}
	fmt.Fprintln(w, "\n== writes: acknowledged vs present")
	fmt.Fprintln(w, r.Verdict.String())
	fmt.Fprintln(w)
	if len(r.Broken) == 0 {
		fmt.Fprintln(w, "soak: PASS: every bound held")
		return
	}
	fmt.Fprintf(w, "soak: FAIL: %d bounds broken:\n", len(r.Broken))
	for _, b := range r.Broken {
		fmt.Fprintln(w, "  - "+b)
	}
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
