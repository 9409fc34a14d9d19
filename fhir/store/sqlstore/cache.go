package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
)

// readCache keeps recently read current versions in memory so a read by id
// need not reach the database. It holds what the database holds: the
// sealed (encrypted) body and the version's metadata, so no plaintext
// outlives a request and a hit still opens the body with its data key.
//
// It is coherent by construction, not by expiry:
//   - a commit of this process invalidates what it wrote before InTx
//     returns, so a client that wrote reads its write;
//   - writes of other processes (replicas on one PostgreSQL, a `gateway
//     import` beside `gateway serve` on one SQLite file) reach it through
//     the change feed (changes.go), which follows resource_version and
//     invalidates each key it sees; until the feed knows it has missed
//     nothing, the cache is off;
//   - a read that raced with an invalidation of its shard does not fill
//     the cache (each shard has a generation, taken before the database
//     read and compared after).
type readCache struct {
	seed     maphash.Seed
	on       atomic.Bool
	perShard int
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

type cacheKey struct{ typ, id string }

// cachedVersion is a current version as the database has it.
type cachedVersion struct {
	version int64
	updated int64 // last_updated, Unix microseconds
	deleted bool
	method  string
	sealed  []byte
}

func (v *cachedVersion) size() int { return len(v.sealed) + len(v.method) + 96 }

type cacheShard struct {
	mu    sync.Mutex
	gen   uint64
	bytes int
	m     map[cacheKey]*cachedVersion
}

// newReadCache makes a cache of at most maxBytes (keys and sealed bodies);
// it starts off, for the change feed to turn on.
func newReadCache(maxBytes int) *readCache {
	c := &readCache{seed: maphash.MakeSeed(), perShard: max(maxBytes/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]*cachedVersion{}
	}
	return c
}

func (c *readCache) shard(k cacheKey) *cacheShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.typ)
	h.WriteByte(0)
	h.WriteString(k.id)
	return &c.shards[h.Sum64()%cacheShards]
}

// get returns the cached current version of k, or, on a miss, the shard
// generation to pass to put after reading the database.
func (c *readCache) get(k cacheKey) (*cachedVersion, uint64, bool) {
	if !c.on.Load() {
		return nil, 0, false
	}
	sh := c.shard(k)
	sh.mu.Lock()
	v, ok := sh.m[k]
	gen := sh.gen
	sh.mu.Unlock()
	return v, gen, ok
}

// put caches v for k unless the shard saw an invalidation since gen was
// taken (the database read may then predate a commit) or the cache is off.
func (c *readCache) put(k cacheKey, gen uint64, v *cachedVersion) {
	// A version larger than a quarter of a shard would crowd out the rest.
	if !c.on.Load() || v.size() > c.perShard/4 {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if old, ok := sh.m[k]; ok {
		sh.bytes -= old.size()
	}
	sh.m[k] = v
	sh.bytes += v.size()
	// Evict arbitrary entries (map order is unspecified, which is enough
	// for a cache whose hits are what a read workload keeps asking for).
	for key, old := range sh.m {
		if sh.bytes <= c.perShard {
			break
		}
		if key != k {
			delete(sh.m, key)
			sh.bytes -= old.size()
		}
	}
}

// invalidate forgets k and fails any fill of its shard that began earlier.
func (c *readCache) invalidate(k cacheKey) {
	sh := c.shard(k)
	sh.mu.Lock()
	sh.gen++
	if old, ok := sh.m[k]; ok {
		delete(sh.m, k)
		sh.bytes -= old.size()
	}
	sh.mu.Unlock()
}

// flush forgets everything.
func (c *readCache) flush() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen++
		clear(sh.m)
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

// setOn turns the cache on or off. Either way it starts empty, and a fill
// that began before cannot land (flush moves every generation on).
func (c *readCache) setOn(on bool) {
	if on {
		c.flush()
		c.on.Store(true)
		return
	}
	c.on.Store(false)
	c.flush()
}

// read is Store.Read through the cache.
func (c *readCache) read(ctx context.Context, r reader, typ, id string) (*store.Resource, error) {
	k := cacheKey{typ, id}
	v, gen, hit := c.get(k)
	if hit {
		res := &store.Resource{Type: typ, ID: id, Version: v.version, LastUpdated: time.UnixMicro(v.updated).UTC(), Deleted: v.deleted, Method: v.method}
		if err := r.open(ctx, res, v.sealed); err == nil {
			return res, nil
		}
		// The data key is gone (rotated and retired): read afresh.
		c.invalidate(k)
		_, gen, _ = c.get(k)
	}
	res, sealed, err := scanVersion(r.queryRow(ctx, sqlRead, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := r.open(ctx, res, sealed); err != nil {
		return nil, err
	}
	c.put(k, gen, &cachedVersion{version: res.Version, updated: res.LastUpdated.UnixMicro(), deleted: res.Deleted, method: res.Method, sealed: slices.Clip(sealed)})
	return res, nil
}
