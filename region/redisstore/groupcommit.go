package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/codes"

	"github.com/meridian-sd/meridian/region"
)

// Group commit: RedisStore.Put and Delete do not run one script each.
// They queue their write and wait; one committer goroutine per store takes
// everything queued (up to MaxBatch writes per script call, MaxScripts
// script calls pipelined in one round trip), runs it, and hands each write
// its own result. While one round trip is in flight the next batch
// gathers, so under load a batch is whatever arrived during the previous
// round trip (self-clocking), and a lone write goes at once. Window, when
// set, also holds a batch that is not full for that long before sending.
//
// Each write keeps its own result, version, error and write id: the batch
// script applies the writes in queue order exactly as the single-write
// script did, one after the other, each with its own condition check, its
// own INCR and change-log entry and its own write-id record, so a conflict
// in one write does not fail the others. It trims the change log to
// LogMax and publishes the batch's last version once. Nothing is acknowledged before Redis answered; when the
// answer is lost every write of the round trip gets ErrOutcomeUnknown, and
// repeating a write with its write id returns its first result.

// batchScript applies up to MaxBatch writes atomically, in order.
//
// KEYS: instances, index, version, log, epoch, then the write-result keys
// of the writes that have a write id.
// ARGV: logMax, channel, new epoch, write-id ttl (seconds), n, then six
// per write: op, field, data, ifIndex, mustExist (0|1), write-result key
// index in KEYS (0 for none).
// Returns one flat array: the store's epoch ("" when no write was
// applied), then two values per write: version and data. An applied write
// answers its new version and the data it stored, or 1 for "the data as
// sent" (most puts; a delete stores ""); a failed one answers 0 and
// "notfound" or "conflict"; a repeated write id answers its recorded
// result with the version negated (-version, data), so that it is not
// taken for a new change. A flat array of short values is cheaper to
// build in Lua and to parse than a table and a copy of the data per write.
var batchScript = redis.NewScript(`
local n = tonumber(ARGV[5])
local epoch = nil
local last = nil
local out = {''}
for i = 0, n - 1 do
  local b = 6 + i * 6
  local op, field, data, ifidx, must = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local wi = tonumber(ARGV[b + 5])
  local wk = nil
  if wi > 0 then wk = KEYS[wi] end
  local v, x = nil, nil
  if wk then
    local prev = redis.call('HMGET', wk, 'v', 'd')
    if prev[1] then v, x = -(tonumber(prev[1]) or 0), prev[2] or '' end
  end
  if not v then
    local vs, d = '0', ''
    local cur = redis.call('HGET', KEYS[1], field)
    if (must == '1' or ifidx ~= '0') and not cur then
      v, d = 0, 'notfound'
    elseif ifidx ~= '0' and redis.call('HGET', KEYS[2], field) ~= ifidx then
      v, d = 0, 'conflict'
    else
      if not epoch then
        epoch = redis.call('HGET', KEYS[5], 'id')
        if not epoch then -- the store's first write
          redis.call('HSETNX', KEYS[5], 'id', ARGV[3])
          epoch = redis.call('HGET', KEYS[5], 'id')
        end
      end
      v = redis.call('INCR', KEYS[3])
      -- The version in decimal once, for the index, the log entry's id
      -- and the write-id record: a number passed to redis.call is
      -- formatted with %.14g each time, which costs more.
      vs = string.format('%d', v)
      if op == 'put' then
        d = data
        if cur then
          local reg = string.match(cur, '^{"registered_at":"([^"]*)"')
          local pre = string.match(d, '^{"registered_at":"[^"]*"')
          if reg and pre then d = '{"registered_at":"' .. reg .. '"' .. string.sub(d, string.len(pre) + 1) end
        end
        redis.call('HSET', KEYS[1], field, d)
        redis.call('HSET', KEYS[2], field, vs)
      else
        redis.call('HDEL', KEYS[1], field)
        redis.call('HDEL', KEYS[2], field)
      end
      redis.call('XADD', KEYS[4], vs .. '-1', 'op', op, 'key', field, 'data', d, 'epoch', epoch)
      last = vs
    end
    x = d
    if v > 0 and d == data then x = 1 end
    if wk then
      redis.call('HSET', wk, 'v', vs, 'd', d)
      redis.call('EXPIRE', wk, ARGV[4])
    end
  end
  out[2 * i + 2] = v
  out[2 * i + 3] = x
end
if last then
  -- Trimmed exactly, once per call rather than by a MAXLEN on each XADD
  -- (each exact trim of one entry walks the log's oldest node): after the
  -- call the log keeps the last logMax changes either way.
  redis.call('XTRIM', KEYS[4], 'MAXLEN', ARGV[1])
  redis.call('PUBLISH', ARGV[2], last)
  out[1] = epoch
end
return out
`)

// CommitOptions tunes a RedisStore's group commit.
type CommitOptions struct {
	// MaxBatch is the most writes one script call applies. Default 128.
	MaxBatch int
	// MaxScripts is the most script calls one round trip pipelines (when
	// more than MaxBatch writes are queued). Default 4.
	MaxScripts int
	// Window holds a batch that is not full this long for more writes
	// before sending it. Default 0: a batch goes as soon as the previous
	// round trip is back, which already groups what arrived meanwhile.
	Window time.Duration
	// Timeout bounds one round trip whose writes carry no deadline.
	// Default 5s.
	Timeout time.Duration
}

func (o *CommitOptions) fill() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 128
	}
	if o.MaxScripts <= 0 {
		o.MaxScripts = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
}

// pending is one queued write.
type pending struct {
	ctx  context.Context
	op   region.Op
	k    region.Key
	data string
	// in, when set, is the instance data encodes, as decoding data gives
	// it: a reply that stored data unchanged needs no decoding.
	in *region.Instance
	c  region.Cond
	// state: 0 queued, 1 taken into a round trip, 2 abandoned by its
	// writer before it was taken (nothing written).
	state atomic.Int32
	done  chan pendingResult // buffered 1
}

type pendingResult struct {
	ch  region.Change
	err error
}

// committer is a RedisStore's group commit.
type committer struct {
	s   *RedisStore
	opt CommitOptions

	mu      sync.Mutex
	queue   []*pending
	started bool
	closed  bool
	wake    chan struct{} // buffered 1
	stop    chan struct{}
	stopped chan struct{}

	onCommit atomic.Pointer[func([]region.Change)]

	// flight is closed when the round trip in flight (if any) is answered;
	// last is the highest version a round trip of this store wrote. The
	// store's own subscriber uses them to drop the notifications of its
	// own writes (OnCommit already has them) instead of waking a catch-up
	// read for each. A foreign write whose notification is dropped that
	// way comes before the last round trip's versions, so applying those
	// finds the gap and the cache catches up anyway.
	flightMu sync.Mutex
	flight   chan struct{}
	last     atomic.Uint64

	// counters, for tests and metrics
	batches atomic.Int64
	writes  atomic.Int64
}

func newCommitter(s *RedisStore, opt CommitOptions) *committer {
	opt.fill()
	return &committer{s: s, opt: opt, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
}

// SetCommitOptions replaces the store's group-commit options. Call it
// before the first write.
func (s *RedisStore) SetCommitOptions(o CommitOptions) {
	o.fill()
	s.gc.mu.Lock()
	s.gc.opt = o
	s.gc.mu.Unlock()
}

// OnCommit registers fn to be called with the changes of each round trip,
// in version order, before any of their writers is answered: a cache that
// applies them there reads its own writes once per batch instead of once
// per writer, and in order. fn runs on the committer goroutine and must
// not block on the store.
func (s *RedisStore) OnCommit(fn func([]region.Change)) { s.gc.onCommit.Store(&fn) }

// CommitStats returns how many round trips and writes the group commit
// has sent.
func (s *RedisStore) CommitStats() (roundTrips, writes int64) {
	return s.gc.batches.Load(), s.gc.writes.Load()
}

// submit queues a write and waits for its result.
func (g *committer) submit(ctx context.Context, op region.Op, k region.Key, data string, in *region.Instance, c region.Cond) (region.Change, error) {
	if err := ctx.Err(); err != nil {
		return region.Change{}, fmt.Errorf("redis %s %s: %w", op, k, err)
	}
	p := &pending{ctx: ctx, op: op, k: k, data: data, in: in, c: c, done: make(chan pendingResult, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return region.Change{}, fmt.Errorf("redis %s %s: %w", op, k, redis.ErrClosed)
	}
	if !g.started {
		g.started = true
		go g.run()
	}
	g.queue = append(g.queue, p)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	select {
	case r := <-p.done:
		return r.ch, r.err
	case <-ctx.Done():
		if p.state.CompareAndSwap(0, 2) {
			return region.Change{}, fmt.Errorf("redis %s %s: %w", op, k, ctx.Err())
		}
		// Already sent: Redis may apply it.
		return region.Change{}, fmt.Errorf("redis %s %s: %w: %w", op, k, region.ErrOutcomeUnknown, ctx.Err())
	}
}

// close stops the committer; queued writes fail as not written.
func (g *committer) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	started := g.started
	g.mu.Unlock()
	if started {
		close(g.stop)
		<-g.stopped
	}
}

func (g *committer) run() {
	defer close(g.stopped)
	for {
		select {
		case <-g.stop:
			g.failQueued()
			return
		case <-g.wake:
		}
		for {
			g.mu.Lock()
			opt := g.opt
			queued := len(g.queue)
			g.mu.Unlock()
			if queued == 0 {
				break
			}
			if opt.Window > 0 && queued < opt.MaxBatch {
				t := time.NewTimer(opt.Window)
				select {
				case <-t.C:
				case <-g.stop:
					t.Stop()
				}
			}
			g.mu.Lock()
			n := min(len(g.queue), opt.MaxBatch*opt.MaxScripts)
			batch := make([]*pending, 0, n)
			for _, p := range g.queue[:n] {
				if p.state.CompareAndSwap(0, 1) {
					batch = append(batch, p)
				}
			}
			g.queue = append(g.queue[:0:0], g.queue[n:]...)
			g.mu.Unlock()
			if len(batch) > 0 {
				g.commit(batch, opt)
			}
		}
	}
}

func (g *committer) failQueued() {
	g.mu.Lock()
	q := g.queue
	g.queue = nil
	g.mu.Unlock()
	for _, p := range q {
		if p.state.CompareAndSwap(0, 1) {
			p.done <- pendingResult{err: fmt.Errorf("redis %s %s: %w", p.op, p.k, redis.ErrClosed)}
		}
	}
}

// commit runs one round trip for batch and answers each of its writers.
func (g *committer) commit(batch []*pending, opt CommitOptions) {
	done := make(chan struct{})
	g.flightMu.Lock()
	g.flight = done
	g.flightMu.Unlock()
	defer func() {
		g.flightMu.Lock()
		g.flight = nil
		g.flightMu.Unlock()
		close(done)
	}()
	g.batches.Add(1)
	g.writes.Add(int64(len(batch)))
	// The round trip runs under the first write's context values (its
	// trace) but not its cancellation: one writer giving up must not fail
	// the others. Its deadline is the latest of theirs.
	var dl time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			dl = time.Now().Add(opt.Timeout)
			break
		}
		if d.After(dl) {
			dl = d
		}
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(batch[0].ctx), dl)
	defer cancel()

	var chunks [][]*pending
	for i := 0; i < len(batch); i += opt.MaxBatch {
		chunks = append(chunks, batch[i:min(i+opt.MaxBatch, len(batch))])
	}
	results := make([]pendingResult, len(batch))
	cmds := make([]*redis.Cmd, len(chunks))
	args := make([][]string, len(chunks))
	argv := make([][]any, len(chunks))
	for i, ch := range chunks {
		args[i], argv[i] = g.scriptArgs(ch)
	}
	run := func(idx []int, eval bool) error {
		_, err := g.s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				if eval {
					cmds[i] = batchScript.Eval(ctx, p, args[i], argv[i]...)
				} else {
					cmds[i] = batchScript.EvalSha(ctx, p, args[i], argv[i]...)
				}
			}
			return nil
		})
		return err
	}
	all := make([]int, len(chunks))
	for i := range all {
		all[i] = i
	}
	ctx, span := g.s.commitSpan(ctx, len(chunks), len(batch))
	err := run(all, false)
	// Redis lost the script (a restart, SCRIPT FLUSH): those calls ran
	// nothing; send them again with the script's text.
	var again []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		err = run(again, true)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()

	var changes []region.Change
	off := 0
	for i, chunk := range chunks {
		res, err := cmds[i].Slice()
		var epoch string
		if err == nil && len(res) > 0 {
			epoch, _ = res[0].(string)
		}
		for j, p := range chunk {
			r := &results[off+j]
			switch {
			case err != nil:
				r.err = fmt.Errorf("redis %s %s: %w", p.op, p.k, batchOutcome(err))
			case len(res) != 1+2*len(chunk):
				r.err = fmt.Errorf("redis %s %s: %w: script answered %d values for %d writes", p.op, p.k, region.ErrOutcomeUnknown, len(res), len(chunk))
			default:
				var fresh bool
				r.ch, fresh, r.err = parseApplyReply(p, res[1+2*j], res[2+2*j], epoch)
				if r.err == nil && fresh {
					changes = append(changes, r.ch)
				}
			}
		}
		off += len(chunk)
	}
	if len(changes) > 0 {
		slices.SortFunc(changes, func(a, b region.Change) int { return cmp.Compare(a.Version, b.Version) })
		// The last round trip's, not the highest ever: after the store
		// lost data, versions start again from below.
		g.last.Store(changes[len(changes)-1].Version)
	}
	if fn := g.onCommit.Load(); fn != nil && len(changes) > 0 {
		(*fn)(changes)
	}
	for i, p := range batch {
		p.done <- results[i]
	}
}

// own reports whether version v was written by this store's own group
// commit, waiting for the round trip in flight (if any) to be answered
// first, until ctx ends. Without an OnCommit hook it is always false.
func (g *committer) own(ctx context.Context, v uint64) bool {
	if g.onCommit.Load() == nil {
		return false // nobody takes the changes from the round trips
	}
	g.flightMu.Lock()
	f := g.flight
	g.flightMu.Unlock()
	if f != nil {
		select {
		case <-f:
		case <-ctx.Done():
		}
	}
	return v <= g.last.Load()
}

// scriptArgs builds one batch script call.
func (g *committer) scriptArgs(chunk []*pending) ([]string, []any) {
	s := g.s
	keys := []string{s.kInstances, s.kIndex, s.kVersion, s.kLog, s.kEpoch}
	argv := make([]any, 0, 5+6*len(chunk))
	argv = append(argv, s.logMax, s.channel, region.NewEpoch(), int(region.WriteIDTTL/time.Second), len(chunk))
	for _, p := range chunk {
		must := "0"
		if p.c.MustExist {
			must = "1"
		}
		wi := 0
		if p.c.WriteID != "" {
			keys = append(keys, s.kWrites+p.c.WriteID)
			wi = len(keys)
		}
		argv = append(argv, string(p.op), field(p.k), p.data, strconv.FormatUint(p.c.IfIndex, 10), must, wi)
	}
	return keys, argv
}

// parseApplyReply decodes write p's reply from the batch script: its
// version and data (see batchScript), epoch being the store's epoch the
// script answered. fresh reports a change this call applied (not the
// recorded result of a repeated write id).
func parseApplyReply(p *pending, version, data any, epoch string) (ch region.Change, fresh bool, err error) {
	op, k := p.op, p.k
	v, ok := version.(int64)
	if !ok {
		return region.Change{}, false, fmt.Errorf("redis %s %s: unexpected script reply %v, %v", op, k, version, data)
	}
	str, isStr := data.(string)
	if !isStr {
		if n, _ := data.(int64); n != 1 || v <= 0 {
			return region.Change{}, false, fmt.Errorf("redis %s %s: unexpected script reply %v, %v", op, k, version, data)
		}
		str = p.data // stored as sent
	}
	switch {
	case v == 0:
		switch str {
		case "notfound":
			return region.Change{}, false, region.ErrNotFound
		case "conflict":
			return region.Change{}, false, region.ErrConflict
		}
		return region.Change{}, false, fmt.Errorf("redis %s %s: unexpected script reply %v, %v", op, k, version, data)
	case v < 0: // a repeat: the first result, no epoch
		ch, err = decodeChange(uint64(-v), op, k, str)
		return ch, false, err
	}
	if epoch == "" {
		return region.Change{}, false, fmt.Errorf("redis %s %s: %w: script applied v%d without an epoch", op, k, region.ErrOutcomeUnknown, v)
	}
	if p.in != nil && op == region.OpPut && !isStr {
		in := *p.in
		in.ModifyIndex = uint64(v)
		return region.Change{Version: uint64(v), Op: op, Service: k.Service, ID: k.ID, Instance: &in, Epoch: epoch}, true, nil
	}
	ch, err = decodeChange(uint64(v), op, k, str)
	ch.Epoch = epoch
	return ch, err == nil, err
}

// preExecErrors are the error replies with which Redis refuses a command
// before running any of it: a script answered with one wrote nothing.
var preExecErrors = []string{"NOSCRIPT", "READONLY", "NOAUTH", "NOPERM", "WRONGPASS", "LOADING",
	"MASTERDOWN", "BUSY", "OOM", "CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN", "CROSSSLOT", "NOREPLICAS", "MISCONF"}

// batchOutcome is writeOutcome for a batch script call: an error reply is
// known to have written nothing only when Redis refused to run the script;
// an error raised while it ran (a script error) may come after some of its
// writes were applied.
func batchOutcome(err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range preExecErrors {
			if strings.HasPrefix(msg, p+" ") || msg == p {
				return err
			}
		}
		return fmt.Errorf("%w: %w", region.ErrOutcomeUnknown, err)
	}
	return writeOutcome(err)
}
