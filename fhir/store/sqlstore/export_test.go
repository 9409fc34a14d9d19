package sqlstore

import (
	"context"

	"github.com/promsgateway/gateway/fhir/search"
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

// OnSearchAdmitted has f called with the context of each search as it
// takes its place at a search gate.
func OnSearchAdmitted(s *Store, f func(context.Context)) { s.admitted = f }

// FillSearchGates takes every place of the store's search gates, as that
// many running searches would. freeOne gives back one place of the gate of
// value-planned searches; release gives back all that remain.
func FillSearchGates(s *Store) (freeOne, release func()) {
	var held []chan struct{}
	for _, g := range []chan struct{}{s.searchGate, s.fixedGate} {
		if len(held) > 0 && held[0] == g {
			continue // SQLite: one gate
		}
		for range cap(g) {
			g <- struct{}{}
		}
		held = append(held, g)
	}
	freed := 0
	freeOne = func() { <-s.searchGate; freed++ }
	release = func() {
		for i, g := range held {
			n := cap(g)
			if i == 0 {
				n -= freed
			}
			for range n {
				<-g
			}
		}
	}
	return freeOne, release
}

// SearchStatement is the statement Search runs for a page of q's matches,
// in the store's placeholder syntax, with its arguments.
func SearchStatement(s *Store, q *search.Query) (string, []any, error) {
	sel, err := selectStatement(s.d, q, searchFromWhere(q), sortKeys(q))
	if err != nil {
		return "", nil, err
	}
	return s.d.rebind(sel.b.String()), sel.args, nil
}
