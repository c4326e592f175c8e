package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/region"
)

// RedisStore keeps a region's catalog in Redis. All of a region's keys carry
// the hash tag {region}, so in a Redis Cluster they share one slot and the
// Lua scripts that touch several of them run on one node.
//
//	meridian:{R}:instances  hash  "service/id" -> instance JSON
//	meridian:{R}:index      hash  "service/id" -> ModifyIndex
//	meridian:{R}:version    string catalog version (INCR)
//	meridian:{R}:epoch      hash  "id": the store's epoch, created with the
//	                              first write; "from": the epoch a restore
//	                              wrote the catalog back from
//	meridian:{R}:log        stream, entry id "<version>-1", trimmed to LogMax
//	meridian:{R}:changes    pub/sub channel carrying new versions
//	meridian:{R}:write:ID   hash  result of the write with Cond.WriteID ID,
//	                              kept WriteIDTTL
type RedisStore struct {
	c      redis.UniversalClient
	region string
	logMax int

	kInstances, kIndex, kVersion, kLog, kWrites, kEpoch, channel string

	gc *committer // the group commit of Put and Delete
	// tracer traces the group commit's round trips; nil: not traced.
	tracer trace.Tracer
}

var _ region.Store = (*RedisStore)(nil)

// Writes (Put, Delete) go through the group commit (groupcommit.go): one
// script call applies a batch of them atomically, each with its own
// condition check, version INCR, change-log XADD and write-id record,
// then trims the log (XTRIM, exact) and PUBLISHes the batch's last version. A store without an
// epoch gets one (random) with its first write; the epoch is logged with
// each change and returned. A write with a write id first looks for that
// write's recorded result and returns it unchanged; otherwise it records
// its own result there for WriteIDTTL, so a repeated write (go-redis
// retrying after a timeout, or the gateway asking what became of a write
// whose answer was lost) is applied at most once.

// restoreScript writes back a lost catalog, once: see Store.Restore. The
// compare-and-set on the epoch makes the first of the region's gateways to
// try win; the others find the epoch moved and adopt what it wrote.
//
// KEYS: instances, index, version, log, epoch.
// ARGV: expected epoch ("" for none), new epoch, from epoch, min version,
// channel, then field, data pairs.
// Returns {1, version} or {0, current epoch}.
var restoreScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[5], 'id')
if not cur then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
local v = tonumber(redis.call('GET', KEYS[3]) or '0') + 1
local minv = tonumber(ARGV[4])
if minv > v then v = minv end
for i = 6, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
local fields = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[2])
for i = 1, #fields do
  redis.call('HSET', KEYS[2], fields[i], v)
end
redis.call('SET', KEYS[3], v)
redis.call('DEL', KEYS[4])
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'id', ARGV[2], 'from', ARGV[3])
redis.call('PUBLISH', ARGV[5], v)
return {1, v}
`)

// changesScript reads the log after a version, atomically with the
// version, and says whether the log still reaches back that far.
//
// KEYS: version, log. ARGV: since, since+1, max.
// Returns {version, 1, entries} or {version, 0} when the caller must reload.
var changesScript = redis.NewScript(`
local ver = redis.call('GET', KEYS[1])
if not ver then ver = '0' end
local since = tonumber(ARGV[1])
local v = tonumber(ver)
if since > v then return {ver, 0} end
if since == v then return {ver, 1} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 then return {ver, 0} end
local fv = tonumber(string.match(first[1][1], '^(%d+)-'))
if fv > since + 1 then return {ver, 0} end
return {ver, 1, redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', '+', 'COUNT', ARGV[3])}
`)

// RedisOptions configures NewRedisStore.
type RedisOptions struct {
	// URL selects the deployment:
	//   redis://[:password@]host:port/db            one server (rediss:// for TLS)
	//   redis://host:port?addr=host2:port2&...      a Redis Cluster (or add cluster=true)
	//   redis://sentinel:port?master_name=mymaster  Sentinel (more with &addr=)
	URL    string
	Region string
	LogMax int // changes kept in the log; region.DefaultLogMax when 0
	// TracerProvider, when set, traces Redis commands run under a traced
	// context (see instrumentRedis); MeterProvider, when set, receives
	// go-redis's pool and command metrics.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// ParseRedisURL turns a Meridian Redis URL into go-redis UniversalOptions.
// It fills short timeouts (1s dial, read and write) when the URL names none,
// so that a gateway notices an outage quickly instead of hanging writes.
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", raw, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis URL %q: scheme must be redis:// or rediss://", raw)
	}
	q := u.Query()
	cluster := q.Get("cluster") == "true"
	q.Del("cluster")
	u.RawQuery = q.Encode()
	var uo *redis.UniversalOptions
	switch {
	case q.Get("master_name") != "":
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis sentinel URL %q: %w", raw, err)
		}
		uo = &redis.UniversalOptions{
			Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB,
			Username: o.Username, Password: o.Password,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		}
	case cluster || len(q["addr"]) > 0:
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis cluster URL %q: %w", raw, err)
		}
		uo = &redis.UniversalOptions{
			Addrs: o.Addrs, IsClusterMode: true, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		}
	default:
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis URL %q: %w", raw, err)
		}
		uo = &redis.UniversalOptions{
			Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		}
	}
	if uo.DialTimeout == 0 {
		uo.DialTimeout = time.Second
	}
	if uo.ReadTimeout == 0 {
		uo.ReadTimeout = time.Second
	}
	if uo.WriteTimeout == 0 {
		uo.WriteTimeout = time.Second
	}
	uo.MaxRetries = 1
	if uo.DialerRetries == 0 {
		uo.DialerRetries = 1 // the cache's catch-up loop is the retry
	}
	return uo, nil
}

// redisLogger routes go-redis's own log lines (dial failures, pool
// warnings) through slog at debug level: the cache and health runner
// already log an outage once, in their own words.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// RouteRedisLogs sends go-redis's process-wide log output to l.
func RouteRedisLogs(l *slog.Logger) { redis.SetLogger(redisLogger{l}) }

// NewRedisStore connects to Redis (lazily: the first command dials).
func NewRedisStore(o RedisOptions) (*RedisStore, error) {
	uo, err := ParseRedisURL(o.URL)
	if err != nil {
		return nil, err
	}
	c := redis.NewUniversalClient(uo)
	if err := instrumentRedis(c, o.TracerProvider, o.MeterProvider); err != nil {
		c.Close()
		return nil, err
	}
	s := NewRedisStoreClient(c, o.Region, o.LogMax)
	if o.TracerProvider != nil {
		s.tracer = o.TracerProvider.Tracer("github.com/meridian-sd/meridian/region/redisstore")
	}
	return s, nil
}

// NewRedisStoreClient wraps an existing client. The store owns it: Close
// closes it.
func NewRedisStoreClient(c redis.UniversalClient, regionName string, logMax int) *RedisStore {
	if logMax <= 0 {
		logMax = region.DefaultLogMax
	}
	p := "meridian:{" + regionName + "}:"
	s := &RedisStore{
		c: c, region: regionName, logMax: logMax,
		kInstances: p + "instances", kIndex: p + "index", kVersion: p + "version",
		kLog: p + "log", kWrites: p + "write:", kEpoch: p + "epoch", channel: p + "changes",
	}
	s.gc = newCommitter(s, CommitOptions{})
	return s
}

// Client returns the underlying go-redis client.
func (s *RedisStore) Client() redis.UniversalClient { return s.c }

func field(k region.Key) string { return k.Service + "/" + k.ID }

func parseField(f string) (region.Key, error) {
	svc, id, ok := strings.Cut(f, "/")
	if !ok {
		return region.Key{}, fmt.Errorf("bad instance key %q in redis", f)
	}
	return region.Key{Service: svc, ID: id}, nil
}

func (s *RedisStore) apply(ctx context.Context, op region.Op, k region.Key, data string, in *region.Instance, c region.Cond) (region.Change, error) {
	if c.WriteID != "" {
		if err := region.ValidateWriteID(c.WriteID); err != nil {
			return region.Change{}, err
		}
	}
	return s.gc.submit(ctx, op, k, data, in, c)
}

// writeOutcome marks err with ErrOutcomeUnknown unless it is known that the
// script never ran: the connection could not be opened or taken from the
// pool, or Redis answered with an error (a script error happens before any
// write: every condition is checked first).
func writeOutcome(err error) error {
	var rerr redis.Error
	var op *net.OpError
	switch {
	case errors.As(err, &rerr),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted), errors.Is(err, redis.ErrClosed),
		errors.As(err, &op) && op.Op == "dial":
		return err
	}
	return fmt.Errorf("%w: %w", region.ErrOutcomeUnknown, err)
}

func decodeChange(v uint64, op region.Op, k region.Key, data string) (region.Change, error) {
	ch := region.Change{Version: v, Op: op, Service: k.Service, ID: k.ID}
	if op == region.OpPut {
		var in region.Instance
		if err := json.Unmarshal([]byte(data), &in); err != nil {
			return region.Change{}, fmt.Errorf("decoding instance %s at v%d: %w", k, v, err)
		}
		in.ModifyIndex = v
		ch.Instance = &in
	}
	return ch, nil
}

// jsonBufs holds Put's encoding buffers.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, in region.Instance, c region.Cond) (region.Change, error) {
	in.ModifyIndex = 0
	buf := jsonBufs.Get().(*[]byte)
	b, ok := in.AppendJSON((*buf)[:0])
	data := string(b)
	*buf = b
	jsonBufs.Put(buf)
	if !ok {
		_, err := json.Marshal(&in) // for its error
		return region.Change{}, fmt.Errorf("encoding instance %s: %w", in.Key(), err)
	}
	// When the script stores these bytes unchanged (a new instance: no
	// registered_at to keep), the change's instance is in itself, as
	// decoding them would give it: the group commit need not decode.
	var same *region.Instance
	if decodesAsItself(&in) {
		same = &in
	}
	return s.apply(ctx, region.OpPut, in.Key(), data, same, c)
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, k region.Key, c region.Cond) (region.Change, error) {
	c.MustExist = true
	return s.apply(ctx, region.OpDelete, k, "", nil, c)
}

// Snapshot implements Store. It reads the version and both hashes in one
// MULTI/EXEC, so the instances match the version.
func (s *RedisStore) Snapshot(ctx context.Context) (region.Snapshot, error) {
	var ver *redis.StringCmd
	var insts, idx, epoch *redis.MapStringStringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, s.kVersion)
		epoch = p.HGetAll(ctx, s.kEpoch)
		insts = p.HGetAll(ctx, s.kInstances)
		idx = p.HGetAll(ctx, s.kIndex)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return region.Snapshot{}, fmt.Errorf("redis snapshot of region %s: %w", s.region, err)
	}
	snap := region.Snapshot{Epoch: epoch.Val()["id"], RestoredFrom: epoch.Val()["from"]}
	if vs, err := ver.Result(); err == nil {
		if snap.Version, err = strconv.ParseUint(vs, 10, 64); err != nil {
			return region.Snapshot{}, fmt.Errorf("redis snapshot: bad version %q: %w", vs, err)
		}
	}
	index := idx.Val()
	if n := len(insts.Val()); n > 0 {
		snap.Instances = make([]region.Instance, 0, n) // one array, not a doubling series of them
	}
	for f, data := range insts.Val() {
		var in region.Instance
		if err := json.Unmarshal([]byte(data), &in); err != nil {
			return region.Snapshot{}, fmt.Errorf("redis snapshot: decoding %s: %w", f, err)
		}
		in.ModifyIndex, _ = strconv.ParseUint(index[f], 10, 64)
		snap.Instances = append(snap.Instances, in)
	}
	region.SortInstances(snap.Instances)
	return snap, nil
}

// ChangesSince implements Store.
func (s *RedisStore) ChangesSince(ctx context.Context, since uint64, max int) ([]region.Change, bool, error) {
	if max <= 0 {
		max = s.logMax
	}
	res, err := changesScript.Run(ctx, s.c, []string{s.kVersion, s.kLog},
		strconv.FormatUint(since, 10), strconv.FormatUint(since+1, 10), max).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("redis changes of region %s since v%d: %w", s.region, since, err)
	}
	if len(res) < 2 {
		return nil, false, fmt.Errorf("redis changes: unexpected reply %v", res)
	}
	if ok, _ := res[1].(int64); ok != 1 {
		return nil, false, nil
	}
	if len(res) < 3 {
		return nil, true, nil
	}
	entries, _ := res[2].([]any)
	out := make([]region.Change, 0, len(entries))
	for _, e := range entries {
		ch, err := parseLogEntry(e)
		if err != nil {
			return nil, false, fmt.Errorf("redis changes of region %s: %w", s.region, err)
		}
		out = append(out, ch)
	}
	return out, true, nil
}

// parseLogEntry decodes one XRANGE entry: [id, [field, value, ...]].
func parseLogEntry(e any) (region.Change, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return region.Change{}, fmt.Errorf("bad log entry %v", e)
	}
	id, _ := pair[0].(string)
	vs, _, _ := strings.Cut(id, "-")
	v, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return region.Change{}, fmt.Errorf("bad log entry id %q", id)
	}
	kv, _ := pair[1].([]any)
	fields := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		val, _ := kv[i+1].(string)
		fields[k] = val
	}
	k, err := parseField(fields["key"])
	if err != nil {
		return region.Change{}, err
	}
	ch, err := decodeChange(v, region.Op(fields["op"]), k, fields["data"])
	ch.Epoch = fields["epoch"]
	return ch, err
}

// Restore implements Store.
func (s *RedisStore) Restore(ctx context.Context, expect string, r region.RestoreRequest) (bool, error) {
	args := make([]any, 0, 5+2*len(r.Instances))
	args = append(args, expect, r.Epoch, r.From, strconv.FormatUint(r.Version, 10), s.channel)
	for _, in := range r.Instances {
		in.ModifyIndex = 0
		b, err := json.Marshal(&in)
		if err != nil {
			return false, fmt.Errorf("encoding instance %s: %w", in.Key(), err)
		}
		args = append(args, field(in.Key()), string(b))
	}
	res, err := restoreScript.Run(ctx, s.c, []string{s.kInstances, s.kIndex, s.kVersion, s.kLog, s.kEpoch}, args...).Slice()
	if err != nil {
		return false, fmt.Errorf("redis restore of region %s: %w", s.region, err)
	}
	if len(res) != 2 {
		return false, fmt.Errorf("redis restore: unexpected reply %v", res)
	}
	ok, _ := res[0].(int64)
	return ok == 1, nil
}

// Subscribe implements Store. go-redis re-subscribes after reconnecting.
func (s *RedisStore) Subscribe(ctx context.Context) <-chan uint64 {
	out := make(chan uint64, 16)
	ps := s.c.Subscribe(ctx, s.channel)
	go func() {
		defer ps.Close()
		in := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				v, err := strconv.ParseUint(m.Payload, 10, 64)
				if err != nil || s.gc.own(ctx, v) {
					continue // this store's own writes reach the cache through OnCommit
				}
				select {
				case out <- v:
				default: // the follower catches up periodically anyway
				}
			}
		}
	}()
	return out
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close implements Store. Writes still queued fail (nothing written).
func (s *RedisStore) Close() error {
	s.gc.close()
	return s.c.Close()
}
