package sqlstore

import (
	"context"

	"github.com/promsgateway/gateway/fhir/store"
)

// CachedVersion reports the version the read cache holds for a resource,
// so tests can see that reads are served from it.
func CachedVersion(s *Store, typ, id string) (int64, bool) {
	if s.cache == nil {
		return 0, false
	}
	v, _, ok := s.cache.get(cacheKey{typ, id})
	if !ok {
		return 0, false
	}
	return v.version, true
}

// CacheOn reports whether the read cache serves reads.
func CacheOn(s *Store) bool { return s.cache != nil && s.cache.on.Load() }

// TxExec runs a statement that returns nothing in a transaction of the
// store (on PostgreSQL it is queued until the next read or the commit).
func TxExec(t store.Tx, q string, args ...any) error {
	return t.(*tx).exec(context.Background(), q, args...)
}

// TxQueryInt runs a statement that returns one integer in a transaction.
func TxQueryInt(t store.Tx, q string, args ...any) (int64, error) {
	var n int64
	err := t.(*tx).queryRow(context.Background(), q, args...).Scan(&n)
	return n, err
}

// Commits reports how many commits the store's grouped (SQLite)
// transactions have taken.
func Commits(s *Store) int64 { return s.commits.Load() }
