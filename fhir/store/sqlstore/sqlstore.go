// Package sqlstore implements store.Store on SQL databases: embedded SQLite
// (modernc.org/sqlite, no cgo) and PostgreSQL (pgx). One implementation with
// a small dialect keeps the two engines' behaviour identical.
//
// Tables: resource_version holds every version (sealed body, or none for a
// delete); resource_current points at each resource's latest version and is
// the row a writer locks; search_index holds the search rows of current
// versions (docs/search.md).
//
// Concurrency: every write locks the resource's current row (SQLite: the
// database write lock taken at BEGIN IMMEDIATE; PostgreSQL: an INSERT ... ON
// CONFLICT DO UPDATE that makes the row exist and locks it), so concurrent
// updates of one resource are serialised and none is lost. PostgreSQL's
// write transactions pipeline their statements (pgtx.go).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// Sealer encrypts and decrypts resource bodies, binding additional
// authenticated data (vault.Envelope implements it).
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, sealed, aad []byte) ([]byte, error)
}

// Store is a store.Store on SQLite or PostgreSQL.
type Store struct {
	db *sql.DB
	// searchDB runs searches outside transactions; on PostgreSQL it plans
	// each execution with its values, and fixedDB, for the searches whose
	// SQL fixes their plan, keeps generic plans (see Search). On SQLite
	// both are db.
	searchDB, fixedDB *sql.DB
	// searchGate and fixedGate admit searches to searchDB and fixedDB in
	// the order they arrive. database/sql hands a freed connection to a
	// random waiter, so under load some searches waited many turns (p99
	// 4.5 times p50 at concurrency 32); a channel's waiters are served
	// first come, first served. A gate holds fewer searches than its pool
	// has connections when reads and writes share that pool (SQLite).
	searchGate, fixedGate chan struct{}
	// admitted, when set (by tests), is told of each search as it takes
	// its place at a gate.
	admitted func(context.Context)
	d        dialect
	seal     Sealer
	dsn      string

	clockMu sync.Mutex
	last    time.Time

	stmts  sync.Map // query -> *sql.Stmt
	nstmts atomic.Int32

	// writer holds the turn of this process's one SQLite writer, and
	// queued the transactions waiting for it (group.go).
	writer  chan struct{}
	queueMu sync.Mutex
	queued  []*request
	// commits counts the commits of grouped transactions.
	commits atomic.Int64
	// ckpt runs SQLite's checkpoints (checkpoint.go).
	ckpt *checkpointer

	// cache, when EnableReadCache set it, serves reads by id; the change
	// feed goroutine keeps it coherent until stopFeed.
	cache    *readCache
	stopFeed context.CancelFunc
	feedDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open connects to dsn — a postgres:// or postgresql:// URL, or else a SQLite
// file path (its directory is created) — and creates the schema if needed.
func Open(ctx context.Context, dsn string, seal Sealer) (*Store, error) {
	var (
		db, searchDB, fixedDB *sql.DB
		searchGate, fixedGate chan struct{}
		d                     dialect
		err                   error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		d = postgresDialect
		// 48 connections in all, as many as writes and searches at
		// concurrency 32 on two cores keep busy (and the read cache's
		// change feed has one of its own: feedDB).
		db, err = openPostgres(dsn, cachedPlans, 24, nil)
		if err == nil {
			searchDB, err = openPostgres(dsn, valuePlans, 8, nil)
		}
		if err == nil {
			fixedDB, err = openPostgres(dsn, genericPlans, 16, nil)
		}
		// Four searches at a time per pool: on two cores more running
		// PostgreSQL backends only take turns with each other (measured at
		// concurrency 32: p99 67 ms with 16 admitted, 38 ms with 4, at the
		// same rate). Fixed-plan searches, short by construction, never
		// wait behind a slow value-planned one.
		searchGate, fixedGate = make(chan struct{}, 4), make(chan struct{}, 4)
	} else {
		d = sqliteDialect
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
		db, err = openSQLite(dsn)
		// Six of the eight connections: two stay for reads and writes.
		searchGate = make(chan struct{}, 6)
		fixedGate = searchGate
	}
	if searchDB == nil {
		searchDB = db
	}
	if fixedDB == nil {
		fixedDB = db
	}
	s := &Store{db: db, searchDB: searchDB, fixedDB: fixedDB, searchGate: searchGate, fixedGate: fixedGate,
		d: d, seal: seal, dsn: dsn, writer: make(chan struct{}, 1)}
	if err != nil {
		s.closePools()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.closePools()
		return nil, fmt.Errorf("open store: migrate: %w", err)
	}
	for _, q := range s.fixedStatements() {
		if _, err := s.reader().prepared(ctx, q); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store: prepare: %w", err)
		}
	}
	if d.name == "sqlite" {
		if s.ckpt, err = startCheckpointer(dsn, s.writer, checkpointEvery); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store: checkpointer: %w", err)
		}
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.name == "postgres" {
		// Replicas starting together must not race on CREATE TABLE.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727368)`); err != nil {
			return err
		}
	}
	ddl := append(append([]string{}, s.d.schema...), s.d.indexes...)
	if s.d.name == "postgres" {
		if ddl, err = missingObjects(ctx, tx, ddl); err != nil {
			return err
		}
	}
	for _, q := range ddl {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s: %w", q, err)
		}
	}
	if err := dropRetired(ctx, tx, s.d.retired, s.d.name == "postgres"); err != nil {
		return fmt.Errorf("retired indexes: %w", err)
	}
	if s.d.name == "postgres" {
		if err := postgresCollation(ctx, tx); err != nil {
			return fmt.Errorf("collation: %w", err)
		}
	}
	if s.d.name == "sqlite" {
		if err := seedPlannerStats(ctx, tx); err != nil {
			return fmt.Errorf("planner statistics: %w", err)
		}
	}
	return tx.Commit()
}

// dropRetired drops the retired indexes that still exist. On PostgreSQL it
// looks first: DROP INDEX IF EXISTS takes its table's exclusive lock even
// when there is nothing to drop (see missingObjects).
func dropRetired(ctx context.Context, tx *sql.Tx, retired []string, postgres bool) error {
	for _, name := range retired {
		if postgres {
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				continue
			}
		}
		// The name is ours, from retiredIndexes.
		if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+name); err != nil {
			return err
		}
	}
	return nil
}

// ddlName finds the table or index a schema statement creates.
var ddlName = regexp.MustCompile(`^CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)`)

// missingObjects returns the statements of ddl whose table or index does
// not exist yet. CREATE INDEX IF NOT EXISTS takes a SHARE lock on its table
// before it finds the index there, so run against a database in use it
// would wait for every write transaction in progress, and every write
// after it would wait for it: a replica starting, or an import beside the
// server, would stall the writes of all of them.
func missingObjects(ctx context.Context, tx *sql.Tx, ddl []string) ([]string, error) {
	names := make([]string, len(ddl))
	for i, q := range ddl {
		m := ddlName.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("schema statement without a name: %.60s", q)
		}
		names[i] = m[1]
	}
	rows, err := tx.QueryContext(ctx, `SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL`, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	missing := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		missing[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for i, q := range ddl {
		if missing[names[i]] {
			out = append(out, q)
		}
	}
	return out, nil
}

// postgresCollation gives the text columns of a database created before
// they were declared COLLATE "C" (dialect.go) that collation, in the
// migration's transaction. Only the indexes on them are rebuilt, once; the
// rows are not rewritten.
func postgresCollation(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'
		AND table_name IN ('resource_version', 'resource_current', 'search_index', 'pseudonym_escrow')
		ORDER BY table_name, ordinal_position`)
	if err != nil {
		return err
	}
	alter := map[string][]string{}
	var tables []string
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			rows.Close()
			return err
		}
		if alter[table] == nil {
			tables = append(tables, table)
		}
		alter[table] = append(alter[table], fmt.Sprintf(`ALTER COLUMN %s TYPE TEXT COLLATE "C"`, column))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, table := range tables {
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+table+" "+strings.Join(alter[table], ", ")); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

// sqlitePlannerStats describe to SQLite's planner the shape the index
// tables have in use (rows, then rows per distinct prefix of the index's
// columns), in the format of sqlite_stat1. Without statistics SQLite
// guesses ten rows per value of any indexed column, and so prefers
// search_index_resource_param (res_type, res_id, param), which returns
// res_id in order,
// over search_index_val for an identifier lookup: every conditional update
// then read every index row of its type (measured: 4 ms per lookup after
// 300 imported records, growing with the data). SQLite documents writing
// sqlite_stat1 by hand for exactly this; a later ANALYZE replaces these
// figures with measured ones.
var sqlitePlannerStats = [][3]string{
	{"search_index", "search_index_resource_param", "1000000 100000 20 2"},
	{"search_index", "search_index_val", "1000000 100000 5000 3 2"},
	{"search_index", "search_index_date", "300000 100000 5000 10 5"},
	{"search_index", "search_index_number", "100000 50000 5000 10"},
	{"search_index", "search_index_compartment", "300000 30 10 1"},
	{"resource_version", "resource_version_type_seq", "1000000 100000 1"},
	{"resource_version", "resource_version_updated", "1000000 2"},
}

// seedPlannerStats writes the sqlitePlannerStats of every index that has
// no statistics yet (a new database, or an index added since ANALYZE ran),
// drops the value samples an ANALYZE leaves in sqlite_stat4, then makes the
// planner load the statistics.
//
// With samples, SQLite (built with SQLITE_ENABLE_STAT4, as the driver is)
// marks every prepared statement whose plan a bound value could change,
// and compiles it again whenever that value changes: every search, on
// every execution (measured: a quarter of the CPU of an _include search
// over 1M Observations). The gateway's statements are prepared once to be
// planned once, and the per-index row counts of sqlite_stat1 are what its
// plans need. An ANALYZE run while the gateway runs brings the samples
// back until its next start.
func seedPlannerStats(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `ANALYZE sqlite_schema`); err != nil { // creates sqlite_stat1
		return err
	}
	var samples int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat4'`).Scan(&samples); err != nil {
		return err
	}
	if samples > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_stat4`); err != nil {
			return err
		}
	}
	for _, st := range sqlitePlannerStats {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = ? AND idx = ?)`, st[0], st[1], st[2], st[0], st[1]); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `ANALYZE sqlite_schema`)
	return err
}

// DB exposes the connection pool to tests that inspect raw storage.
func (s *Store) DB() *sql.DB { return s.db }

// Engine names the database engine.
func (s *Store) Engine() string { return s.d.name }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the prepared statements and the connection pool.
func (s *Store) Close() error {
	if s.stopFeed != nil {
		s.stopFeed()
		<-s.feedDone
	}
	if s.ckpt != nil {
		s.ckpt.close()
	}
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return s.closePools()
}

// closePools closes each pool once (on SQLite they are one), skipping any
// that never opened, and returns the main pool's error.
func (s *Store) closePools() error {
	for _, p := range []*sql.DB{s.searchDB, s.fixedDB} {
		if p != nil && p != s.db {
			p.Close()
		}
	}
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// now returns a strictly increasing time at microsecond precision, so
// versions written by this process never share or reverse lastUpdated.
func (s *Store) now() time.Time {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(s.last) {
		t = s.last.Add(time.Microsecond)
	}
	s.last = t
	return t
}

// pool names a connection pool of the Store.
type pool int

// The pools: db, searchDB, fixedDB.
const (
	mainPool pool = iota
	valuePlanPool
	fixedPlanPool
)

// poolKeys prefix the statement cache's keys: a statement is prepared on
// the pool it runs on.
var poolKeys = [...]string{mainPool: "", valuePlanPool: "value\x00", fixedPlanPool: "fixed\x00"}

// reader implements store.Reader on one of the pools, or inside tx when it
// is set.
type reader struct {
	s    *Store
	tx   *sql.Tx
	pg   *pgTx // a PostgreSQL transaction, instead of tx
	from pool
	// shared marks a transaction of a SQLite group (group.go): its
	// statements run without their context's cancellation, which is
	// checked before each instead.
	shared bool
}

// detach returns the context a statement runs with: for a shared
// transaction, ctx without its cancellation, or ctx's error if it has
// ended.
func (r reader) detach(ctx context.Context) (context.Context, error) {
	if !r.shared {
		return ctx, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (r reader) pool() *sql.DB {
	switch r.from {
	case valuePlanPool:
		return r.s.searchDB
	case fixedPlanPool:
		return r.s.fixedDB
	}
	return r.s.db
}

func (s *Store) reader() reader { return reader{s: s} }

// maxStatements bounds the prepared-statement cache; queries whose shape
// varies (IN lists of different lengths) run unprepared past it.
const maxStatements = 256

// prepared returns the cached prepared statement for q (written with ?
// placeholders), preparing it on first use: SQLite would otherwise parse the
// SQL on every call. It returns nil, to run q unprepared, when the cache is
// full or when called inside a transaction for a statement not yet cached:
// preparing takes another connection from the pool, and a transaction that
// waits for one while holding its own (and, on SQLite, the write lock) can
// starve the pool. The statements transactions use are prepared at Open.
func (r reader) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	key := poolKeys[r.from] + q
	if st, ok := r.s.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	if r.tx != nil || r.s.nstmts.Load() >= maxStatements {
		return nil, nil
	}
	st, err := r.pool().PrepareContext(ctx, r.s.d.rebind(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := r.s.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	r.s.nstmts.Add(1)
	return st, nil
}

func (r reader) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	if r.pg != nil {
		return r.pg.queryRow(ctx, rebindCached(r.s.d, q), args)
	}
	ctx, err := r.detach(ctx)
	if err != nil {
		return errRow{err}
	}
	st, err := r.prepared(ctx, q)
	switch {
	case err != nil || st == nil:
		if r.tx != nil {
			return r.tx.QueryRowContext(ctx, r.s.d.rebind(q), args...)
		}
		return r.pool().QueryRowContext(ctx, r.s.d.rebind(q), args...)
	case r.tx != nil:
		return r.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (r reader) query(ctx context.Context, q string, args ...any) (rowsIter, error) {
	if r.pg != nil {
		return r.pg.query(ctx, rebindCached(r.s.d, q), args)
	}
	ctx, err := r.detach(ctx)
	if err != nil {
		return nil, err
	}
	st, err := r.prepared(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case st == nil && r.tx != nil:
		return r.tx.QueryContext(ctx, r.s.d.rebind(q), args...)
	case st == nil:
		return r.pool().QueryContext(ctx, r.s.d.rebind(q), args...)
	case r.tx != nil:
		return r.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (r reader) exec(ctx context.Context, q string, args ...any) error {
	if r.pg != nil {
		return r.pg.queue(rebindCached(r.s.d, q), args)
	}
	ctx, err := r.detach(ctx)
	if err != nil {
		return err
	}
	st, err := r.prepared(ctx, q)
	switch {
	case err != nil:
		return err
	case st == nil && r.tx != nil:
		_, err = r.tx.ExecContext(ctx, r.s.d.rebind(q), args...)
	case st == nil:
		_, err = r.pool().ExecContext(ctx, r.s.d.rebind(q), args...)
	case r.tx != nil:
		_, err = r.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	default:
		_, err = st.ExecContext(ctx, args...)
	}
	return err
}

// Read implements store.Reader.
func (s *Store) Read(ctx context.Context, typ, id string) (*store.Resource, error) {
	if s.cache != nil {
		return s.cache.read(ctx, s.reader(), typ, id)
	}
	return s.reader().Read(ctx, typ, id)
}

// VRead implements store.Reader.
func (s *Store) VRead(ctx context.Context, typ, id string, v int64) (*store.Resource, error) {
	return s.reader().VRead(ctx, typ, id, v)
}

// History implements store.Reader.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) (*store.HistoryPage, error) {
	return s.reader().History(ctx, q)
}

// InTx implements store.Store.
func (s *Store) InTx(ctx context.Context, fn func(store.Tx) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(i*i) * 5 * time.Millisecond):
			}
		}
		err = s.runTx(ctx, fn)
		if err == nil || !s.d.retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) runTx(ctx context.Context, fn func(store.Tx) error) error {
	if s.d.name == "postgres" {
		return s.runPgTx(ctx, fn)
	}
	return s.runGrouped(ctx, fn)
}

func aad(typ, id string, version int64) []byte {
	return store.AppendVersionPath(make([]byte, 0, len(typ)+len(id)+30), typ, id, version)
}

func (r reader) open(ctx context.Context, res *store.Resource, sealed []byte) error {
	if res.Deleted {
		return nil
	}
	body, err := r.s.seal.Open(ctx, sealed, aad(res.Type, res.ID, res.Version))
	if err != nil {
		return fmt.Errorf("%s/%s version %d: %w", res.Type, res.ID, res.Version, err)
	}
	res.Body = body
	return nil
}

const versionColumns = `v.type, v.id, v.version, v.last_updated, v.deleted, v.method, v.body`

// The statements of reads and writes, prepared once at Open.
const (
	sqlRead = `SELECT ` + versionColumns + ` FROM resource_current c
		JOIN resource_version v ON v.type = c.type AND v.id = c.id AND v.version = c.version
		WHERE c.type = ? AND c.id = ? AND c.version > 0`
	sqlVRead = `SELECT ` + versionColumns + ` FROM resource_version v
		WHERE v.type = ? AND v.id = ? AND v.version = ?`
	// The no-op DO UPDATE takes the row lock and returns the row in one round
	// trip; a concurrent creator of the same id waits for the first to finish.
	sqlLock = `INSERT INTO resource_current (type, id, version, deleted) VALUES (?, ?, 0, 1)
		ON CONFLICT (type, id) DO UPDATE SET version = resource_current.version
		RETURNING version, deleted`
	sqlLockCriteria = `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(?::text[]) AS k`
	sqlSetCurrent   = `UPDATE resource_current SET version = ?, deleted = ? WHERE type = ? AND id = ?`
	sqlNewCurrent   = `INSERT INTO resource_current (type, id, version, deleted) VALUES (?, ?, 1, 0)`
	sqlRecord       = `INSERT INTO resource_version (type, id, version, last_updated, method, deleted, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlUnindex = `DELETE FROM search_index WHERE res_type = ? AND res_id = ?`
)

// indexColumns is how many values each index row adds to an insert after
// res_type and res_id.
const indexColumns = 8

// indexBatch is the most index rows one insert statement writes.
const indexBatch = 24

// sqlIndex inserts n index rows (SQLite).
//
// OR FAIL spares each statement SQLite's statement journal. Under the
// default conflict action (ABORT) a statement of several rows that could
// fail a constraint part way, as search_index's NOT NULL columns could,
// copies every page it first changes into that journal, so that a failure
// undoes its earlier rows: 16% of the index inserts' time, and 7% of the
// writer's, when ingesting records. Under FAIL a failed statement keeps
// its earlier rows, but a failed statement fails its write, whose
// transaction (or savepoint, in a group) is rolled back whole.
func sqlIndex(n int) string {
	row := "(?, ?" + strings.Repeat(", ?", indexColumns) + "),"
	return `INSERT OR FAIL INTO search_index (res_type, res_id, param, sys, val, raw, dlow, dhigh, nlow, nhigh) VALUES ` + strings.TrimSuffix(strings.Repeat(row, n), ",")
}

// indexArgs are the values of one index row after res_type and res_id;
// absent dates and numbers are NULL.
func indexArgs(row search.Row) []any {
	args := []any{row.Param, row.Sys, row.Val, row.Raw, nil, nil, nil, nil}
	if row.HasDate {
		args[4], args[5] = row.DLow, row.DHigh
	}
	if row.HasNumber {
		args[6], args[7] = row.NLow, row.NHigh
	}
	return args
}

// fixedStatements are prepared at Open so that transactions never prepare.
// PostgreSQL's transactions run on pgx's own statement cache (pgTx), so
// there only the reads outside transactions are prepared.
func (s *Store) fixedStatements() []string {
	if s.d.name == "postgres" {
		return []string{sqlRead, sqlVRead}
	}
	qs := []string{sqlRead, sqlVRead, sqlLock, sqlSetCurrent, sqlNewCurrent, sqlRecord, sqlUnindex}
	for n := 1; n <= indexBatch; n++ {
		qs = append(qs, sqlIndex(n))
	}
	return qs
}

func scanVersion(sc interface{ Scan(...any) error }, extra ...any) (*store.Resource, []byte, error) {
	var (
		res     store.Resource
		updated int64
		deleted int
		body    []byte
	)
	dest := append([]any{&res.Type, &res.ID, &res.Version, &updated, &deleted, &res.Method, &body}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, nil, err
	}
	res.LastUpdated = time.UnixMicro(updated).UTC()
	res.Deleted = deleted != 0
	return &res, body, nil
}

func (r reader) one(ctx context.Context, q string, args ...any) (*store.Resource, error) {
	res, body, err := scanVersion(r.queryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return res, r.open(ctx, res, body)
}

func (r reader) Read(ctx context.Context, typ, id string) (*store.Resource, error) {
	return r.one(ctx, sqlRead, typ, id)
}

func (r reader) VRead(ctx context.Context, typ, id string, version int64) (*store.Resource, error) {
	return r.one(ctx, sqlVRead, typ, id, version)
}

func (r reader) History(ctx context.Context, hq store.HistoryQuery) (*store.HistoryPage, error) {
	var (
		where []string
		args  []any
	)
	if hq.Type != "" {
		where, args = append(where, "v.type = ?"), append(args, hq.Type)
	}
	if hq.ID != "" {
		where, args = append(where, "v.id = ?"), append(args, hq.ID)
	}
	if !hq.Since.IsZero() {
		where, args = append(where, "v.last_updated >= ?"), append(args, hq.Since.UnixMicro())
	}
	if !hq.AtEnd.IsZero() {
		// Current at some moment in [AtStart, AtEnd): it began before AtEnd
		// and its successor, if any, began after AtStart.
		where = append(where, `v.last_updated < ? AND NOT EXISTS (SELECT 1 FROM resource_version n
			WHERE n.type = v.type AND n.id = v.id AND n.version = v.version + 1 AND n.last_updated <= ?)`)
		args = append(args, hq.AtEnd.UnixMicro(), hq.AtStart.UnixMicro())
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	page := &store.HistoryPage{}
	if err := r.queryRow(ctx, `SELECT COUNT(*) FROM resource_version v`+cond, args...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("history count: %w", err)
	}
	if hq.Cursor > 0 {
		if cond == "" {
			cond = " WHERE v.seq < ?"
		} else {
			cond += " AND v.seq < ?"
		}
		args = append(args, hq.Cursor)
	}
	count := hq.Count
	if count <= 0 {
		count = 50
	}
	args = append(args, count+1)
	rows, err := r.query(ctx, `SELECT `+versionColumns+`, v.seq FROM resource_version v`+cond+` ORDER BY v.seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	type sealedRow struct {
		res  *store.Resource
		body []byte
	}
	var got []sealedRow
	var lastSeq int64
	for rows.Next() {
		var seq int64
		res, body, err := scanVersion(rows, &seq)
		if err != nil {
			return nil, err
		}
		if len(got) == count {
			page.Next = lastSeq
			break
		}
		got = append(got, sealedRow{res, body})
		lastSeq = seq
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, g := range got {
		if err := r.open(ctx, g.res, g.body); err != nil {
			return nil, err
		}
		page.Versions = append(page.Versions, g.res)
	}
	return page, nil
}

// tx implements store.Tx.
type tx struct {
	reader
	// written are the resources this transaction changed, for the read
	// cache to forget once it commits.
	written []cacheKey
}

// lock makes the resource's current row exist and locks it, returning its
// version (0 when the resource never existed) and whether it is deleted.
func (t *tx) lock(ctx context.Context, typ, id string) (version int64, deleted bool, err error) {
	var del int
	err = t.queryRow(ctx, sqlLock, typ, id).Scan(&version, &del)
	if err != nil {
		return 0, false, fmt.Errorf("lock %s/%s: %w", typ, id, err)
	}
	return version, del != 0, nil
}

// Serialized implements store.Tx: true on SQLite, whose write
// transactions take the database's write lock at BEGIN IMMEDIATE (and run
// one after another in a group).
func (t *tx) Serialized() bool { return t.s.d.name != "postgres" }

// LockCriteria implements store.Tx. On PostgreSQL it is a transaction-scoped
// advisory lock on a 64-bit hash of key (a collision only serialises two
// unrelated writes); on SQLite the write lock taken at BEGIN IMMEDIATE
// already serialises every writing transaction.
func (t *tx) LockCriteria(ctx context.Context, keys ...string) error {
	if t.Serialized() || len(keys) == 0 {
		return nil
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	sorted = slices.Compact(sorted)
	// unnest returns the array's elements in order, so the locks are taken
	// in sorted order: two transactions locking overlapping sets in one call
	// each cannot deadlock.
	if err := t.exec(ctx, sqlLockCriteria, sorted); err != nil {
		return fmt.Errorf("lock criteria %q: %w", sorted, err)
	}
	return nil
}

func (t *tx) Put(ctx context.Context, w store.Write) (*store.Resource, bool, error) {
	if !resource.ValidID(w.ID) {
		return nil, false, fmt.Errorf("put: invalid id %q", w.ID)
	}
	if w.NewID {
		return t.create(ctx, w)
	}
	version, deleted, err := t.lock(ctx, w.Type, w.ID)
	if err != nil {
		return nil, false, err
	}
	live := version > 0 && !deleted
	switch {
	case w.MustNotExist && live:
		return nil, false, store.ErrExists
	case w.MustExist && !live:
		return nil, false, store.ErrNotFound
	case w.IfMatch != 0 && (!live || w.IfMatch != version):
		return nil, false, store.ErrVersionConflict
	}
	res, sealed, err := t.newVersion(ctx, w, version+1)
	if err != nil {
		return nil, false, err
	}
	if err := t.record(ctx, res, sealed); err != nil {
		return nil, false, err
	}
	if err := t.exec(ctx, sqlSetCurrent, res.Version, 0, res.Type, res.ID); err != nil {
		return nil, false, fmt.Errorf("put %s/%s: %w", res.Type, res.ID, err)
	}
	if err := t.index(ctx, res, w.Index, version > 0); err != nil {
		return nil, false, err
	}
	return res, !live, nil
}

// create writes version 1 of a resource whose id the server just generated:
// it cannot exist, so there is nothing to lock (a collision still fails on
// the primary key, as ErrExists).
func (t *tx) create(ctx context.Context, w store.Write) (*store.Resource, bool, error) {
	res, sealed, err := t.newVersion(ctx, w, 1)
	if err != nil {
		return nil, false, err
	}
	indexed := false
	if t.pg != nil {
		// One statement for the version, the current row and the index,
		// shared with the creates next to it (pgTx.coalesce).
		t.written = append(t.written, cacheKey{res.Type, res.ID})
		// A copy of the rows: they are read when the statement is sent,
		// after the caller has moved on.
		err = t.pg.queueCreate(&created{typ: res.Type, id: res.ID, lastUpdated: res.LastUpdated.UnixMicro(), method: res.Method, body: sealed, rows: slices.Clone(w.Index)})
		indexed = true
	} else if err = t.exec(ctx, sqlNewCurrent, w.Type, w.ID); err == nil {
		err = t.record(ctx, res, sealed)
	}
	if isUniqueViolation(err) || errors.Is(err, store.ErrExists) {
		return nil, false, store.ErrExists
	}
	if err != nil {
		return nil, false, fmt.Errorf("create %s/%s: %w", w.Type, w.ID, err)
	}
	if indexed {
		return res, true, nil
	}
	return res, true, t.index(ctx, res, w.Index, false)
}

// newVersion stamps and seals the body of version v.
func (t *tx) newVersion(ctx context.Context, w store.Write, v int64) (*store.Resource, []byte, error) {
	res := &store.Resource{Type: w.Type, ID: w.ID, Version: v, LastUpdated: t.s.now(), Method: w.Method}
	var err error
	if res.Body, err = resource.Stamp(w.Body, w.ID, res.Version, res.LastUpdated); err != nil {
		return nil, nil, fmt.Errorf("put: %w", err)
	}
	sealed, err := t.s.seal.Seal(ctx, res.Body, aad(res.Type, res.ID, res.Version))
	if err != nil {
		return nil, nil, fmt.Errorf("put: seal: %w", err)
	}
	return res, sealed, nil
}

func (t *tx) Delete(ctx context.Context, typ, id, method string, ifMatch int64) (*store.Resource, error) {
	version, deleted, err := t.lock(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	live := version > 0 && !deleted
	if ifMatch != 0 && (!live || ifMatch != version) {
		return nil, store.ErrVersionConflict
	}
	if !live {
		return nil, nil
	}
	res := &store.Resource{Type: typ, ID: id, Version: version + 1, LastUpdated: t.s.now(), Deleted: true, Method: method}
	if err := t.record(ctx, res, nil); err != nil {
		return nil, err
	}
	if err := t.exec(ctx, sqlSetCurrent, res.Version, 1, typ, id); err != nil {
		return nil, fmt.Errorf("delete %s/%s: %w", typ, id, err)
	}
	return res, t.index(ctx, res, nil, true)
}

// record appends a version.
func (t *tx) record(ctx context.Context, res *store.Resource, sealed []byte) error {
	t.written = append(t.written, cacheKey{res.Type, res.ID})
	deleted := 0
	if res.Deleted {
		deleted = 1
	}
	if err := t.exec(ctx, sqlRecord, res.Type, res.ID, res.Version, res.LastUpdated.UnixMicro(), res.Method, deleted, sealed); err != nil {
		if isUniqueViolation(err) {
			return store.ErrExists
		}
		return fmt.Errorf("record %s/%s: %w", res.Type, res.ID, err)
	}
	return nil
}

// index replaces the search index rows of the resource with rows (none
// once deleted). existed says there may be old rows to remove.
func (t *tx) index(ctx context.Context, res *store.Resource, rows []search.Row, existed bool) error {
	if existed {
		if err := t.exec(ctx, sqlUnindex, res.Type, res.ID); err != nil {
			return fmt.Errorf("index %s/%s: %w", res.Type, res.ID, err)
		}
	}
	if t.s.d.arrays {
		if len(rows) == 0 {
			return nil
		}
		if err := t.exec(ctx, pgIndex, append([]any{res.Type, res.ID}, indexArrays(rows)...)...); err != nil {
			return fmt.Errorf("index %s/%s: %w", res.Type, res.ID, err)
		}
		return nil
	}
	// Rows go in batches whose statements are prepared at Open.
	const batch = indexBatch
	for start := 0; start < len(rows); start += batch {
		part := rows[start:min(start+batch, len(rows))]
		args := make([]any, 0, (2+indexColumns)*len(part))
		for _, row := range part {
			args = append(args, res.Type, res.ID)
			args = append(args, indexArgs(row)...)
		}
		if err := t.exec(ctx, sqlIndex(len(part)), args...); err != nil {
			return fmt.Errorf("index %s/%s: %w", res.Type, res.ID, err)
		}
	}
	return nil
}
