package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

// BenchmarkBatchScriptRedisCost runs the group commit's batch script on a
// real redis-server in fixed batches of 128 new registrations, each with
// a write id (as the gateway sends them), from one goroutine, and reports
// what Redis spends per write: script-us/write (EVALSHA's own time in
// INFO commandstats, the script with every command it calls) and
// calls/write (the commands the script called). These depend on the
// script, not on how the machine's cores are shared, so an A/B of two
// scripts reads them directly. With MERIDIAN_TEST_REDIS set it uses that
// server (one run under valgrind gives instructions per write).
func BenchmarkBatchScriptRedisCost(b *testing.B) {
	url := redistest.FromEnv(b)
	if !strings.HasPrefix(url, "redis://") {
		url = "redis://" + url
	}
	s, err := NewRedisStore(RedisOptions{URL: url, Region: uniqueRegion()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	o, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	opt := CommitOptions{}
	opt.fill()
	// One write first: loads the script and creates the epoch.
	if _, err := s.Put(ctx, storetest.TestInstance("warm", "up", 1), region.Cond{WriteID: "warm"}); err != nil {
		b.Fatal(err)
	}
	c.ConfigResetStat(ctx)
	cpu0 := redisCPU(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(b.N-i, opt.MaxBatch)
		batch := make([]*pending, n)
		for j := range batch {
			in := storetest.TestInstance("svc-"+strconv.Itoa((i+j)%200), "i-"+strconv.Itoa(i+j), 8080)
			data, _ := in.AppendJSON(nil)
			batch[j] = &pending{ctx: ctx, op: region.OpPut, k: in.Key(), data: string(data),
				c: region.Cond{WriteID: "g:" + strconv.Itoa(i+j)}, done: make(chan pendingResult, 1)}
		}
		s.gc.commit(batch, opt)
		for _, p := range batch {
			if r := <-p.done; r.err != nil {
				b.Fatal(r.err)
			}
		}
		i += n
	}
	b.StopTimer()
	cpu := redisCPU(b, c) - cpu0
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var scriptUS, calls float64
	for _, line := range strings.Split(info, "\r\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		var n, us float64
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				n, _ = strconv.ParseFloat(val, 64)
			case "usec":
				us, _ = strconv.ParseFloat(val, 64)
			}
		}
		switch name {
		case "evalsha", "eval":
			scriptUS += us
		case "config|resetstat", "info":
		default:
			calls += n
		}
		if testing.Verbose() && name != "config|resetstat" {
			b.Logf("%s calls=%.0f usec=%.0f us/write=%.2f", name, n, us, us/float64(b.N))
		}
	}
	b.ReportMetric(scriptUS/float64(b.N), "script-us/write")
	b.ReportMetric(calls/float64(b.N), "calls/write")
	b.ReportMetric(cpu*1e6/float64(b.N), "redis-cpu-us/write")
}

// redisCPU is the CPU time (user and system, in seconds) redis-server has
// used, from INFO cpu: unlike commandstats' wall-clock times it does not
// grow when the machine's other processes take redis-server's core.
func redisCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var cpu float64
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		}
	}
	return cpu
}
