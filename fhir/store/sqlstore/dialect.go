package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/promsgateway/gateway/fhir/search"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds what differs between SQLite and PostgreSQL. Queries are
// written once with ? placeholders; rebind turns them into $n for PostgreSQL.
type dialect struct {
	name      string
	schema    []string
	numbered  bool
	retryable func(error) bool
	// arrays says index rows go to the database as one array per column
	// (indexArrays) rather than as a row of values each.
	arrays bool
	// indexes are the engine's indexes, and retired those dropped once
	// they exist (replaced by some of indexes).
	indexes, retired []string
}

// The PostgreSQL statements that write index rows take them as one array
// per column (indexArrays) and unnest them: eight parameters for any number
// of rows, so one statement text (one prepared statement a connection)
// serves every resource, and no row count meets the protocol's limit of
// 65,535 parameters. (Throughput on the 2-entry transaction measured the
// same as with a row of parameters per index row.) The unnests are in the
// select list, one per array, which PostgreSQL steps through together row
// by row; unnest(a, b, ...) in FROM first copied every row into a tuple
// store. Measured with callgrind on the 2-entry transaction, PostgreSQL's
// instructions per transaction 2.04M → 1.81M.
const (
	pgIndexRows = `SELECT unnest($3::text[]), unnest($4::text[]), unnest($5::text[]), unnest($6::text[]), unnest($7::bigint[]), unnest($8::bigint[]), unnest($9::float8[]), unnest($10::float8[])`
	// pgCreate writes version 1 of any number of new resources, their
	// current rows and their index rows in one statement: the resources
	// as five arrays (type, id, last_updated, method, body), then their
	// index rows as ten (res_type, res_id and indexArrays'). See
	// pgTx.coalesce.
	pgCreate = `WITH r AS MATERIALIZED (SELECT unnest($1::text[]) AS type, unnest($2::text[]) AS id, unnest($3::bigint[]) AS last_updated, unnest($4::text[]) AS method, unnest($5::bytea[]) AS body),
		c AS (INSERT INTO resource_current (type, id, version, deleted) SELECT type, id, 1, 0 FROM r),
		i AS (INSERT INTO search_index (res_type, res_id, param, sys, val, raw, dlow, dhigh, nlow, nhigh)
			SELECT unnest($6::text[]), unnest($7::text[]), unnest($8::text[]), unnest($9::text[]), unnest($10::text[]), unnest($11::text[]), unnest($12::bigint[]), unnest($13::bigint[]), unnest($14::float8[]), unnest($15::float8[]))
		INSERT INTO resource_version (type, id, version, last_updated, method, deleted, body) SELECT type, id, 1, last_updated, method, 0, body FROM r`
	// pgIndex writes the index rows of one resource: type, id, arrays.
	pgIndex = `INSERT INTO search_index (res_type, res_id, param, sys, val, raw, dlow, dhigh, nlow, nhigh) SELECT $1, $2, r.* FROM (` + pgIndexRows + `) r`
)

// indexArrays are the eight column arrays of the rows of sets, one after
// another, for pgCreate and pgIndex;
// absent dates and numbers are NULL elements.
func indexArrays(sets ...[]search.Row) []any {
	n := 0
	for _, rows := range sets {
		n += len(rows)
	}
	param, sys, val, raw := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	dlow, dhigh := make([]*int64, n), make([]*int64, n)
	nlow, nhigh := make([]*float64, n), make([]*float64, n)
	// Copies, not pointers into rows: a queued statement (pgTx) is
	// encoded after its caller has moved on.
	dates, numbers := make([]int64, 2*n), make([]float64, 2*n)
	i := 0
	for _, rows := range sets {
		for _, r := range rows {
			param[i], sys[i], val[i], raw[i] = r.Param, r.Sys, r.Val, r.Raw
			if r.HasDate {
				dates[2*i], dates[2*i+1] = r.DLow, r.DHigh
				dlow[i], dhigh[i] = &dates[2*i], &dates[2*i+1]
			}
			if r.HasNumber {
				numbers[2*i], numbers[2*i+1] = r.NLow, r.NHigh
				nlow[i], nhigh[i] = &numbers[2*i], &numbers[2*i+1]
			}
			i++
		}
	}
	return []any{param, sys, val, raw, dlow, dhigh, nlow, nhigh}
}

// schema is the tables of both engines, written once; {serial}, {int},
// {blob}, {float} and {text} are the engine's column types.
//
// PostgreSQL's text columns use the "C" collation: byte order, as SQLite's
// BINARY, so both engines sort and compare index values alike (the
// normalised values are already case- and accent-folded), B-tree inserts
// and lookups compare with memcmp instead of the locale's strcoll, and a
// prefix LIKE can use the index. postgresCollation migrates databases
// created before.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS resource_version (
		seq {serial},
		type {text} NOT NULL,
		id {text} NOT NULL,
		version {int} NOT NULL,
		last_updated {int} NOT NULL,
		method {text} NOT NULL,
		deleted INTEGER NOT NULL,
		body {blob},
		UNIQUE (type, id, version))`,
	`CREATE TABLE IF NOT EXISTS resource_current (
		type {text} NOT NULL,
		id {text} NOT NULL,
		version {int} NOT NULL,
		deleted INTEGER NOT NULL,
		PRIMARY KEY (type, id))`,
	`CREATE TABLE IF NOT EXISTS search_index (
		res_type {text} NOT NULL,
		res_id {text} NOT NULL,
		param {text} NOT NULL,
		sys {text} NOT NULL,
		val {text} NOT NULL,
		raw {text} NOT NULL,
		dlow {int},
		dhigh {int},
		nlow {float},
		nhigh {float})`,
	`CREATE TABLE IF NOT EXISTS key_rotation (
		target INTEGER PRIMARY KEY,
		rotated_at {int} NOT NULL,
		seq_at_rotation {int} NOT NULL,
		pass INTEGER NOT NULL,
		after_seq {int} NOT NULL,
		rewrapped {int} NOT NULL,
		total {int} NOT NULL,
		finished_at {int})`,
	`CREATE TABLE IF NOT EXISTS pseudonym_escrow (
		domain {text} NOT NULL,
		pseudonym {text} NOT NULL,
		escrow {text} NOT NULL,
		PRIMARY KEY (domain, pseudonym))`,
}

func schemaFor(types map[string]string) []string {
	out := make([]string, len(schema))
	for i, q := range schema {
		for k, v := range types {
			q = strings.ReplaceAll(q, "{"+k+"}", v)
		}
		out[i] = q
	}
	return out
}

var sqliteDialect = dialect{
	name:    "sqlite",
	schema:  schemaFor(map[string]string{"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "int": "INTEGER", "blob": "BLOB", "float": "REAL", "text": "TEXT"}),
	indexes: sqliteIndexes,
	retired: retiredIndexes,
	retryable: func(err error) bool {
		var se *sqlite.Error
		return errors.Is(err, errBrokenGroup) ||
			errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED)
	},
}

var postgresDialect = dialect{
	name:     "postgres",
	numbered: true,
	arrays:   true,
	schema:   schemaFor(map[string]string{"serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "int": "BIGINT", "blob": "BYTEA", "float": "DOUBLE PRECISION", "text": `TEXT COLLATE "C"`}),
	indexes:  postgresIndexes,
	// search_index_by_id and search_index_by_val cover what these
	// served: search_index_by_id is search_index_by_resource with its
	// key's columns in another order, search_index_by_val is
	// search_index_by_value with sys out of its key (see postgresIndexes).
	retired: append([]string{"search_index_resource_param", "search_index_val", "search_index_by_resource", "search_index_by_value"}, retiredIndexes...),
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		// 40001 serialization_failure, 40P01 deadlock_detected
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
}

// commonIndexes apply to both engines.
var commonIndexes = []string{
	`CREATE INDEX IF NOT EXISTS resource_version_type_seq ON resource_version (type, seq)`,
	`CREATE INDEX IF NOT EXISTS resource_version_updated ON resource_version (last_updated)`,
	// Every index is paid for on every write (each dirties pages of its own),
	// so the date, number and compartment indexes are partial: rows without
	// such a value do not touch them.
	`CREATE INDEX IF NOT EXISTS search_index_date ON search_index (res_type, param, dlow, dhigh) WHERE dlow IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS search_index_number ON search_index (res_type, param, nlow) WHERE nlow IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS search_index_compartment ON search_index (val, res_type, res_id) WHERE param = '_compartment'`,
}

// sqliteIndexes are SQLite's indexes on index rows by value and by
// resource.
var sqliteIndexes = append([]string{
	// A resource's rows by parameter: what a write replaces, what a
	// search's probes and includes read of each candidate. With param in
	// the key they read the rows of that parameter alone instead of every
	// row of the resource from the table (an Observation has eleven):
	// SQLite's _include query took 200 → 142 µs, a code and date search
	// 191 → 166 µs, on 110,000 resources.
	`CREATE INDEX IF NOT EXISTS search_index_resource_param ON search_index (res_type, res_id, param)`,
	`CREATE INDEX IF NOT EXISTS search_index_val ON search_index (res_type, param, val, sys)`,
}, commonIndexes...)

// postgresIndexes are PostgreSQL's: the same two lookups, each covering
// every column its statements read, so that a search driven by a value,
// its probes of each candidate and its includes are index-only scans and
// never read the index rows' table. On a database larger than
// shared_buffers every row a search read from the table was a buffer
// miss of its own: a driver's ten candidates are ten Observations written
// far apart, ten table pages. Over 1M Observations (3 GB, the default
// 128 MB of shared buffers) PostgreSQL's CPU per code and date search fell
// 495 → 205 µs and p99 at concurrency 32 31 → 11 ms. The price is size:
// with INCLUDE columns PostgreSQL cannot deduplicate keys, so the value
// index, which shared one key among all the rows of a status or a code,
// grows 125 → 790 MB there. Index-only scans need the visibility map,
// which autovacuum keeps (rows not yet marked all-visible are read from
// the table, as before).
//
// The index by resource leads with res_id, not res_type: every statement
// that reads it gives both, so either order serves it, but a write pays
// for the order. Inserting a row compares its key with a score of others,
// column by column, and res_type is one of a few values, nearly always
// equal, so each comparison went on to a second text column, which
// PostgreSQL reads the slow way (after a column of variable width); two
// ids differ within the first column, and the comparison ends there.
// Measured with callgrind on the 2-entry transaction (29 index rows):
// PostgreSQL's instructions per transaction 2.23M → 2.15M with
// time-ordered ids (resource.NewID).
//
// For the same reason sys is not in the key of the index by value: many
// rows share their type, parameter and value (a status, a gender, a
// code), and the comparisons among them went on to sys, a fourth text
// column. A search still finds a value's rows by the key and compares sys
// from the index (2.12M → 2.04M instructions per transaction). Nothing
// searches by sys without a value but a token's "system|", which scans the
// parameter's rows either way.
var postgresIndexes = append([]string{
	`CREATE INDEX IF NOT EXISTS search_index_by_id ON search_index (res_id, res_type, param) INCLUDE (sys, val, raw, dlow, dhigh, nlow, nhigh)`,
	`CREATE INDEX IF NOT EXISTS search_index_by_val ON search_index (res_type, param, val) INCLUDE (sys, res_id, raw)`,
}, commonIndexes...)

// retiredIndexes are dropped once the indexes that replace them exist:
// search_index_resource (res_type, res_id) by search_index_resource_param.
var retiredIndexes = []string{"search_index_resource"}

// newestVersion joins, as v, the newest version row of the resource whose
// type and id are the columns typ and id. Versions only ever grow
// (1, 2, ...; none is removed), and a write records its version and
// points resource_current at it in one transaction, so in any one
// statement's view the newest version is the current one, deleted or not:
// a search whose candidates come from index rows (which only current,
// live versions have) or an include (which checks v.deleted) reads it
// without resource_current. That is one index lookup a row instead of
// two: PostgreSQL takes the newest entry of (type, id, version) backwards,
// SQLite the seq (its rowid) of that entry, from the index alone, then
// the row by rowid. PostgreSQL read 96 → 53 buffers for a page of ten.
func (d dialect) newestVersion(typ, id string) string {
	if d.name == "postgres" {
		return " JOIN LATERAL (SELECT * FROM resource_version nv WHERE nv.type = " + typ + " AND nv.id = " + id +
			" ORDER BY nv.version DESC LIMIT 1) v ON true"
	}
	return " JOIN resource_version v ON v.seq = (SELECT nv.seq FROM resource_version nv WHERE nv.type = " + typ + " AND nv.id = " + id +
		" ORDER BY nv.version DESC LIMIT 1)"
}

// inList adds "col is one of values" to q as one parameter, so that the
// statement's text (and its prepared statement) does not change with the
// number of values: an array on PostgreSQL, a JSON array on SQLite.
func (d dialect) inList(q *query, col string, values []string) {
	if d.arrays {
		q.add(col+" = ANY(?)", values)
		return
	}
	js, _ := json.Marshal(values) // strings always marshal
	q.add(col+" IN (SELECT value FROM json_each(?))", string(js))
}

// rebind rewrites ? placeholders as $1, $2, ... for PostgreSQL, and on
// SQLite writes the placeholders of LIMIT and of comparisons with param as
// +? (planValueFree). Queries in this package never contain a literal
// question mark.
func (d dialect) rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	if !d.numbered {
		return planValueFree.Replace(q)
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// planValueFree keeps SQLite from reading two kinds of bound value while
// planning, which marks the statement to be compiled again whenever that
// value is bound, that is on every execution of a prepared statement
// (measured: 40% of the CPU of a search, and three times its time):
//
//   - a LIMIT's value, which the planner reads to cost the sort;
//   - a value compared with param, which it reads to test whether the
//     partial index search_index_compartment (WHERE param = '_compartment')
//     applies.
//
// SQLite reads neither through a unary plus, which changes no value or
// type and leaves every index usable (the operator is on the value, not on
// the column).
var planValueFree = strings.NewReplacer("LIMIT ?", "LIMIT +?", "param = ?", "param = +?")

func openSQLite(path string) (*sql.DB, error) {
	// _txlock=immediate takes the write lock at BEGIN, so two writers queue
	// on busy_timeout instead of deadlocking on lock upgrade.
	// The path is part of a URI: '%', '#' and '?' in it must be escaped or
	// SQLite would open another file (and drop the pragmas after them).
	// mmap_size maps the database file into each connection's address
	// space, as far as this build's ceiling (SQLITE_MAX_MMAP_SIZE, just
	// under 2 GiB): pages are then read from the kernel's page cache, which
	// the connections share, without a pread and a copy into each
	// connection's own cache. Measured on 110,000 resources at concurrency
	// 32: gateway CPU per _include search 1,660 µs → 1,020 µs, per read by
	// id 123 µs → 98 µs. An I/O error on a mapped page is a fault, not an
	// error return, which is the trade SQLite documents for this pragma.
	// temp_store keeps statement journals and the temporary B-trees of
	// DISTINCT and ORDER BY in memory instead of in temporary files, whose
	// writes were system calls on the write path.
	// synchronous(FULL) syncs the log at each commit (one per group): a
	// commit InTx reports survives a power cut, not only a crash of the
	// process, as NORMAL's would (it syncs only at checkpoints); a sync
	// took 0.26 ms here. wal_autocheckpoint(0) leaves checkpoints to the
	// Store's checkpointer (checkpoint.go).
	escaped := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3f").Replace(path)
	dsn := "file:" + escaped + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-32768)&_pragma=mmap_size(2147418112)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(0)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

// The plan modes of the PostgreSQL pools (plan_cache_mode).
const (
	cachedPlans  = ""                   // the server's default: generic plans once they look as good
	valuePlans   = "force_custom_plan"  // every execution planned with its values
	genericPlans = "force_generic_plan" // planned once per statement and connection
)

// openPostgres opens a pool whose statements are planned as plans says:
// the main pool keeps the server's default, searches whose plan depends on
// their values are planned with them, and searches whose SQL fixes the
// plan keep one generic plan (see Store.Search).
//
// settings are further session settings, which the URL's own override.
func openPostgres(url, plans string, conns int, settings map[string]string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	for k, v := range settings {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	// JIT compilation costs hundreds of milliseconds to seconds and pays
	// off only for long analytical queries; on the gateway's short queries
	// it turned a 15 ms search into seconds whenever the planner's estimate
	// crossed jit_above_cost.
	if _, set := cfg.RuntimeParams["jit"]; !set {
		cfg.RuntimeParams["jit"] = "off"
	}
	// Search statements are prepared once and run with very different
	// values: a generic plan estimates every code as rare and then probes
	// the 200,000 rows of a common one for each candidate (seconds per
	// search over 1M Observations). Planning each execution with its values
	// costs about a millisecond and keeps those plans right.
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set && plans != cachedPlans {
		cfg.RuntimeParams["plan_cache_mode"] = plans
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if plans == genericPlans {
		// A generic plan lives as long as its connection, unless an
		// ANALYZE of its tables invalidates it. Where autovacuum does not
		// run, a plan made when a table was nearly empty would otherwise
		// outlive the table's growth; new connections plan afresh.
		db.SetConnMaxLifetime(genericPlanLifetime)
	}
	return db, nil
}

// genericPlanLifetime bounds how long a fixed-plan connection, and the
// generic plans it holds, is kept.
const genericPlanLifetime = 10 * time.Minute

// isUniqueViolation reports a primary-key or unique-constraint failure.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}
