package sqlstore

import (
	"fmt"
	"testing"
)

func TestReadCacheRules(t *testing.T) {
	v := func(n int64) *cachedVersion {
		return &cachedVersion{version: n, method: "PUT", sealed: make([]byte, 1000)}
	}
	k := cacheKey{"Patient", "a"}
	tests := []struct {
		name string
		run  func(c *readCache)
		want int64 // version cached for k, 0 for none
	}{
		{"a fill is kept", func(c *readCache) { _, g, _ := c.get(k); c.put(k, g, v(1)) }, 1},
		{"a fill that raced an invalidation is dropped", func(c *readCache) {
			_, g, _ := c.get(k)
			c.invalidate(k)
			c.put(k, g, v(1))
		}, 0},
		{"a fill that raced a flush is dropped", func(c *readCache) {
			_, g, _ := c.get(k)
			c.flush()
			c.put(k, g, v(1))
		}, 0},
		{"invalidate forgets", func(c *readCache) {
			_, g, _ := c.get(k)
			c.put(k, g, v(1))
			c.invalidate(k)
		}, 0},
		{"nothing is kept while off", func(c *readCache) {
			c.setOn(false)
			_, g, _ := c.get(k)
			c.put(k, g, v(1))
			c.setOn(true)
		}, 0},
		{"a fill begun while off cannot land after it comes on", func(c *readCache) {
			c.setOn(false)
			_, g, _ := c.get(k)
			c.setOn(true)
			c.put(k, g, v(1))
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newReadCache(1 << 20)
			c.setOn(true)
			tc.run(c)
			got, _, ok := c.get(k)
			switch {
			case tc.want == 0 && ok:
				t.Errorf("cached version %d; want none", got.version)
			case tc.want != 0 && (!ok || got.version != tc.want):
				t.Errorf("cached %v, %v; want version %d", got, ok, tc.want)
			}
		})
	}
}

// The cache keeps to its budget, shard by shard.
func TestReadCacheBudget(t *testing.T) {
	c := newReadCache(64 * 10_000)
	c.setOn(true)
	for i := 0; i < 10_000; i++ {
		k := cacheKey{"Patient", fmt.Sprint(i)}
		_, g, _ := c.get(k)
		c.put(k, g, &cachedVersion{version: 1, sealed: make([]byte, 1000)})
	}
	total, entries := 0, 0
	for i := range c.shards {
		sh := &c.shards[i]
		if sh.bytes > c.perShard {
			t.Errorf("shard %d holds %d bytes; budget %d", i, sh.bytes, c.perShard)
		}
		total += sh.bytes
		entries += len(sh.m)
	}
	if entries == 0 || total > 64*10_000 {
		t.Errorf("%d entries, %d bytes; want some, at most %d bytes", entries, total, 64*10_000)
	}
}
