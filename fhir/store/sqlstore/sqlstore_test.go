package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

func envelope(t *testing.T) *vault.Envelope {
	t.Helper()
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "keys.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return vault.NewEnvelope(ks)
}

func openSQLite(t *testing.T) (*sqlstore.Store, string) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := sqlstore.Open(context.Background(), path, envelope(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func openPostgres(t *testing.T) *sqlstore.Store {
	s, err := sqlstore.Open(context.Background(), storetest.PostgresDSN(t), envelope(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { s, _ := openSQLite(t); return s })
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

const marker = "Zebedee-Quixotic-Plaintext-Marker"

func writeMarked(t *testing.T, s store.Store) {
	ctx := context.Background()
	body := []byte(`{"resourceType":"Patient","name":[{"family":"` + marker + `"}]}`)
	for i := 0; i < 3; i++ { // current and history versions
		err := s.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "secret", Body: body, Method: "PUT"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.Read(ctx, "Patient", "secret"); err != nil || !bytes.Contains(r.Body, []byte(marker)) {
		t.Fatalf("read back: %v", err)
	}
}

// The database file (and its WAL) must hold no resource JSON in plaintext.
func TestSQLiteFileHoldsNoPlaintext(t *testing.T) {
	s, path := openSQLite(t)
	writeMarked(t, s)
	s.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range []string{marker, `"resourceType"`, `"family"`} {
			if bytes.Contains(raw, []byte(needle)) {
				t.Errorf("%s contains %q in plaintext", filepath.Base(f), needle)
			}
		}
	}
}

func TestPostgresHoldsNoPlaintext(t *testing.T) {
	s := openPostgres(t)
	writeMarked(t, s)
	var n int
	err := s.DB().QueryRow(`SELECT COUNT(*) FROM resource_version WHERE position($1::bytea in body) > 0 OR position('"resourceType"'::bytea in body) > 0`, []byte(marker)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d stored versions contain plaintext JSON", n)
	}
	var versions int
	_ = s.DB().QueryRow(`SELECT COUNT(*) FROM resource_version`).Scan(&versions)
	if versions != 3 {
		t.Errorf("%d versions stored; want 3", versions)
	}
}

// A sealed body moved to another row fails authentication instead of
// decrypting as the wrong resource.
func TestCiphertextIsBoundToItsRow(t *testing.T) {
	s, _ := openSQLite(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		err := s.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB().Exec(`UPDATE resource_version SET body = (SELECT body FROM resource_version WHERE id = 'a') WHERE id = 'b'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "Patient", "b"); err == nil {
		t.Fatal("a ciphertext copied from Patient/a decrypted as Patient/b")
	}
	if _, err := s.Read(ctx, "Patient", "a"); err != nil {
		t.Fatalf("untouched row: %v", err)
	}
}

// A path with URI-special characters opens that very file (a '#' once
// silently opened a shared file named by the part before it).
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.db")
	s, err := sqlstore.Open(context.Background(), path, envelope(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at %s: %v", path, err)
	}
	var mode string
	if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; the pragmas after the path were lost", mode, err)
	}
}

// PostgreSQL's text columns compare bytes ("C"), as SQLite's do; a
// database created with the server's default collation is migrated when
// the store opens it, and keeps its data.
func TestPostgresTextColumnsAreC(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	seal := envelope(t)
	notC := func(s *sqlstore.Store) []string {
		rows, err := s.DB().QueryContext(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'
			AND table_name IN ('resource_version', 'resource_current', 'search_index', 'pseudonym_escrow') ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	s, err := sqlstore.Open(ctx, dsn, seal)
	if err != nil {
		t.Fatal(err)
	}
	if cols := notC(s); len(cols) > 0 {
		t.Fatalf("a new database has text columns without the C collation: %v", cols)
	}
	body := []byte(`{"resourceType":"Patient","gender":"female"}`)
	if err := s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p1", Body: body, Method: "PUT",
			Index: []search.Row{{Param: "gender", Sys: "http://hl7.org/fhir/administrative-gender", Val: "female", Raw: "female"}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Make it look like a database of the earlier schema.
	for _, q := range []string{
		`ALTER TABLE resource_version ALTER COLUMN type TYPE TEXT COLLATE pg_catalog."default", ALTER COLUMN id TYPE TEXT COLLATE pg_catalog."default", ALTER COLUMN method TYPE TEXT COLLATE pg_catalog."default"`,
		`ALTER TABLE resource_current ALTER COLUMN type TYPE TEXT COLLATE pg_catalog."default", ALTER COLUMN id TYPE TEXT COLLATE pg_catalog."default"`,
		`ALTER TABLE search_index ALTER COLUMN res_type TYPE TEXT COLLATE pg_catalog."default", ALTER COLUMN val TYPE TEXT COLLATE pg_catalog."default"`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if cols := notC(s); len(cols) != 7 {
		t.Fatalf("the test did not reset the collations: %v", cols)
	}
	s.Close()
	s, err = sqlstore.Open(ctx, dsn, seal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cols := notC(s); len(cols) > 0 {
		t.Errorf("after the migration these text columns are not C: %v", cols)
	}
	if r, err := s.Read(ctx, "Patient", "p1"); err != nil || !bytes.Contains(r.Body, []byte("female")) {
		t.Errorf("read after the migration: %v", err)
	}
	q, err := search.R4().Parse("Patient", url.Values{"gender": {"female"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 10
	res, err := s.Search(ctx, q)
	if err != nil || len(res.Matches) != 1 {
		t.Errorf("search after the migration: %v, %+v", err, res)
	}
}

// A second gateway opening a PostgreSQL database that is in use (another
// replica, an import beside the server) does not wait for, or hold up,
// the writes in progress: its migration finds the schema in place and
// takes no table lock.
func TestPostgresOpenDoesNotWaitForWriters(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	seal := envelope(t)
	first, err := sqlstore.Open(ctx, dsn, seal)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	writer, err := first.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	for _, q := range []string{
		`INSERT INTO resource_current (type, id, version, deleted) VALUES ('Patient', 'w', 1, 0)`,
		`INSERT INTO search_index (res_type, res_id, param, sys, val, raw) VALUES ('Patient', 'w', 'gender', '', 'female', '')`,
		`INSERT INTO resource_version (type, id, version, last_updated, method, deleted) VALUES ('Patient', 'w', 1, 0, 'PUT', 1)`,
	} {
		if _, err := writer.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	second, err := sqlstore.Open(octx, dsn, seal)
	if err != nil {
		t.Fatalf("open beside a running write transaction: %v", err)
	}
	second.Close()
}

// TestSearchGateWaitsInOrder checks the search gates: with every place
// taken, a search waits and gives up when its context ends, and searches
// waiting for a freed place are admitted in the order they came.
func TestSearchGateWaitsInOrder(t *testing.T) {
	engines := map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite":   func(t *testing.T) *sqlstore.Store { s, _ := openSQLite(t); return s },
		"postgres": openPostgres,
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			q := func() *search.Query {
				// A token driver: planned with its values, so it goes
				// through the gate freeOne frees.
				q, err := search.R4().Parse("Patient", url.Values{"gender": {"female"}}, true)
				if err != nil {
					t.Fatal(err)
				}
				q.Count = 10
				return q
			}
			// The waiters end before the store closes: the gates' places
			// are given back first (defers run last in, first out).
			var wg sync.WaitGroup
			defer wg.Wait()
			freeOne, release := sqlstore.FillSearchGates(s)
			defer release()
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if _, err := s.Search(short, q()); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("search at a full gate: %v; want the context's deadline", err)
			}
			const waiters = 4
			// admitted hears of each waiter as it takes its place (by the
			// time one has returned, the next may have run too).
			type waiter struct{}
			admitted := make(chan int, waiters)
			sqlstore.OnSearchAdmitted(s, func(ctx context.Context) {
				if i, ok := ctx.Value(waiter{}).(int); ok {
					admitted <- i
				}
			})
			for i := range waiters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Search(context.WithValue(ctx, waiter{}, i), q()); err != nil {
						t.Error(err)
					}
				}()
				time.Sleep(100 * time.Millisecond) // waiter i queues before i+1 (with room for a loaded CI host)
			}
			select {
			case i := <-admitted:
				t.Fatalf("waiter %d ran with no free place", i)
			case <-time.After(50 * time.Millisecond):
			}
			// One place: the waiters pass through it one at a time, each
			// handing it to the next in line as it finishes.
			freeOne()
			for want := range waiters {
				if got := <-admitted; got != want {
					t.Fatalf("waiter %d admitted when %d was first in line", got, want)
				}
			}
		})
	}
}

// TestPostgresProbesReadTheCandidate checks the plan PostgreSQL gives a
// search of the generic-plan pool once it plans it generically: each probe
// must read the candidate's own rows (search_index_by_id), never the
// rows of its value (search_index_by_val), which for a common code are
// every Observation of it. Written with plain equalities, the generic plan
// took the code for a rare one and read the value's rows for each
// candidate. The driver and every probe must be index-only scans: what
// they read is in their index (see postgresIndexes), so a column a
// statement comes to read that its index does not cover fails here.
func TestPostgresProbesReadTheCandidate(t *testing.T) {
	ctx := context.Background()
	s := openPostgres(t)
	// A common code on 3,000 Observations of as many patients, and the
	// statistics a database in use would have.
	var ws []store.Write
	for i := range 3000 {
		ws = append(ws, store.Write{Type: "Observation", ID: fmt.Sprintf("o%d", i), Method: "PUT",
			Body: fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/p%d"},"effectiveDateTime":"2025-0%d-01"}`, i, 1+i%9)})
	}
	for i := range ws {
		ws[i].Index, _ = search.R4().Extract(ws[i].Type, ws[i].Body) // Observation has no blind indexes
	}
	if err := s.InTx(ctx, func(tx store.Tx) error {
		for _, w := range ws {
			if _, _, err := tx.Put(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "VACUUM ANALYZE search_index"); err != nil {
		t.Fatal(err)
	}
	q, err := search.R4().Parse("Observation", url.Values{"patient": {"Patient/p7"}, "code": {"http://loinc.org|8302-2"}, "date": {"ge2025-01-01"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 20
	stmt, args, err := sqlstore.SearchStatement(s, q)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE probe_check AS " + stmt} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer conn.ExecContext(ctx, "DEALLOCATE probe_check; RESET plan_cache_mode")
	// EXECUTE takes its values as literals.
	literals := make([]string, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			literals[i] = "'" + strings.ReplaceAll(a, "'", "''") + "'"
		default:
			literals[i] = fmt.Sprint(a)
		}
	}
	rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE probe_check("+strings.Join(literals, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan = append(plan, line)
	}
	rows.Close()
	// A probe is the block under a "SubPlan n" line: the lines indented
	// deeper than it.
	probes, drivers, probeIndent := 0, 0, -1
	for _, line := range plan {
		text := strings.TrimLeft(line, " ")
		indent := len(line) - len(text)
		if probeIndent >= 0 && indent <= probeIndent {
			probeIndent = -1
		}
		if strings.HasPrefix(text, "SubPlan") {
			probeIndent = indent
			continue
		}
		if !strings.Contains(text, "search_index") || !strings.Contains(text, " using ") {
			continue
		}
		switch {
		case probeIndent >= 0 && strings.Contains(text, "Index Only Scan using search_index_by_id "):
			probes++
		case probeIndent < 0 && strings.Contains(text, "Index Only Scan using search_index_by_val "):
			drivers++
		default:
			t.Fatalf("a scan of search_index that is not the driver's or a probe's index-only scan (%s):\n%s", text, strings.Join(plan, "\n"))
		}
	}
	if probes != 2 || drivers != 1 {
		t.Fatalf("want one driver and two probes, index-only; found %d and %d in the plan:\n%s", drivers, probes, strings.Join(plan, "\n"))
	}
}

// An ANALYZE leaves value samples in sqlite_stat4, which make SQLite
// compile a prepared search again whenever a bound value changes; the
// store drops them when it opens the database, and keeps the measured row
// counts of sqlite_stat1.
func TestSQLiteDropsValueSamples(t *testing.T) {
	ctx := context.Background()
	seal := envelope(t)
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := sqlstore.Open(ctx, path, seal)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx store.Tx) error {
		for i := range 50 {
			w := store.Write{Type: "Observation", ID: fmt.Sprintf("o%d", i), Method: "PUT",
				Body: fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"text":"OHS"},"subject":{"reference":"Patient/p%d"}}`, i%5)}
			w.Index, _ = search.R4().Extract(w.Type, w.Body)
			if _, _, err := tx.Put(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	count := func(s *sqlstore.Store, q string) int {
		var n int
		if err := s.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if _, err := s.DB().ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if n := count(s, "SELECT COUNT(*) FROM sqlite_stat4"); n == 0 {
		t.Fatal("ANALYZE wrote no samples: the test cannot tell whether they are dropped")
	}
	stats := func(s *sqlstore.Store) string {
		rows, err := s.DB().QueryContext(ctx, "SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var tbl, idx, stat string
			if err := rows.Scan(&tbl, &idx, &stat); err != nil {
				t.Fatal(err)
			}
			out = append(out, tbl+" "+idx+" "+stat)
		}
		return strings.Join(out, "\n")
	}
	measured := stats(s)
	if !strings.Contains(measured, "search_index search_index_resource_param ") {
		t.Fatalf("ANALYZE did not measure search_index:\n%s", measured)
	}
	s.Close()
	s, err = sqlstore.Open(ctx, path, seal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := count(s, "SELECT COUNT(*) FROM sqlite_stat4"); n != 0 {
		t.Errorf("sqlite_stat4 holds %d samples after Open; want none", n)
	}
	if got := stats(s); got != measured {
		t.Errorf("sqlite_stat1 after Open:\n%s\nwant what ANALYZE measured:\n%s", got, measured)
	}
}

// A database of an earlier schema comes out of Open with the indexes of
// this one in place of those they replace, and its rows still serve
// probes and includes. SQLite's search_index_resource (res_type, res_id)
// became search_index_resource_param; on PostgreSQL both that and
// search_index_val became the covering search_index_by_resource and
// search_index_by_value, which became search_index_by_id and
// search_index_by_val.
func TestRetiredIndexIsReplaced(t *testing.T) {
	for _, tc := range []struct {
		engine string
		// earlier turns a new database into one of the earlier schema.
		earlier []string
		old     []string // the earlier indexes, gone after Open
		now     []string // the indexes that replace them
	}{
		{"sqlite", []string{`DROP INDEX search_index_resource_param`, `CREATE INDEX search_index_resource ON search_index (res_type, res_id)`},
			[]string{"search_index_resource"}, []string{"search_index_resource_param"}},
		{"postgres", []string{`DROP INDEX search_index_by_id`, `DROP INDEX search_index_by_val`,
			`CREATE INDEX search_index_resource ON search_index (res_type, res_id)`, `CREATE INDEX search_index_val ON search_index (res_type, param, val, sys)`},
			[]string{"search_index_resource", "search_index_val"}, []string{"search_index_by_id", "search_index_by_val"}},
		{"postgres", []string{`DROP INDEX search_index_by_id`, `DROP INDEX search_index_by_val`,
			`CREATE INDEX search_index_resource_param ON search_index (res_type, res_id, param)`, `CREATE INDEX search_index_val ON search_index (res_type, param, val, sys)`},
			[]string{"search_index_resource_param", "search_index_val"}, []string{"search_index_by_id", "search_index_by_val"}},
		{"postgres", []string{`DROP INDEX search_index_by_id`, `DROP INDEX search_index_by_val`,
			`CREATE INDEX search_index_by_resource ON search_index (res_type, res_id, param) INCLUDE (sys, val, raw, dlow, dhigh, nlow, nhigh)`,
			`CREATE INDEX search_index_by_value ON search_index (res_type, param, val, sys) INCLUDE (res_id, raw)`},
			[]string{"search_index_by_resource", "search_index_by_value"}, []string{"search_index_by_id", "search_index_by_val"}},
	} {
		engine := tc.engine
		t.Run(engine+"/"+strings.Join(tc.old, "+"), func(t *testing.T) {
			ctx := context.Background()
			dsn := filepath.Join(t.TempDir(), "gateway.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			seal := envelope(t)
			indexes := func(s *sqlstore.Store) map[string]bool {
				q := `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'search_index'`
				if engine == "postgres" {
					q = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'search_index'`
				}
				rows, err := s.DB().QueryContext(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				out := map[string]bool{}
				for rows.Next() {
					var n string
					if err := rows.Scan(&n); err != nil {
						t.Fatal(err)
					}
					out[n] = true
				}
				return out
			}
			s, err := sqlstore.Open(ctx, dsn, seal)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`)
			if err := s.InTx(ctx, func(tx store.Tx) error {
				if _, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"}); err != nil {
					return err
				}
				rows, _ := search.R4().Extract("Observation", body)
				_, _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: "o1", Body: body, Method: "PUT", Index: rows})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// Make it look like a database of the earlier schema.
			for _, q := range tc.earlier {
				if _, err := s.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			has := func(got map[string]bool, want, gone []string) bool {
				for _, n := range want {
					if !got[n] {
						return false
					}
				}
				for _, n := range gone {
					if got[n] {
						return false
					}
				}
				return true
			}
			if got := indexes(s); !has(got, tc.old, tc.now) {
				t.Fatalf("the test did not restore the earlier indexes: %v", got)
			}
			s.Close()
			if s, err = sqlstore.Open(ctx, dsn, seal); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := indexes(s); !has(got, tc.now, tc.old) {
				t.Errorf("after Open the indexes are %v; want %v and none of %v", got, tc.now, tc.old)
			}
			q, err := search.R4().Parse("Observation", url.Values{"patient": {"Patient/p1"}, "status": {"final"}, "_include": {"Observation:patient"}}, true)
			if err != nil {
				t.Fatal(err)
			}
			q.Count = 10
			res, err := s.Search(ctx, q)
			if err != nil || len(res.Matches) != 1 || len(res.Included) != 1 || res.Included[0].ID != "p1" {
				t.Errorf("search after the migration: %v, %+v", err, res)
			}
		})
	}
}
