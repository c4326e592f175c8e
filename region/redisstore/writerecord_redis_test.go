package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

// releasedBatchScript is the batch script as the previous release shipped
// it (nested replies, an exact MAXLEN on every XADD), kept here to check
// that gateways of both releases can share a region's Redis during a
// rolling upgrade: each honours the write-id records the other wrote, and
// their versions and change log interleave.
var releasedBatchScript = redis.NewScript(`
local n = tonumber(ARGV[5])
local epoch = nil
local last = nil
local out = {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  local op, field, data, ifidx, must = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local wi = tonumber(ARGV[b + 5])
  local wk = nil
  if wi > 0 then wk = KEYS[wi] end
  local r = nil
  if wk then
    local prev = redis.call('HMGET', wk, 'v', 'd')
    if prev[1] then r = {tonumber(prev[1]), prev[2]} end
  end
  if not r then
    local cur = redis.call('HGET', KEYS[1], field)
    if (must == '1' or ifidx ~= '0') and not cur then
      r = {0, 'notfound'}
    elseif ifidx ~= '0' and redis.call('HGET', KEYS[2], field) ~= ifidx then
      r = {0, 'conflict'}
    else
      if not epoch then
        redis.call('HSETNX', KEYS[5], 'id', ARGV[3])
        epoch = redis.call('HGET', KEYS[5], 'id')
      end
      local v = redis.call('INCR', KEYS[3])
      local d = ''
      if op == 'put' then
        d = data
        if cur then
          local reg = string.match(cur, '^{"registered_at":"([^"]*)"')
          local pre = string.match(d, '^{"registered_at":"[^"]*"')
          if reg and pre then d = '{"registered_at":"' .. reg .. '"' .. string.sub(d, string.len(pre) + 1) end
        end
        redis.call('HSET', KEYS[1], field, d)
        redis.call('HSET', KEYS[2], field, v)
      else
        redis.call('HDEL', KEYS[1], field)
        redis.call('HDEL', KEYS[2], field)
      end
      redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[1], v .. '-1', 'op', op, 'key', field, 'data', d, 'epoch', epoch)
      last = v
      r = {v, d, epoch}
    end
    if wk then
      redis.call('HSET', wk, 'v', r[1], 'd', r[2])
      redis.call('EXPIRE', wk, ARGV[4])
    end
  end
  out[i + 1] = r
end
if last then redis.call('PUBLISH', ARGV[2], last) end
return out
`)

// releasedWrite runs one write through releasedBatchScript, as a gateway
// of the previous release would, and returns its raw reply.
func releasedWrite(t *testing.T, s *RedisStore, op region.Op, in region.Instance, writeID string) []any {
	t.Helper()
	p := &pending{op: op, k: in.Key(), c: region.Cond{WriteID: writeID, MustExist: op == region.OpDelete}}
	if op == region.OpPut {
		b, _ := in.AppendJSON(nil)
		p.data = string(b)
	}
	keys, argv := s.gc.scriptArgs([]*pending{p})
	res, err := releasedBatchScript.Run(context.Background(), s.c, keys, argv...).Slice()
	if err != nil || len(res) != 1 {
		t.Fatalf("released script, %s %s: %v, %v", op, writeID, res, err)
	}
	r, _ := res[0].([]any)
	return r
}

// TestWriteRecordsAcrossReleases: during a rolling upgrade a write may be
// repeated (its answer lost) through a gateway of the other release. A
// write-id record written by either release's script must be honoured by
// the other: the repeat returns the first result and applies nothing. Also
// checks the record's layout directly (a hash: v, the version in decimal;
// d, the stored data or the failure) with its TTL.
func TestWriteRecordsAcrossReleases(t *testing.T) {
	url := redistest.FromEnv(t)
	ctx := context.Background()
	s, err := NewRedisStore(RedisOptions{URL: url, Region: uniqueRegion(), LogMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Old gateway first: a put, then a failed delete.
	oldIn := storetest.TestInstance("web", "old", 1)
	r := releasedWrite(t, s, region.OpPut, oldIn, "old-put")
	if v, _ := r[0].(int64); v != 1 || len(r) != 3 {
		t.Fatalf("released script's put: got %v, want v1 with its data and epoch", r)
	}
	releasedWrite(t, s, region.OpDelete, storetest.TestInstance("web", "absent", 1), "old-del")

	// The new release repeats them: the recorded results, nothing applied.
	ch, err := s.Put(ctx, oldIn, region.Cond{WriteID: "old-put"})
	if err != nil || ch.Version != 1 || ch.Instance == nil || ch.Instance.ID != "old" || ch.Instance.ModifyIndex != 1 {
		t.Fatalf("repeat of a released put: got %+v, %v; want its v1 result", ch, err)
	}
	if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "absent"}, region.Cond{WriteID: "old-del"}); !errors.Is(err, region.ErrNotFound) {
		t.Fatalf("repeat of a released failed delete: got %v, want ErrNotFound", err)
	}

	// New gateway writes: a put, a replacement (registered_at kept, so
	// stored data differs from what was sent), a delete, a conflict.
	newIn := storetest.TestInstance("web", "new", 2)
	first, err := s.Put(ctx, newIn, region.Cond{WriteID: "new-put"})
	if err != nil || first.Version != 2 {
		t.Fatalf("put: got %+v, %v; want v2", first, err)
	}
	again := newIn
	again.RegisteredAt = again.RegisteredAt.Add(time.Hour)
	repl, err := s.Put(ctx, again, region.Cond{WriteID: "new-repl"})
	if err != nil || repl.Version != 3 || !repl.Instance.RegisteredAt.Equal(newIn.RegisteredAt) {
		t.Fatalf("replacement: got %+v, %v; want v3 keeping registered_at %v", repl, err, newIn.RegisteredAt)
	}
	del, err := s.Delete(ctx, oldIn.Key(), region.Cond{WriteID: "new-del"})
	if err != nil || del.Version != 4 {
		t.Fatalf("delete: got %+v, %v; want v4", del, err)
	}
	if _, err := s.Put(ctx, newIn, region.Cond{WriteID: "new-cas", IfIndex: 1}); !errors.Is(err, region.ErrConflict) {
		t.Fatalf("stale IfIndex: got %v, want ErrConflict", err)
	}

	// Their records, as the released script reads them.
	for _, c := range []struct {
		id, v string
		d     func() string
	}{
		{"new-put", "2", func() string { b, _ := newIn.AppendJSON(nil); return string(b) }},
		{"new-repl", "3", func() string { b, _ := repl.Instance.AppendJSON(nil); return string(b) }},
		{"new-del", "4", func() string { return "" }},
		{"new-cas", "0", func() string { return "conflict" }},
	} {
		key := s.kWrites + c.id
		got, err := s.c.HGetAll(ctx, key).Result()
		if err != nil || len(got) != 2 || got["v"] != c.v {
			t.Fatalf("record %s: got %v, %v; want v=%s", c.id, got, err, c.v)
		}
		if c.id != "new-repl" && got["d"] != c.d() { // new-repl: compared decoded below
			t.Fatalf("record %s: d=%q, want %q", c.id, got["d"], c.d())
		}
		if ttl := s.c.TTL(ctx, key).Val(); ttl <= 0 || ttl > region.WriteIDTTL {
			t.Fatalf("record %s: TTL %v, want (0, %v]", c.id, ttl, region.WriteIDTTL)
		}
	}
	if stored, _ := s.c.HGet(ctx, s.kInstances, "web/new").Result(); stored != s.c.HGet(ctx, s.kWrites+"new-repl", "d").Val() {
		t.Fatalf("record new-repl holds %q, the store holds %q", s.c.HGet(ctx, s.kWrites+"new-repl", "d").Val(), stored)
	}

	// The old gateway repeats the new release's writes: recorded results.
	for _, c := range []struct {
		op   region.Op
		in   region.Instance
		id   string
		want int64
	}{
		{region.OpPut, newIn, "new-put", 2},
		{region.OpPut, again, "new-repl", 3},
		{region.OpDelete, oldIn, "new-del", 4},
	} {
		r := releasedWrite(t, s, c.op, c.in, c.id)
		if v, _ := r[0].(int64); v != c.want || len(r) != 2 {
			t.Fatalf("released script repeating %s: got %v, want the recorded v%d (no epoch: not applied)", c.id, r, c.want)
		}
	}
	// The old gateway writes once more; the new one repeats that too.
	r = releasedWrite(t, s, region.OpPut, storetest.TestInstance("web", "late", 3), "old-late")
	if v, _ := r[0].(int64); v != 5 {
		t.Fatalf("released script's second put: got %v, want v5", r)
	}
	if ch, err := s.Put(ctx, storetest.TestInstance("web", "late", 3), region.Cond{WriteID: "old-late"}); err != nil || ch.Version != 5 {
		t.Fatalf("repeat of the released v5 put: got %+v, %v", ch, err)
	}

	// One version per change, and a log of exactly LogMax entries that
	// both releases trimmed: v3..v5, with v2 out of reach.
	snap, err := s.Snapshot(ctx)
	if err != nil || snap.Version != 5 || len(snap.Instances) != 2 {
		t.Fatalf("snapshot: v%d with %d instances (%v), want v5 with web/new and web/late", snap.Version, len(snap.Instances), err)
	}
	chs, ok, err := s.ChangesSince(ctx, 2, 0)
	if err != nil || !ok || len(chs) != 3 || chs[0].Version != 3 || chs[2].Version != 5 {
		t.Fatalf("changes since v2: got %v ok=%v err=%v, want v3..v5", chs, ok, err)
	}
	if _, ok, _ := s.ChangesSince(ctx, 1, 0); ok {
		t.Fatal("changes since v1: the log keeps v3..v5 only, want ok=false")
	}
	if n := s.c.XLen(ctx, s.kLog).Val(); n != 3 {
		t.Fatalf("the log holds %d entries, want LogMax=3", n)
	}
}
