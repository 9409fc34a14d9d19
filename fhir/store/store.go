// Package store declares what the gateway's resource store promises, with the
// FHIR R4 rule behind each promise (RESTful API, section 3.1.0). Two engines
// implement it through one SQL implementation (package sqlstore): embedded
// SQLite, the default, and PostgreSQL, for many stateless replicas. Both run
// the same test suite (package storetest).
//
// Resource bodies reach the store already validated and leave it as the exact
// bytes that were stored: the store never re-serialises a resource. It
// maintains id, meta.versionId and meta.lastUpdated itself, and it keeps every
// version, so history and vread are complete. Bodies are sealed (encrypted)
// before they touch the database.
package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/promsgateway/gateway/fhir/search"
)

// Resource is one version of a resource.
type Resource struct {
	Type        string
	ID          string
	Version     int64
	LastUpdated time.Time
	// Deleted marks the version a delete interaction created; it has no Body.
	Deleted bool
	// Method is the interaction that created this version: POST, PUT, PATCH or
	// DELETE (shown in history bundles as entry.request.method).
	Method string
	// Body is the resource JSON as stored, with id and meta set by the store.
	Body []byte
}

// AppendVersionPath appends a version's relative URL,
// [type]/[id]/_history/[vid] (R4 3.1.0.3): the path of vread, Location and
// Content-Location, and the additional data that binds a sealed body to
// its version.
func AppendVersionPath(b []byte, typ, id string, version int64) []byte {
	b = append(b, typ...)
	b = append(b, '/')
	b = append(b, id...)
	b = append(b, "/_history/"...)
	return strconv.AppendInt(b, version, 10)
}

// Write is one create or update.
type Write struct {
	Type string
	// ID is the logical id: server-assigned (create) or from the URL (update).
	ID string
	// Body is the validated resource; its id and meta.versionId/lastUpdated are
	// overwritten by the store.
	Body []byte
	// Method is POST, PUT or PATCH, recorded in history.
	Method string
	// IfMatch, when not zero, is the version the client based its change on
	// (If-Match: W/"n"); any other current version fails with
	// ErrVersionConflict (412) and nothing is written.
	IfMatch int64
	// MustNotExist makes the write fail with ErrExists when a live resource of
	// that id exists (create with a server-assigned id never collides).
	MustNotExist bool
	// MustExist makes the write fail with ErrNotFound when no live resource of
	// that id exists (update when update-as-create is disabled).
	MustExist bool
	// NewID says the server generated ID just now (a random UUID), so the
	// resource cannot exist and the store need not lock it first; a
	// collision still fails with ErrExists.
	NewID bool
	// Index are the resource's search index rows (search.Registry.Extract),
	// computed by the caller before the transaction.
	Index []search.Row
}

// TokenMatch is one token criterion of MatchTokens.
type TokenMatch struct {
	Type, Param, System, Code string
}

// SearchResult is one page of a search.
type SearchResult struct {
	Matches []*Resource
	// Next continues the search; nil on the last page.
	Next *search.Cursor
	// Total counts all matches, or is -1 when the query asked for none.
	Total int
	// Included holds the resources that the query's _include and
	// _revinclude reach from Matches (R4 3.1.1.5.6), without duplicates of
	// Matches.
	Included []*Resource
}

// HistoryQuery selects versions for the history interactions. Type and ID
// empty select the whole system; ID empty selects a type.
type HistoryQuery struct {
	Type, ID string
	// Since keeps versions last updated at or after this instant (_since).
	Since time.Time
	// AtStart and AtEnd keep versions that were current at some moment in
	// [AtStart, AtEnd) (_at, whose precision gives the range).
	AtStart, AtEnd time.Time
	// Count is the page size; Cursor, from a previous page, continues it.
	Count  int
	Cursor int64
}

// HistoryPage is one page of history, newest first.
type HistoryPage struct {
	Versions []*Resource
	// Next is the cursor of the following page, 0 at the end.
	Next int64
	// Total is the number of versions matching the query, over all pages.
	Total int
}

// Reader is what both the store and a transaction can read.
type Reader interface {
	// Read returns the current version. A deleted resource comes back with
	// Deleted set (the caller answers 410); one that never existed is
	// ErrNotFound.
	Read(ctx context.Context, typ, id string) (*Resource, error)
	// VRead returns one version; ErrNotFound if it does not exist.
	VRead(ctx context.Context, typ, id string, version int64) (*Resource, error)
	// History returns versions newest first.
	History(ctx context.Context, q HistoryQuery) (*HistoryPage, error)
	// Search returns one page of the live resources that meet q, in q's
	// order (R4 3.1.1), with the cursor of the next page and what the
	// page's _include and _revinclude reach.
	Search(ctx context.Context, q *search.Query) (*SearchResult, error)
	// MatchTokens looks many token criteria up at once, as the conditional
	// entries of a transaction need: for each, the ids of the live
	// resources of its Type whose index rows for Param hold exactly System
	// and Code, the semantics of a search for "Param=System|Code" (R4
	// 3.1.1.4.4). System and Code are in index form (blinded where the
	// parameter is).
	MatchTokens(ctx context.Context, criteria []TokenMatch) ([][]string, error)
}

// Tx is a unit of work: everything done through it is committed together or
// not at all.
type Tx interface {
	Reader
	// Put creates or updates a resource and returns the stored version.
	// created is true when no live version existed before.
	Put(ctx context.Context, w Write) (res *Resource, created bool, err error)
	// Delete marks a resource deleted by adding a version without a body. It
	// returns nil, nil when there was nothing live to delete (delete is
	// idempotent). ifMatch works as in Write.
	Delete(ctx context.Context, typ, id, method string, ifMatch int64) (*Resource, error)
	// LockCriteria holds, until the transaction ends, a lock on each key:
	// the search criteria of a conditional create or update. Two
	// transactions that decide on the same criteria (no match, so create)
	// therefore run one after the other and cannot both create (R4
	// 3.1.0.8-9 expect at most one match afterwards). Keys locked in one
	// call are locked in sorted order; a deadlock between calls is a
	// retryable failure of InTx.
	LockCriteria(ctx context.Context, keys ...string) error
	// Serialized reports that the transaction holds the database's only
	// write lock (SQLite): no other writer runs until it ends, so what it
	// has read stays true and LockCriteria has nothing to wait for.
	Serialized() bool
}

// Store is the resource store.
type Store interface {
	Reader
	// InTx runs fn in a transaction, committing when fn returns nil and rolling
	// back otherwise. fn may run more than once when the database reports a
	// serialisation failure or deadlock, so it must not have side effects
	// outside the transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Reindex recomputes the search index of every live resource with index,
	// in batches, each batch in its own transaction; progress is called
	// after each batch with the resources done and the total. Searches and
	// writes continue meanwhile.
	// An error from index stops the run; what was done stays done.
	Reindex(ctx context.Context, index func(ctx context.Context, typ string, body []byte) ([]search.Row, error), progress func(done, total int)) error
	// Ping checks that the database answers (for /readyz).
	Ping(ctx context.Context) error
	// Engine names the database engine ("sqlite" or "postgres").
	Engine() string
	Close() error
}

// The store's errors; the REST layer maps them to OperationOutcomes.
var (
	ErrNotFound        = errors.New("resource not found")
	ErrVersionConflict = errors.New("version conflict")
	ErrExists          = errors.New("resource already exists")
	// ErrBadCursor is a paging cursor that was not made for this search
	// (its sort keys differ); the client gets 400.
	ErrBadCursor = errors.New("the cursor does not belong to this search")
)
