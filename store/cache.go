package store

import (
	"hash/maphash"
	"sync"
	"time"
)

// localCache holds session keys read from Redis, so that a hot key costs no round trip. It is
// exact rather than best-effort: a Del is seen by every Get that starts after it returns (which
// is why it is not ristretto, whose writes are applied asynchronously). Entries live for ttl at
// most; past max entries per shard, an arbitrary entry of the shard makes room.
type localCache struct {
	seed   maphash.Seed
	ttl    time.Duration
	max    int // per shard
	shards [cacheShards]cacheShard
}

const cacheShards = 16

type cacheShard struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	val string
	exp int64 // Unix ns
}

func newLocalCache(ttl time.Duration, maxEntries int) *localCache {
	c := &localCache{seed: maphash.MakeSeed(), ttl: ttl, max: max(maxEntries/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *localCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

func (c *localCache) get(key string, now time.Time) (string, bool) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[key]
	if !ok || now.UnixNano() >= e.exp {
		return "", false
	}
	return e.val, true
}

func (c *localCache) set(key, val string, now time.Time) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= c.max {
		for k := range sh.m { // map order is random: a random victim
			delete(sh.m, k)
			break
		}
	}
	sh.m[key] = cacheEntry{val: val, exp: now.Add(c.ttl).UnixNano()}
}

func (c *localCache) del(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
}

func (c *localCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}
