package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/internal/gctune"
	"github.com/meridian-sd/meridian/internal/redistest"
)

// benchWriters is how many clients register at once in BenchmarkWrites.
const benchWriters = 32

// BenchmarkWrites registers new instances through a gateway's HTTP API on
// loopback from 32 concurrent writers (one keep-alive connection each) and
// reports acknowledged registrations per second (acks/s) and the 99th
// percentile of their latency (p99-ms). Goals (issue 13): with a real
// redis-server at least 15,000 acks/s with p99 at most 20 ms; with the
// embedded store (miniredis) at least 5,000 acks/s. The writers run in the
// same process as the gateway, so on a small machine they share its cores.
//
// The redis-server is the Debian package's binary with its own defaults
// (no AOF, no RDB snapshots during the run).
func BenchmarkWrites(b *testing.B) {
	b.Run("store=redis", func(b *testing.B) {
		srv := redistest.Start(b, redistest.WithArgs("--appendonly", "no"))
		if pin := os.Getenv("BENCH_WRITES_PIN"); pin != "" {
			pinRedis(b, srv.PID())
		}
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer c.Close()
		c.ConfigResetStat(context.Background())
		benchWrites(b, srv.URL())
		reportRedisCost(b, c)
	})
	b.Run("store=embedded", func(b *testing.B) { benchWrites(b, "") })
}

var benchWritesRun atomic.Int64

// pinRedis, with BENCH_WRITES_PIN set, gives redis-server the last core
// of the machine and this process (the gateway and its writers) the
// others, with taskset, so that the two do not take each other's cores.
// It needs at least two cores and taskset; without them it says so and
// pins nothing.
func pinRedis(b *testing.B, pid int) {
	n := runtime.NumCPU()
	if n < 2 {
		b.Logf("BENCH_WRITES_PIN: %d core, nothing pinned", n)
		return
	}
	last := strconv.Itoa(n - 1)
	rest := "0"
	if n > 2 {
		rest = "0-" + strconv.Itoa(n-2)
	}
	for _, c := range [][]string{
		{"-a", "-p", "-c", last, strconv.Itoa(pid)},
		{"-a", "-p", "-c", rest, strconv.Itoa(os.Getpid())},
	} {
		if out, err := exec.Command("taskset", c...).CombinedOutput(); err != nil {
			b.Fatalf("taskset %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	b.Logf("BENCH_WRITES_PIN: redis-server on core %s, the gateway and its writers on %s", last, rest)
	b.Cleanup(func() {
		// Give this process all cores back for whatever runs next.
		exec.Command("taskset", "-a", "-p", "-c", "0-"+last, strconv.Itoa(os.Getpid())).Run()
	})
}

// reportRedisCost reports redis-server's CPU time per acknowledged
// registration (redis-us/write, from INFO cpu) and logs its command
// statistics with -test.v (INFO commandstats: calls and µs per call of
// each command the run sent), which tell how much of a write's cost is the
// server's.
func reportRedisCost(b *testing.B, c *redis.Client) {
	ctx := context.Background()
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		b.Logf("INFO from redis-server: %v", err)
		return
	}
	var cpu float64
	var stats []string
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			stats = append(stats, strings.TrimPrefix(k, "cmdstat_")+" "+v)
		}
	}
	if testing.Verbose() {
		b.Logf("redis-server: %.2fs CPU for %d registrations; commandstats:\n%s", cpu, b.N, strings.Join(stats, "\n"))
	}
	b.ReportMetric(cpu*1e6/float64(b.N), "redis-us/write")
}

func benchWrites(b *testing.B, redisURL string) {
	// The agent binary runs with the GC heap floor by default
	// (--gc-floor-mb); the gateway under test here runs in this process.
	defer gctune.Start(gctune.Default).Stop()
	a, err := StartAgent(AgentConfig{Region: "bench-" + strconv.FormatInt(benchWritesRun.Add(1), 10),
		HTTPAddr: "127.0.0.1:0", RedisURL: redisURL, Logger: quietLogger(), CatchUp: time.Second,
		// One client IP writes everything: no per-client write rate.
		Limits: Limits{WriteRate: -1, MaxInstances: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	}()
	for deadline := time.Now().Add(5 * time.Second); !a.Cache.Loaded(); {
		if time.Now().After(deadline) {
			b.Fatal("the gateway's cache did not load within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	addr := a.Addr()

	var next atomic.Int64
	lat := make([][]time.Duration, benchWriters)
	versions := make([][]uint64, benchWriters)
	errs := make(chan error, benchWriters)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for w := range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr, err := newBenchWriter(addr)
			if err != nil {
				errs <- err
				return
			}
			defer wr.close()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				v, err := wr.register(i)
				if err != nil {
					errs <- fmt.Errorf("registration %d: %w", i, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				versions[w] = append(versions[w], v)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) != b.N {
		b.Fatalf("%d registrations acknowledged, want %d", len(all), b.N)
	}
	if got := a.Cache.Version(); got < uint64(b.N) {
		b.Fatalf("the gateway's catalog is at version %d after %d acknowledged registrations", got, b.N)
	}
	// Each acknowledgement carries its own version, and the store holds
	// every acknowledged instance.
	var vs []uint64
	for _, l := range versions {
		vs = append(vs, l...)
	}
	slices.Sort(vs)
	if n := len(slices.Compact(vs)); n != b.N {
		b.Fatalf("%d distinct versions in %d acknowledgements", n, b.N)
	}
	snap, err := a.Store.Snapshot(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(snap.Instances) != b.N {
		b.Fatalf("the store holds %d instances after %d acknowledged registrations", len(snap.Instances), b.N)
	}
	p99 := all[min(len(all)-1, len(all)*99/100)]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/write")
	if rs, ok := a.Store.(interface{ CommitStats() (int64, int64) }); ok {
		if trips, writes := rs.CommitStats(); trips > 0 {
			b.ReportMetric(float64(writes)/float64(trips), "writes/roundtrip")
		}
	}
}

// benchWriter is one writer of BenchmarkWrites: an HTTP/1.1 client on one
// keep-alive connection that sends each registration as a PUT and reads
// its answer as a load generator (wrk) does, without net/http.Transport's
// per-connection goroutines and header maps, which on a small machine
// take CPU from the gateway under test. Every answer is checked: 200 with
// an X-Meridian-Index, the whole body read.
type benchWriter struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

func newBenchWriter(addr string) (*benchWriter, error) {
	w := &benchWriter{addr: addr}
	return w, w.dial()
}

func (w *benchWriter) dial() error {
	if w.conn != nil {
		w.conn.Close()
	}
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		return err
	}
	w.conn, w.br = c, bufio.NewReader(c)
	return nil
}

func (w *benchWriter) close() {
	if w.conn != nil {
		w.conn.Close()
	}
}

// register registers instance i of service svc-(i%200), waits for its
// acknowledgement and returns the version it names (X-Meridian-Index).
func (w *benchWriter) register(i int64) (uint64, error) {
	body := `{"address":"10.` + strconv.FormatInt(i>>16&255, 10) + `.` + strconv.FormatInt(i>>8&255, 10) + `.` +
		strconv.FormatInt(i&255, 10) + `","port":8080,"zone":"a","tags":["v1"]}`
	b := w.buf[:0]
	b = append(b, "PUT /v1/services/svc-"...)
	b = strconv.AppendInt(b, i%200, 10)
	b = append(b, "/instances/i-"...)
	b = strconv.AppendInt(b, i, 10)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.addr...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	w.buf = b
	w.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.conn.Write(b); err != nil {
		return 0, err
	}
	return w.readAnswer()
}

// readAnswer reads one HTTP/1.1 answer as wrk does: the status line, the
// header lines (Content-Length, Connection, X-Meridian-Index) and a body
// of Content-Length bytes; anything else (another status, no index, a
// chunked body) fails the benchmark.
func (w *benchWriter) readAnswer() (uint64, error) {
	status, err := w.br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the status line: %w", err)
	}
	ok := bytes.HasPrefix(status, []byte("HTTP/1.1 200 "))
	code := "HTTP/1.1 200" // the status line for errors (ReadSlice reuses its bytes)
	if !ok {
		code = string(bytes.TrimSpace(status))
	}
	length, index, closing := -1, uint64(0), false
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("reading the header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("X-Meridian-Index")):
			if index, err = strconv.ParseUint(string(value), 10, 64); err != nil {
				return 0, fmt.Errorf("bad X-Meridian-Index %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("%s: Transfer-Encoding %q (want a Content-Length)", code, value)
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("%s: no Content-Length", code)
	}
	if _, err := w.br.Discard(length); err != nil {
		return 0, fmt.Errorf("reading the body: %w", err)
	}
	if !ok || index == 0 {
		return 0, fmt.Errorf("%s, X-Meridian-Index %d", code, index)
	}
	if closing {
		return index, w.dial()
	}
	return index, nil
}

// processCPU is the CPU time (user and system) this process has used: the
// gateway and the writers, whose cost per write (cpu-us/write) varies less
// from run to run than acks/s on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
