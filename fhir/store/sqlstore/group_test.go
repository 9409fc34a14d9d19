package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
)

// SQLite transactions that wait for the writer share a commit, and each
// keeps its own outcome: the ones that fail or panic leave nothing, the
// others are all stored, and InTx returns only once they are durable.
func TestSQLiteGroupCommit(t *testing.T) {
	s, _ := openSQLite(t)
	ctx := context.Background()
	body := []byte(`{"resourceType":"Patient"}`)
	put := func(tx store.Tx, id string) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Body: body, Method: "PUT"})
		return err
	}
	errWanted := errors.New("this transaction fails")
	// The first transaction holds the writer while the others queue.
	release := make(chan struct{})
	var first sync.WaitGroup
	first.Add(1)
	go func() {
		defer first.Done()
		if err := s.InTx(ctx, func(tx store.Tx) error { <-release; return put(tx, "first") }); err != nil {
			t.Errorf("first: %v", err)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	before := sqlstore.Commits(s)
	const n = 32
	results := make([]error, n)
	panics := make([]any, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			results[i] = s.InTx(ctx, func(tx store.Tx) error {
				if err := put(tx, fmt.Sprint("p", i)); err != nil {
					return err
				}
				switch i % 8 {
				case 3:
					return errWanted
				case 5:
					panic(fmt.Sprint("panic in ", i))
				}
				return nil
			})
		}()
	}
	time.Sleep(100 * time.Millisecond) // all queued behind the first
	close(release)
	wg.Wait()
	first.Wait()
	for i := 0; i < n; i++ {
		_, err := s.Read(ctx, "Patient", fmt.Sprint("p", i))
		switch i % 8 {
		case 3:
			if !errors.Is(results[i], errWanted) {
				t.Errorf("%d: err = %v; want its own error", i, results[i])
			}
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%d failed, and its write is stored (%v)", i, err)
			}
		case 5:
			if panics[i] != fmt.Sprint("panic in ", i) {
				t.Errorf("%d: panic %v did not reach its caller", i, panics[i])
			}
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%d panicked, and its write is stored (%v)", i, err)
			}
		default:
			if results[i] != nil || panics[i] != nil || err != nil {
				t.Errorf("%d: InTx %v, panic %v, read %v", i, results[i], panics[i], err)
			}
		}
	}
	if got := sqlstore.Commits(s) - before; got > 4 {
		t.Errorf("%d transactions took %d commits; they were to share", n, got)
	}
}

// A transaction whose caller gives up while it waits for the writer never
// runs; the others are not held up.
func TestSQLiteQueuedTransactionGivesUp(t *testing.T) {
	s, _ := openSQLite(t)
	ctx := context.Background()
	release := make(chan struct{})
	holding := make(chan struct{})
	go func() {
		s.InTx(ctx, func(store.Tx) error { close(holding); <-release; return nil })
	}()
	<-holding
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ran := false
	err := s.InTx(cctx, func(store.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("err = %v, ran = %v; want the deadline, not run", err, ran)
	}
	close(release)
	if err := s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "after", Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A transaction of a group whose context ends while it runs fails alone:
// its later statements refuse, its savepoint is undone, and the others of
// the group commit.
func TestSQLiteCancelledMemberFailsAlone(t *testing.T) {
	s, _ := openSQLite(t)
	ctx := context.Background()
	body := []byte(`{"resourceType":"Patient"}`)
	write := func(ctx context.Context, tx store.Tx, id string) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Body: body, Method: "PUT"})
		return err
	}
	release := make(chan struct{})
	holding := make(chan struct{})
	go s.InTx(ctx, func(store.Tx) error { close(holding); <-release; return nil })
	<-holding
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errs[i] = s.InTx(cctx, func(tx store.Tx) error {
				if err := write(cctx, tx, fmt.Sprint("m", i, "a")); err != nil {
					return err
				}
				if i == 1 {
					cancel()
				}
				return write(cctx, tx, fmt.Sprint("m", i, "b"))
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		_, ra := s.Read(ctx, "Patient", fmt.Sprint("m", i, "a"))
		_, rb := s.Read(ctx, "Patient", fmt.Sprint("m", i, "b"))
		if i == 1 {
			if !errors.Is(err, context.Canceled) || !errors.Is(ra, store.ErrNotFound) || !errors.Is(rb, store.ErrNotFound) {
				t.Errorf("cancelled member: err %v, reads %v %v; want context.Canceled and nothing stored", err, ra, rb)
			}
			continue
		}
		if err != nil || ra != nil || rb != nil {
			t.Errorf("member %d: err %v, reads %v %v", i, err, ra, rb)
		}
	}
}

// A leader that leaves by runtime.Goexit (t.FailNow in a transaction, say)
// still hands the writer on: the transactions queued behind it commit.
func TestSQLiteLeaderThatExitsHandsOn(t *testing.T) {
	s, _ := openSQLite(t)
	ctx := context.Background()
	release := make(chan struct{})
	holding := make(chan struct{})
	go s.InTx(ctx, func(store.Tx) error { close(holding); <-release; runtime.Goexit(); return nil })
	<-holding
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "behind", Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"})
			return err
		})
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the transaction behind a leader that exited never ran")
	}
}

// A group in which no transaction fails runs each once; one in which a
// transaction fails runs again, with savepoints, from the start: the
// failing one and those before it run twice, and each of the others is
// committed once.
func TestSQLiteGroupRunsAgainOnlyOnFailure(t *testing.T) {
	for _, failing := range []int{-1, 2} {
		t.Run(fmt.Sprint("failing ", failing), func(t *testing.T) {
			s, _ := openSQLite(t)
			ctx := context.Background()
			release := make(chan struct{})
			var first sync.WaitGroup
			first.Add(1)
			go func() {
				defer first.Done()
				s.InTx(ctx, func(tx store.Tx) error { <-release; return nil })
			}()
			time.Sleep(50 * time.Millisecond)
			const n = 6
			var runs [n]atomic.Int32
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.InTx(ctx, func(tx store.Tx) error {
						runs[i].Add(1)
						if _, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Body: []byte(`{"resourceType":"Patient"}`), Method: "PUT"}); err != nil {
							return err
						}
						if i == failing {
							return errors.New("fails")
						}
						return nil
					})
				}()
			}
			time.Sleep(100 * time.Millisecond) // all queued behind the first
			close(release)
			wg.Wait()
			first.Wait()
			for i := range n {
				got := runs[i].Load()
				switch {
				case failing < 0 && got != 1:
					t.Errorf("transaction %d ran %d times in a group where none failed; want 1", i, got)
				case i == failing && got != 2:
					t.Errorf("the failing transaction ran %d times; want 2 (without, then with savepoints)", got)
				case got < 1 || got > 2:
					t.Errorf("transaction %d ran %d times; want once, or twice if it ran before the failure", i, got)
				}
				res, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: fmt.Sprint("p", i)})
				switch {
				case i == failing && err == nil && len(res.Versions) > 0:
					t.Errorf("the failed transaction %d is stored", i)
				case i != failing && (err != nil || len(res.Versions) != 1):
					t.Errorf("transaction %d: history %v, %v; want one version", i, res, err)
				}
			}
		})
	}
}
