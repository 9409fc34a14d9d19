package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
)

// Writes that a PostgreSQL transaction queues (sqlstore.pgTx) keep the
// guarantees of writes that run at once, on both engines: a read sees
// them, a failing one fails the transaction and leaves nothing behind, and
// the connection is fit for the next transaction.
func TestTransactionsWithQueuedWrites(t *testing.T) {
	engines := map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite":   func(t *testing.T) *sqlstore.Store { s, _ := openSQLite(t); return s },
		"postgres": openPostgres,
	}
	ctx := context.Background()
	body := []byte(`{"resourceType":"Patient","gender":"female"}`)
	put := func(tx store.Tx, id string) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Body: body, Method: "PUT"})
		return err
	}
	exists := func(t *testing.T, s *sqlstore.Store, id string) bool {
		_, err := s.Read(ctx, "Patient", id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			t.Run("a read sees the writes before it", func(t *testing.T) {
				err := s.InTx(ctx, func(tx store.Tx) error {
					if err := put(tx, "seen"); err != nil {
						return err
					}
					res, err := tx.Read(ctx, "Patient", "seen")
					if err != nil || res.Version != 1 {
						return fmt.Errorf("read in the transaction: %v, %+v", err, res)
					}
					n, err := sqlstore.TxQueryInt(tx, `SELECT COUNT(*) FROM search_index WHERE res_id = ?`, "seen")
					if err != nil || n != 0 {
						return fmt.Errorf("index rows: %d, %v", n, err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
			t.Run("a failing write fails the transaction", func(t *testing.T) {
				// More failures than the pool has connections: none may
				// come back to the pool inside a transaction.
				for i := 0; i < 40; i++ {
					id := fmt.Sprintf("lost-%d", i)
					err := s.InTx(ctx, func(tx store.Tx) error {
						if err := put(tx, id); err != nil {
							return err
						}
						// NOT NULL violation.
						return sqlstore.TxExec(tx, `INSERT INTO resource_current (type, id, version, deleted) VALUES (?, ?, NULL, 0)`, "Patient", id+"-x")
					})
					if err == nil {
						t.Fatal("the transaction committed")
					}
					if exists(t, s, id) {
						t.Fatalf("%s was stored by a failed transaction", id)
					}
				}
				if err := s.InTx(ctx, func(tx store.Tx) error { return put(tx, "after") }); err != nil || !exists(t, s, "after") {
					t.Fatalf("a transaction after the failures: %v", err)
				}
			})
			// commitCancelled runs write in a transaction whose context ends
			// before its commit.
			commitCancelled := func(write func(store.Tx) error) error {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				return s.InTx(cctx, func(tx store.Tx) error {
					if err := write(tx); err != nil {
						return err
					}
					cancel()
					return nil
				})
			}
			t.Run("a cancelled transaction leaves nothing", func(t *testing.T) {
				err := commitCancelled(func(tx store.Tx) error { return put(tx, "cancelled") })
				if err == nil {
					t.Fatal("a transaction whose context ended before its commit committed")
				}
				if exists(t, s, "cancelled") {
					t.Fatal("the cancelled transaction stored its write")
				}
				if err := s.InTx(ctx, func(tx store.Tx) error { return put(tx, "after-cancel") }); err != nil {
					t.Fatal(err)
				}
			})
			// On PostgreSQL adjacent creates go as one statement, and a
			// transaction that is nothing else as that statement alone.
			// Each Observation refers to a Patient of its own id, so that
			// its index rows can be told from another's.
			create := func(tx store.Tx, id string) error {
				obs := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + id + `"}}`)
				rows, errs := search.R4().Extract("Observation", obs)
				if len(errs) > 0 {
					return errors.Join(errs...)
				}
				_, _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: id, Body: obs, Method: "POST", NewID: true, MustNotExist: true, Index: rows})
				return err
			}
			// bare creates a resource without index rows.
			bare := func(tx store.Tx, id string) error {
				_, _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: id, Body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), Method: "POST", NewID: true, MustNotExist: true})
				return err
			}
			count := func(t *testing.T, q string, args ...any) int64 {
				var n int64
				if err := s.InTx(ctx, func(tx store.Tx) error {
					var err error
					n, err = sqlstore.TxQueryInt(tx, q, args...)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return n
			}
			indexRows := func(t *testing.T, id string) int64 {
				return count(t, `SELECT COUNT(*) FROM search_index WHERE res_type = 'Observation' AND res_id = ?`, id)
			}
			// ownRows are the rows of id whose value is its own id (its
			// subject's and patient's references).
			ownRows := func(t *testing.T, id string) int64 {
				return count(t, `SELECT COUNT(*) FROM search_index WHERE res_type = 'Observation' AND res_id = ? AND val = ?`, id, id)
			}
			stored := func(t *testing.T, id string) bool {
				res, err := s.Read(ctx, "Observation", id)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
				if err == nil && (res.Version != 1 || res.Method != "POST") {
					t.Fatalf("%s: %+v", id, res)
				}
				return err == nil
			}
			t.Run("creates, with reads between them", func(t *testing.T) {
				err := s.InTx(ctx, func(tx store.Tx) error {
					for _, id := range []string{"c1", "c2"} {
						if err := create(tx, id); err != nil {
							return err
						}
					}
					if err := bare(tx, "c-bare"); err != nil {
						return err
					}
					if res, err := tx.Read(ctx, "Observation", "c2"); err != nil || res.Version != 1 {
						return fmt.Errorf("read in the transaction: %v, %+v", err, res)
					}
					return create(tx, "c3")
				})
				if err != nil {
					t.Fatal(err)
				}
				want := indexRows(t, "c1")
				if want == 0 {
					t.Fatal("c1 has no index rows")
				}
				for _, id := range []string{"c1", "c2", "c3"} {
					if !stored(t, id) {
						t.Fatalf("%s was not stored", id)
					}
					if n := indexRows(t, id); n != want {
						t.Errorf("%s has %d index rows; c1 has %d", id, n, want)
					}
					if n := ownRows(t, id); n == 0 {
						t.Errorf("%s has none of its own index rows", id)
					}
				}
				if !stored(t, "c-bare") || indexRows(t, "c-bare") != 0 {
					t.Errorf("c-bare: stored %v, %d index rows; want stored, none", stored(t, "c-bare"), indexRows(t, "c-bare"))
				}
				page, err := s.History(ctx, store.HistoryQuery{Type: "Observation", Count: 10})
				if err != nil || len(page.Versions) != 4 {
					t.Fatalf("history: %v, %+v", err, page)
				}
			})
			t.Run("a transaction of one create", func(t *testing.T) {
				for _, c := range []struct {
					id   string
					make func(store.Tx, string) error
				}{{"alone", create}, {"alone-bare", bare}} {
					if err := s.InTx(ctx, func(tx store.Tx) error { return c.make(tx, c.id) }); err != nil {
						t.Fatal(err)
					}
					if !stored(t, c.id) {
						t.Fatalf("%s was not stored", c.id)
					}
				}
				if n := ownRows(t, "alone"); n == 0 {
					t.Error("alone has none of its own index rows")
				}
				err := commitCancelled(func(tx store.Tx) error { return create(tx, "alone-cancelled") })
				if err == nil {
					t.Fatal("a create whose context ended before its commit committed")
				}
				if stored(t, "alone-cancelled") || indexRows(t, "alone-cancelled") != 0 {
					t.Fatal("the cancelled create stored its write")
				}
			})
			t.Run("a create that collides fails the transaction", func(t *testing.T) {
				if err := s.InTx(ctx, func(tx store.Tx) error { return create(tx, "taken") }); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 40; i++ {
					alone := i%2 == 0 // the colliding create is the whole transaction
					id := fmt.Sprintf("first-%d", i)
					err := s.InTx(ctx, func(tx store.Tx) error {
						if !alone {
							if err := create(tx, id); err != nil {
								return err
							}
						}
						return create(tx, "taken")
					})
					if !errors.Is(err, store.ErrExists) {
						t.Fatalf("a create of an id that exists: %v; want store.ErrExists", err)
					}
					if stored(t, id) || indexRows(t, id) != 0 {
						t.Fatalf("%s, created beside the collision, was stored", id)
					}
				}
				if !stored(t, "taken") || ownRows(t, "taken") == 0 {
					t.Fatal("the resource the creates collided with changed")
				}
				if err := s.InTx(ctx, func(tx store.Tx) error { return create(tx, "after-collisions") }); err != nil {
					t.Fatalf("a create after the collisions: %v", err)
				}
			})
			t.Run("transactions that write nothing", func(t *testing.T) {
				if err := s.InTx(ctx, func(store.Tx) error { return nil }); err != nil {
					t.Fatal(err)
				}
				if err := s.InTx(ctx, func(tx store.Tx) error { _, err := tx.Read(ctx, "Patient", "after"); return err }); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// PostgreSQL aborts a transaction at its first error; a caller that goes
// on regardless and returns nil must not be told that it committed.
func TestPostgresAbortedTransactionDoesNotCommit(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	err := s.InTx(ctx, func(tx store.Tx) error {
		if _, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p", Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"}); err != nil {
			return err
		}
		if _, err := sqlstore.TxQueryInt(tx, `SELECT 1 / (SELECT COUNT(*) FROM resource_current WHERE id = 'none')`); err == nil {
			t.Error("division by zero did not fail")
		}
		return nil
	})
	if err == nil {
		t.Fatal("InTx reported a commit of an aborted transaction")
	}
	if _, err := s.Read(ctx, "Patient", "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the aborted transaction's write is readable: %v", err)
	}
}

// A resource with more index rows than a statement could take as
// parameters (65,535 on PostgreSQL) is stored whole, on create and update.
func TestManyIndexRows(t *testing.T) {
	engines := map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite":   func(t *testing.T) *sqlstore.Store { s, _ := openSQLite(t); return s },
		"postgres": openPostgres,
	}
	ctx := context.Background()
	rows := func(n int, tag string) []search.Row {
		out := make([]search.Row, n)
		for i := range out {
			out[i] = search.Row{Param: "identifier", Sys: "urn:test", Val: fmt.Sprintf("%s-%d", tag, i), Raw: ""}
		}
		out[n-1] = search.Row{Param: "birthdate", DLow: 1, DHigh: 2, HasDate: true}
		return out
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			count := func(want int) {
				var n int
				if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM search_index WHERE res_id = 'many' AND (val LIKE 'b-%' OR dlow = 1)`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Errorf("%d index rows; want %d", n, want)
				}
			}
			for i, w := range []store.Write{
				{Type: "Patient", ID: "many", NewID: true, Index: rows(9000, "a")},
				{Type: "Patient", ID: "many", Index: rows(9000, "b")},
			} {
				w.Method, w.Body = "PUT", []byte(`{"resourceType":"Patient"}`)
				if err := s.InTx(ctx, func(tx store.Tx) error { _, _, err := tx.Put(ctx, w); return err }); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			count(9000) // the update's rows, and none of the create's
		})
	}
}

// After a failed statement, a PostgreSQL transaction refuses everything
// else, so a caller that goes on regardless writes nothing, outside the
// transaction or in it; and a failure of a queued write that surfaces at a
// later read belongs to the transaction, not to that read.
func TestPostgresFailureIsSticky(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	body := []byte(`{"resourceType":"Patient"}`)
	write := func(tx store.Tx, id string) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Body: body, Method: "PUT"})
		return err
	}
	if err := s.InTx(ctx, func(tx store.Tx) error { return write(tx, "taken") }); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(tx store.Tx) error {
		if err := write(tx, "before"); err != nil {
			return err
		}
		sqlstore.TxQueryInt(tx, `SELECT 1 / 0`) // the error is ignored
		if err := write(tx, "after"); err == nil {
			t.Error("a write after the failure was accepted")
		}
		return nil
	})
	if err == nil {
		t.Fatal("the transaction committed")
	}
	for _, id := range []string{"before", "after"} {
		if _, err := s.Read(ctx, "Patient", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s is stored (%v)", id, err)
		}
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		if err := sqlstore.TxExec(tx, `INSERT INTO resource_current (type, id, version, deleted) VALUES (?, ?, 1, 0)`, "Patient", "taken"); err != nil {
			return err
		}
		_, err := sqlstore.TxQueryInt(tx, `SELECT 1`)
		if errors.Is(err, store.ErrExists) {
			t.Errorf("an earlier write's conflict passed for the read's own: %v", err)
		}
		return err
	})
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Errorf("err = %v; want the earlier statement's failure", err)
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		return sqlstore.TxExec(tx, `INSERT INTO resource_current (type, id, version, deleted) VALUES (?, ?, 1, 0)`, "Patient", "taken")
	})
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("a conflict at commit: err = %v; want ErrExists", err)
	}
}
