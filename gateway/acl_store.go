package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/federation"
)

// aclKeys are a region's ACL keys, next to its catalog's (same {region}
// hash tag, so the scripts touch one Redis Cluster slot):
//
//	meridian:{R}:acl:tokens   hash  accessor id -> "<create_index> <token JSON>" (primary)
//	meridian:{R}:acl:hashes   hash  secret hash (hex) -> accessor id (primary)
//	meridian:{R}:acl:version  string table version (INCR with every change)
//	meridian:{R}:acl:replica  string the replica's JSON (other regions)
type aclKeys struct{ tokens, hashes, version, replica string }

func newACLKeys(regionName string) aclKeys {
	p := "meridian:{" + regionName + "}:acl:"
	return aclKeys{tokens: p + "tokens", hashes: p + "hashes", version: p + "version", replica: p + "replica"}
}

// aclCreateScript stores a token unless its secret hash is known.
// KEYS: tokens, hashes, version. ARGV: id, hash, token JSON.
// Returns {create_index, id}; {0, existing id} when the hash exists.
var aclCreateScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if cur then return {0, cur} end
local v = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], v .. ' ' .. ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return {v, ARGV[1]}
`)

// aclDeleteScript deletes a token. KEYS: tokens, hashes, version.
// ARGV: id, hash. Returns the new version, 0 when the id is unknown.
var aclDeleteScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return redis.call('INCR', KEYS[3])
`)

// aclLoadScript reads version and tokens atomically.
var aclLoadScript = redis.NewScript(`
return {redis.call('GET', KEYS[2]) or '0', redis.call('HVALS', KEYS[1])}
`)

// loadPrimary reads the primary's table from Redis.
func (a *ACLs) loadPrimary(ctx context.Context) (*acl.Table, error) {
	res, err := aclLoadScript.Run(ctx, a.rdb, []string{a.keys.tokens, a.keys.version}).Slice()
	if err != nil {
		return nil, fmt.Errorf("reading ACL tokens: %w", err)
	}
	if len(res) != 2 {
		return nil, errors.New("reading ACL tokens: unexpected reply")
	}
	vs, _ := res[0].(string)
	v, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("reading ACL tokens: version %q: %w", vs, err)
	}
	vals, _ := res[1].([]any)
	toks := make([]acl.Token, 0, len(vals))
	for _, x := range vals {
		s, _ := x.(string)
		idx, js, ok := strings.Cut(s, " ")
		var tok acl.Token
		ci, err := strconv.ParseUint(idx, 10, 64)
		if !ok || err != nil || json.Unmarshal([]byte(js), &tok) != nil {
			return nil, errors.New("reading ACL tokens: a stored token is corrupt")
		}
		tok.CreateIndex = ci
		toks = append(toks, tok)
	}
	return acl.NewTable(v, toks)
}

// refresh reloads the primary's table when its version moved.
func (a *ACLs) refresh(ctx context.Context, force bool) error {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	if !force {
		vs, err := a.rdb.Get(ctx, a.keys.version).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("reading the ACL version: %w", err)
		}
		v, _ := strconv.ParseUint(vs, 10, 64)
		if a.loaded.Load() && v == a.table.Load().Version() {
			return nil
		}
	}
	t, err := a.loadPrimary(ctx)
	if err != nil {
		return err
	}
	a.install(t)
	return nil
}

// create stores a new token at the primary and returns it with its
// create index; the table is reloaded before it returns.
func (a *ACLs) create(ctx context.Context, tok acl.Token) (acl.Token, error) {
	if a.rdb == nil {
		return tok, errNoStore
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return tok, err
	}
	res, err := aclCreateScript.Run(ctx, a.rdb, []string{a.keys.tokens, a.keys.hashes, a.keys.version},
		tok.ID, tok.SecretHash, string(b)).Slice()
	if err != nil {
		return tok, fmt.Errorf("storing the token: %w", err)
	}
	if len(res) != 2 {
		return tok, errors.New("storing the token: unexpected reply")
	}
	ci, _ := res[0].(int64)
	if ci == 0 {
		id, _ := res[1].(string)
		return tok, &existsError{id: id}
	}
	tok.CreateIndex = uint64(ci)
	if err := a.refresh(ctx, true); err != nil {
		a.log.Warn("reloading ACL tokens after a write", "err", err)
	}
	return tok, nil
}

type existsError struct{ id string }

func (e *existsError) Error() string { return "a token with this secret exists: " + e.id }

// remove deletes a token at the primary; false when it is unknown.
func (a *ACLs) remove(ctx context.Context, id string) (bool, error) {
	if a.rdb == nil {
		return false, errNoStore
	}
	hash := ""
	if e, ok := a.table.Load().ByID(id); ok {
		hash = e.Token.SecretHash
	}
	v, err := aclDeleteScript.Run(ctx, a.rdb, []string{a.keys.tokens, a.keys.hashes, a.keys.version}, id, hash).Int64()
	if err != nil {
		return false, fmt.Errorf("deleting the token: %w", err)
	}
	if err := a.refresh(ctx, true); err != nil {
		a.log.Warn("reloading ACL tokens after a write", "err", err)
	}
	return v != 0, nil
}

// storeInitial makes sure the primary's table holds the initial token
// (with a random accessor id), so that it replicates.
func (a *ACLs) storeInitial(ctx context.Context) error {
	if a.initial == nil {
		return nil
	}
	if _, ok := a.table.Load().ByHash(a.initialHash); ok {
		return nil
	}
	id, err := newAccessor()
	if err != nil {
		return err
	}
	tok := acl.Token{ID: id, SecretHash: a.initialHash.String(), Description: a.initial.Token.Description, Rules: []acl.Rule{}, Management: true}
	_, err = a.create(ctx, tok)
	var ee *existsError
	if errors.As(err, &ee) {
		return a.refresh(ctx, true)
	}
	if err == nil {
		a.log.Info("stored the initial management token in the primary's ACL table", "accessor", id)
	}
	return err
}

// replicaRecord is a replica of the primary's table as persisted in a
// non-primary region's Redis.
type replicaRecord struct {
	Primary  string      `json:"primary"`
	Version  uint64      `json:"version"`
	SyncedMS int64       `json:"synced_ms"`
	Tokens   []acl.Token `json:"tokens"`
}

func (a *ACLs) loadReplica(ctx context.Context) error {
	if a.rdb == nil {
		return nil
	}
	b, err := a.rdb.Get(ctx, a.keys.replica).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the persisted ACL replica: %w", err)
	}
	var rec replicaRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("decoding the persisted ACL replica: %w", err)
	}
	if rec.Primary != a.primary {
		a.log.Warn("ignoring the persisted ACL replica of another primary", "persisted_primary", rec.Primary)
		return nil
	}
	t, err := acl.NewTable(rec.Version, rec.Tokens)
	if err != nil {
		return fmt.Errorf("the persisted ACL replica: %w", err)
	}
	a.install(t)
	a.mu.Lock()
	a.repl = acl.NewReplication(a.cfg.Replication, rec.Version, time.UnixMilli(rec.SyncedMS))
	a.mu.Unlock()
	a.log.Info("restored the ACL replica from the local store", "version", rec.Version, "tokens", len(rec.Tokens))
	return nil
}

func (a *ACLs) persistReplica(ctx context.Context, t *acl.Table, synced time.Time) error {
	if a.rdb == nil {
		return nil
	}
	b, err := json.Marshal(replicaRecord{Primary: a.primary, Version: t.Version(), SyncedMS: synced.UnixMilli(), Tokens: t.Tokens()})
	if err != nil {
		return err
	}
	return a.rdb.Set(ctx, a.keys.replica, b, 0).Err()
}

// aclSnapshot is the body of GET /v1/federation/acl: the primary's table,
// secrets as hashes only.
type aclSnapshot struct {
	Primary string      `json:"primary"`
	Version uint64      `json:"version"`
	Tokens  []acl.Token `json:"tokens"`
}

// Run keeps the table current until ctx ends: at the primary by reading
// Redis (on start, then whenever its version moves); elsewhere by
// replicating from the primary region's gateways found through fed.
// client carries replication fetches (its transport adds the replication
// token).
func (a *ACLs) Run(ctx context.Context, fed *federation.Federator, client *http.Client, rng *rand.Rand) {
	if a.IsPrimary() {
		a.runPrimary(ctx)
		return
	}
	if err := a.loadReplica(ctx); err != nil {
		a.log.Warn("ACL replica", "err", err)
	}
	if fed == nil {
		a.log.Error("ACL replication needs federation (--serf-bind): only the initial token and the persisted replica authorize", "primary", a.primary)
		return
	}
	a.runReplica(ctx, fed, client, rng)
}

func (a *ACLs) runPrimary(ctx context.Context) {
	if a.rdb == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failing, stored := false, a.initial == nil
	for {
		err := a.refresh(ctx, false)
		if err == nil && !stored {
			// Once per start: a deleted initial token stays deleted
			// until a gateway given it restarts.
			if err = a.storeInitial(ctx); err == nil {
				stored = true
			}
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			a.log.Warn("ACL tokens unavailable from the store; authorizing with the last table", "err", err)
			failing = true
		case err == nil && failing:
			a.log.Info("ACL tokens readable again", "version", a.table.Load().Version())
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *ACLs) primaryPeers(fed *federation.Federator) []string {
	var peers []string
	fed.Read(func(c *federation.Core) {
		for _, m := range c.AliveGateways(a.primary) {
			peers = append(peers, m.HTTPAddr)
		}
	})
	return peers
}

func (a *ACLs) runReplica(ctx context.Context, fed *federation.Federator, client *http.Client, rng *rand.Rand) {
	for ctx.Err() == nil {
		a.mu.Lock()
		f, ok := a.repl.Next(a.primaryPeers(fed))
		a.mu.Unlock()
		var err error
		var snap aclSnapshot
		if !ok {
			err = errors.New("no alive gateway of the primary region " + a.primary)
		} else {
			snap, err = a.fetch(ctx, client, f)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			var t *acl.Table
			if t, err = acl.NewTable(snap.Version, snap.Tokens); err == nil {
				now := a.now()
				a.mu.Lock()
				changed := a.repl.Done(now, f.Peer, snap.Version)
				a.mu.Unlock()
				if changed {
					a.install(t)
					a.log.Info("ACL tokens replicated", "primary", a.primary, "from", f.Peer, "version", snap.Version, "tokens", t.Len())
					if err := a.persistReplica(ctx, t, now); err != nil {
						a.log.Warn("persisting the ACL replica", "err", err)
					}
				}
				continue
			}
		}
		a.mu.Lock()
		first := a.repl.Status(a.now()).Failures == 0
		d := a.repl.Failed(err.Error(), rng)
		a.mu.Unlock()
		if first {
			a.log.Warn("ACL replication failing; authorizing with the tokens this region has", "primary", a.primary, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// fetch makes one blocking fetch of the primary's table.
func (a *ACLs) fetch(ctx context.Context, client *http.Client, f acl.Fetch) (aclSnapshot, error) {
	var snap aclSnapshot
	ctx, cancel := context.WithTimeout(ctx, f.Wait+10*time.Second)
	defer cancel()
	q := url.Values{"index": {strconv.FormatUint(f.Index, 10)}, "wait": {f.Wait.String()}}
	scheme := a.scheme
	if scheme == "" {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+f.Peer+ACLReplicationPath+"?"+q.Encode(), nil)
	if err != nil {
		return snap, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return snap, fmt.Errorf("fetching ACL tokens from %s: %w", f.Peer, err)
	}
	defer resp.Body.Close()
	if a.checkPeer != nil {
		if err := a.checkPeer(f.Peer, a.primary, resp.TLS); err != nil {
			return snap, fmt.Errorf("fetching ACL tokens from %s: %w", f.Peer, err)
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return snap, fmt.Errorf("fetching ACL tokens from %s: %w", f.Peer, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		json.Unmarshal(b, &e)
		return snap, fmt.Errorf("fetching ACL tokens from %s: HTTP %d: %s", f.Peer, resp.StatusCode, e.Error)
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		return snap, fmt.Errorf("decoding ACL tokens from %s: %w", f.Peer, err)
	}
	if snap.Primary != a.primary {
		return snap, fmt.Errorf("%s answered for primary %q, want %q", f.Peer, snap.Primary, a.primary)
	}
	return snap, nil
}

// ACLReplicationPath serves the primary's token table to other regions.
const ACLReplicationPath = "/v1/federation/acl"
