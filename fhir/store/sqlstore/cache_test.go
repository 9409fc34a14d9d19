package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/fhir/store/storetest"
)

const feedInterval = 5 * time.Millisecond

func cached(t *testing.T, s *sqlstore.Store) *sqlstore.Store {
	t.Helper()
	if err := s.EnableReadCache(context.Background(), 1<<20, feedInterval); err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole store suite holds with the read cache on (each store waits for
// it to come on: on PostgreSQL that takes the start-up wait).
func TestSQLiteCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { s, _ := openSQLite(t); return waitCacheOn(t, cached(t, s)) })
}

func TestPostgresCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return waitCacheOn(t, cached(t, openPostgres(t))) })
}

// twoProcesses opens two stores on one database, as two gateway processes
// (replicas, or serve beside import) would: a, with the cache, and b.
func twoProcesses(t *testing.T, engine string) (a, b *sqlstore.Store) {
	t.Helper()
	var dsn string
	switch engine {
	case "sqlite":
		dsn = filepath.Join(t.TempDir(), "shared.db")
	default:
		dsn = storetest.PostgresDSN(t)
	}
	env := envelope(t)
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(context.Background(), dsn, env)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	b = open()
	return cached(t, open()), b
}

func put(t *testing.T, s store.Store, id, family string) {
	t.Helper()
	ctx := context.Background()
	err := s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}]}`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually reads typ/id from s until it has version want (deleted or
// not), failing after five seconds.
func eventually(t *testing.T, s store.Store, id string, want int64, deleted bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := s.Read(context.Background(), "Patient", id)
		if err == nil && r.Version == want && r.Deleted == deleted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Patient/%s: still %+v, %v; want version %d (deleted %v)", id, r, err, want, deleted)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldWrite updates Patient/id on s in a transaction that waits to
// commit until commit is called (or the test ends); commit returns the
// transaction's error.
func heldWrite(t *testing.T, s store.Store, id string) (commit func() error) {
	ctx := context.Background()
	hold, done := make(chan struct{}), make(chan error, 1)
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) })
	go func() {
		done <- s.InTx(ctx, func(tx store.Tx) error {
			if _, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Method: "PUT", Body: []byte(`{"resourceType":"Patient"}`)}); err != nil {
				return err
			}
			<-hold
			return nil
		})
	}()
	return func() error {
		release.Do(func() { close(hold) })
		return <-done
	}
}

func waitCacheOn(t *testing.T, s *sqlstore.Store) *sqlstore.Store {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !sqlstore.CacheOn(s) {
		if time.Now().After(deadline) {
			t.Fatal("the read cache never came on")
		}
		time.Sleep(feedInterval)
	}
	return s
}

// A write of this process is read back at once; a write of another one
// within the feed's interval, never a stale version for ever.
func TestReadCacheFollowsOtherWriters(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			a, b := twoProcesses(t, engine)
			waitCacheOn(t, a)
			ctx := context.Background()
			put(t, b, "x", "One")
			eventually(t, a, "x", 1, false)
			time.Sleep(10 * feedInterval) // the feed passes b's write
			a.Read(ctx, "Patient", "x")
			if v, ok := sqlstore.CachedVersion(a, "Patient", "x"); !ok || v != 1 {
				t.Fatalf("cache holds %d, %v after a read; want version 1", v, ok)
			}
			// Own write: no waiting.
			put(t, a, "x", "Two")
			if r, err := a.Read(ctx, "Patient", "x"); err != nil || r.Version != 2 {
				t.Fatalf("own write read back as %+v, %v", r, err)
			}
			// Another process's update, then its delete.
			put(t, b, "x", "Three")
			eventually(t, a, "x", 3, false)
			err := b.InTx(ctx, func(tx store.Tx) error { _, err := tx.Delete(ctx, "Patient", "x", "DELETE", 0); return err })
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, a, "x", 4, true)
		})
	}
}

// PostgreSQL: a transaction that took its seq before another but commits
// after it (the feed has meanwhile passed that other seq) still reaches
// the cache.
func TestReadCacheSeesLateCommits(t *testing.T) {
	a, b := twoProcesses(t, "postgres")
	waitCacheOn(t, a)
	ctx := context.Background()
	put(t, b, "slow", "One")
	put(t, b, "fast", "One")
	eventually(t, a, "slow", 1, false)
	eventually(t, a, "fast", 1, false)

	commit := heldWrite(t, b, "slow") // the seq is taken; the commit waits
	time.Sleep(50 * time.Millisecond)
	put(t, b, "fast", "Two") // a later seq, committed first
	eventually(t, a, "fast", 2, false)
	if r, _ := a.Read(ctx, "Patient", "slow"); r == nil || r.Version != 1 {
		t.Fatalf("uncommitted write visible: %+v", r)
	}
	time.Sleep(1500 * time.Millisecond) // many polls pass the gap, and the grace period
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	eventually(t, a, "slow", 2, false)
}

// PostgreSQL: a cache starting while another process's write transaction
// runs stays off until that transaction ends, then sees its write.
func TestReadCacheStartsAfterOlderWriters(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	env := envelope(t)
	ctx := context.Background()
	// Closed after the held write ends (cleanups run last in, first out).
	b, err := sqlstore.Open(ctx, dsn, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a, err := sqlstore.Open(ctx, dsn, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	put(t, b, "p", "One")
	commit := heldWrite(t, b, "p")
	time.Sleep(50 * time.Millisecond)
	put(t, b, "q", "One") // a later seq, committed: the start sees past the held one
	cached(t, a)
	time.Sleep(1500 * time.Millisecond) // past the grace period
	if sqlstore.CacheOn(a) {
		t.Fatal("the cache came on while a writer older than it was running")
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	waitCacheOn(t, a)
	eventually(t, a, "p", 2, false)
}

// PostgreSQL: while the database cannot be reached the cache serves
// nothing (the feed cannot know what changed), and afterwards the feed
// resumes where it was: writes made meanwhile reach the cache.
func TestReadCacheSurvivesAnOutage(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	env := envelope(t)
	ctx := context.Background()
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(ctx, dsn, env)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := waitCacheOn(t, cached(t, open())), open()
	put(t, b, "x", "One")
	eventually(t, a, "x", 1, false)

	admin, err := sql.Open("pgx", storetest.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	allow := func(on bool) {
		t.Helper()
		if _, err := admin.Exec(fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %v`, name, on)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	defer allow(true)
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sqlstore.CacheOn(a) {
		if time.Now().After(deadline) {
			t.Fatal("the cache still serves while the database is unreachable")
		}
		time.Sleep(feedInterval)
	}
	allow(true)
	for {
		// b's pool may hand out a dead connection first.
		err := b.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "x", Method: "PUT", Body: []byte(`{"resourceType":"Patient","active":true}`)})
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	waitCacheOn(t, a)
	eventually(t, a, "x", 2, false)
}

// PostgreSQL: the feed's poll finds new versions through the primary key
// however much the table has grown since the feed started on an empty one
// (a plan fixed at the first poll scanned the whole table at every poll).
func TestFeedPollUsesTheIndexAsTheTableGrows(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	s, err := sqlstore.Open(context.Background(), dsn, envelope(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitCacheOn(t, cached(t, s))
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO resource_version (type, id, version, last_updated, method, deleted, body)
		SELECT 'Patient', 'g' || i, 1, 0, 'PUT', 0, NULL FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	scans := func() int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(`SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'resource_version'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The server publishes a backend's counts about once a second.
	time.Sleep(1500 * time.Millisecond)
	before := scans()
	const window = 2 * time.Second
	time.Sleep(window)
	if n := scans() - before; n > 10 {
		t.Errorf("%d sequential scans of resource_version in %v of polls every %v", n, window, feedInterval)
	}
}
