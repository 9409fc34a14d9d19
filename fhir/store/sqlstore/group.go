package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/promsgateway/gateway/fhir/store"
)

// Group commit on SQLite.
//
// SQLite has one writer at a time, and its commit is the dearest part of a
// small transaction: it writes every page the transaction dirtied to the
// WAL (measured on the 2-entry transaction at concurrency 32: a quarter of
// the gateway's CPU). Transactions of this process that wait for the
// writer therefore share one: the caller that gets the writer's turn runs
// every transaction queued by then and commits once for all of them.
//
//   - Each transaction is still all or nothing: one that fails reports its
//     own error at once, and the others are not affected (the group runs
//     again with a savepoint around each, and the failure is rolled back
//     to its own; see lead).
//   - InTx returns only after the commit that made its writes durable; if
//     that commit fails, every transaction in it reports the failure.
//   - A transaction sees the writes of those before it in its group, which
//     is what it would see had they committed first; they commit, or fail,
//     together with it.
//   - Writers queue in Go, in order, instead of in SQLite's busy handler,
//     which sleeps and polls (up to 100 ms a turn). Other processes still
//     meet busy_timeout.

// maxGroup bounds how many transactions one commit covers, so that a
// steady stream of writers still commits regularly.
const maxGroup = 64

// request is one transaction waiting for the writer.
type request struct {
	ctx  context.Context
	fn   func(store.Tx) error
	done chan struct{}
	err  error
	// panicked holds what fn panicked with, for its caller to panic with
	// again; a panic ends only its own transaction.
	panicked any
	// finished is set, by the leader, when done is closed.
	finished bool
}

// end closes r.done once, giving r err unless it has an outcome already.
func (r *request) end(err error) {
	if r.finished {
		return
	}
	if r.err == nil && r.panicked == nil {
		r.err = err
	}
	r.finished = true
	close(r.done)
}

// runGrouped runs fn as one transaction of a group (see above) and returns
// once the group's commit has made it durable, or at once when it fails.
func (s *Store) runGrouped(ctx context.Context, fn func(store.Tx) error) error {
	r := &request{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.queueMu.Lock()
	s.queued = append(s.queued, r)
	s.queueMu.Unlock()
	for waiting := true; waiting; {
		select {
		case <-r.done:
			waiting = false
		case s.writer <- struct{}{}:
			// This caller leads a group, unless a leader before it
			// already ran its transaction. A full group may leave it
			// queued: then it goes round again.
			func() {
				defer func() { <-s.writer }()
				select {
				case <-r.done:
				default:
					s.lead()
				}
			}()
		case <-ctx.Done():
			if s.unqueue(r) {
				return ctx.Err()
			}
			<-r.done // a leader has taken it: it ends soon
			waiting = false
		}
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// unqueue removes r from the queue; false means a leader has taken it.
func (s *Store) unqueue(r *request) bool {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	for i, q := range s.queued {
		if q == r {
			s.queued = append(s.queued[:i], s.queued[i+1:]...)
			return true
		}
	}
	return false
}

// take removes up to n requests from the head of the queue.
func (s *Store) take(n int) []*request {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	n = min(n, len(s.queued))
	out := append([]*request(nil), s.queued[:n]...)
	s.queued = append(s.queued[:0], s.queued[n:]...)
	return out
}

// lead runs the queued transactions in one SQLite transaction and commits
// it; the caller holds the writer's turn.
//
// The group runs first without savepoints: inside one, SQLite copies each
// page a transaction changes to a statement journal before changing it,
// which took a fifth of the writer's time on ingestion (resources/s 539 →
// 650 without). Only when one of its transactions fails does the group
// start again, each transaction in its own savepoint, so that the failure
// is undone alone; the transactions are run again, as InTx may, having
// written nothing.
func (s *Store) lead() {
	group := s.take(maxGroup)
	if len(group) == 0 {
		return
	}
	var sqlTx *sql.Tx
	defer func() {
		// Reached with requests unfinished only when lead ends abnormally
		// (a panic or runtime.Goexit that no transaction's recover
		// caught): no caller may be left waiting.
		for _, r := range group {
			if !r.finished {
				if sqlTx != nil {
					sqlTx.Rollback()
				}
				r.end(errBrokenGroup)
			}
		}
	}()
	for _, savepoints := range []bool{false, true} {
		if s.runGroup(group, savepoints, &sqlTx) {
			return
		}
	}
}

// runGroup runs group in one transaction, which it keeps in *sqlTx for
// lead to roll back should it end abnormally (a rollback after the commit
// or a rollback does nothing), and commits it. Without savepoints it stops at the first
// transaction that fails, rolls back and reports false, having ended none
// of them, unless that transaction is the group's only one.
func (s *Store) runGroup(group []*request, savepoints bool, sqlTx **sql.Tx) bool {
	finish := func(rs []*request, err error) {
		for _, r := range rs {
			r.end(err)
		}
	}
	// The transaction outlives any one caller's context: each statement
	// runs with its own caller's.
	tx, err := s.db.BeginTx(context.WithoutCancel(group[0].ctx), nil)
	if err != nil {
		finish(group, fmt.Errorf("begin: %w", err))
		return true
	}
	*sqlTx = tx
	var (
		committed []*request // ran to the end, waiting for the commit
		written   []cacheKey
	)
	// Only those queued now: one that arrives while these run waits for
	// the next group rather than hold the commit of these back.
	for i, r := range group {
		keys, err := s.runOne(tx, r, savepoints)
		switch {
		case err == nil:
			committed = append(committed, r)
			written = append(written, keys...)
		case errors.Is(err, errBrokenGroup):
			// The savepoint could not be undone: nothing of the shared
			// transaction can be trusted.
			tx.Rollback()
			r.end(err)
			finish(group[i:], errBrokenGroup)
			finish(committed, errBrokenGroup)
			return true
		case !savepoints:
			tx.Rollback()
			if len(group) == 1 {
				r.end(err)
				return true
			}
			return false
		default:
			r.end(err)
		}
	}
	err = tx.Commit()
	s.commits.Add(1)
	// A failed commit may still have committed: forget what it wrote.
	if s.cache != nil {
		for _, k := range written {
			s.cache.invalidate(k)
		}
	}
	if err != nil {
		err = fmt.Errorf("commit: %w", err)
	}
	finish(committed, err)
	return true
}

// errBrokenGroup is reported by every transaction of a group whose shared
// SQLite transaction had to be abandoned.
// InTx retries it: nothing of the group was written.
var errBrokenGroup = errors.New("the shared write transaction failed and was rolled back")

// runOne runs one request in sqlTx, inside a savepoint when savepoint is
// set, and returns the keys it wrote. On failure (an error, a panic, or a
// context that ended while it waited) the savepoint, if any, is rolled
// back and the error returned; one wrapping errBrokenGroup means the
// rollback failed too.
func (s *Store) runOne(sqlTx *sql.Tx, r *request, savepoint bool) (keys []cacheKey, err error) {
	r.panicked = nil // from a run without savepoints that failed
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	// The group's statements are never interrupted: SQLite rolls back the
	// whole transaction when a write is, which would undo the others'
	// work. A caller's context is checked before each of its statements
	// instead (reader.shared).
	if savepoint {
		if _, err := sqlTx.ExecContext(context.WithoutCancel(r.ctx), "SAVEPOINT w"); err != nil {
			return nil, fmt.Errorf("%w: savepoint: %v", errBrokenGroup, err)
		}
	}
	t := &tx{reader: reader{s: s, tx: sqlTx, shared: true}}
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				r.panicked = p
				err = fmt.Errorf("transaction panicked: %v", p)
			}
		}()
		if err := r.fn(t); err != nil {
			return err
		}
		// A caller that stopped waiting does not commit, as on
		// PostgreSQL and with a transaction of its own.
		return r.ctx.Err()
	}()
	if err != nil && !savepoint {
		return nil, err
	}
	if err != nil {
		// Undone whatever its context: the group goes on.
		ctx := context.WithoutCancel(r.ctx)
		if _, rerr := sqlTx.ExecContext(ctx, "ROLLBACK TO w"); rerr != nil {
			return nil, fmt.Errorf("%w: rollback to savepoint: %v", errBrokenGroup, rerr)
		}
		if _, rerr := sqlTx.ExecContext(ctx, "RELEASE w"); rerr != nil {
			return nil, fmt.Errorf("%w: release savepoint: %v", errBrokenGroup, rerr)
		}
		return nil, err
	}
	if savepoint {
		if _, err := sqlTx.ExecContext(context.WithoutCancel(r.ctx), "RELEASE w"); err != nil {
			return nil, fmt.Errorf("%w: release savepoint: %v", errBrokenGroup, err)
		}
	}
	return t.written, nil
}
