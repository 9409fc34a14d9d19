package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// changeFeed follows resource_version, to which every create, update and
// delete of any process appends a row, and invalidates the read cache for
// each row it sees. It is how writes of other processes reach the cache.
//
// seq orders rows as they were inserted, not as they were committed. On
// SQLite the two agree (writers are serialised, and a rolled-back insert's
// seq is reused), so every seq below the newest one seen has been seen.
// On PostgreSQL a transaction may take seq 10, commit after another took
// 11, and so become visible later; and a rolled-back one leaves 10 unused
// for ever. The feed therefore keeps each seq it skipped as a gap and
// looks for it again on every poll until PostgreSQL's transaction
// snapshot shows that every transaction that could hold it has ended:
// once a gap is a grace period old, any transaction still holding it has a
// transaction id, below the snapshot's xmax read then; when the oldest
// running transaction id (xmin) passes that mark, the gap's transaction
// committed (and the next look finds its row) or rolled back. The snapshot
// covers every session of every role, and a gap is never given up: a
// transaction that runs for hours keeps its gap watched (and, past maxGaps
// of them, the cache off). Start-up is one more such wait: the cache stays
// off until every transaction older than the start has ended. All of this
// needs seq values handed out in the order they are asked for, which
// PostgreSQL's identity does with its default CACHE 1 (the schema's); a
// per-session cache of values would break it.
type changeFeed struct {
	s *Store
	c *readCache
	// db runs the feed's statements: on PostgreSQL a pool of one
	// connection of its own (feedDB), on SQLite the store's pool.
	db *sql.DB
	// next is the lowest seq not yet seen; every lower one was seen or is
	// in gaps.
	next int64
	// gaps are the skipped seqs still unaccounted for.
	gaps map[int64]*wait
	// horizon, when set, keeps the cache off until every transaction that
	// was running when it was set has ended: at start, and after more gaps
	// than the feed keeps.
	horizon *wait
}

// wait is a PostgreSQL condition on running transactions: since is the
// database time it began (zero until the next settle sets it), mark the
// snapshot xmax read once since is a grace period old (0 until then). It
// holds until the snapshot xmin reaches mark.
type wait struct {
	since time.Time
	mark  int64
}

const (
	feedBatch = 1000
	// maxGaps bounds the skipped seqs the feed tracks one by one; past it
	// the cache goes off until a horizon passes.
	maxGaps = 1000
	// gapGrace covers the moment between a PostgreSQL insert taking its
	// seq and its transaction being given a transaction id.
	gapGrace = time.Second
)

// EnableReadCache keeps up to maxBytes of current versions in memory for
// reads by id (see readCache), and follows the change feed every interval
// until ctx ends or the store closes. Call it once, after Open.
func (s *Store) EnableReadCache(ctx context.Context, maxBytes int, interval time.Duration) error {
	if s.cache != nil {
		return fmt.Errorf("read cache already enabled")
	}
	f := &changeFeed{s: s, c: newReadCache(maxBytes), gaps: map[int64]*wait{}, db: s.db}
	if f.postgres() {
		db, err := feedDB(s.dsn)
		if err != nil {
			return fmt.Errorf("read cache: %w", err)
		}
		f.db = db
	}
	if err := f.start(ctx); err != nil {
		f.close()
		return fmt.Errorf("read cache: %w", err)
	}
	s.cache = f.c
	ctx, cancel := context.WithCancel(ctx)
	s.stopFeed = cancel
	s.feedDone = make(chan struct{})
	go func() {
		defer close(s.feedDone)
		defer f.close()
		// Without the feed the cache cannot know of other writers.
		defer f.c.setOn(false)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			more, err := f.poll(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// Whatever happened meanwhile is still in resource_version:
				// the feed resumes from next, and serves nothing until then.
				f.c.setOn(false)
			}
			if more {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (f *changeFeed) postgres() bool { return f.s.d.name == "postgres" }

// feedDB opens the PostgreSQL feed's own connection. The poll runs a
// hundred times a second: through the store's pools it woke a different
// backend each time and, planned afresh at each poll so that no plan made
// on an empty table outlived its growth, cost the idle server 6.5% of a
// core and the gateway 8%. One connection keeps one backend warm, and its
// settings leave the planner no plan but the primary key's index for the
// poll (and for the gap lookups by seq), so the generic plan it keeps is
// right whatever the table's size was when it was made.
func feedDB(dsn string) (*sql.DB, error) {
	return openPostgres(dsn, genericPlans, 1, map[string]string{"enable_seqscan": "off", "enable_sort": "off"})
}

// close closes the feed's own connection, if it has one.
func (f *changeFeed) close() {
	if f.db != f.s.db {
		f.db.Close()
	}
}

func (f *changeFeed) start(ctx context.Context) error {
	var last int64
	if err := f.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM resource_version`).Scan(&last); err != nil {
		return err
	}
	f.next = last + 1
	if !f.postgres() {
		f.c.setOn(true)
		return nil
	}
	// A transaction still running may hold a seq below next.
	f.horizon = &wait{}
	return nil
}

// poll reads the rows after next, invalidates their keys, and settles
// gaps; more says a full batch came back and the feed should poll again
// at once.
func (f *changeFeed) poll(ctx context.Context) (more bool, err error) {
	n := 0
	err = f.changes(ctx, f.s.d.rebind(`SELECT seq, type, id FROM resource_version WHERE seq >= ? ORDER BY seq LIMIT `+fmt.Sprint(feedBatch)), true, func(seq int64) {
		n++
		if f.postgres() {
			for g := f.next; g < seq; g++ {
				if len(f.gaps) >= maxGaps {
					f.overflow()
					break
				}
				f.gaps[g] = &wait{}
			}
		}
		f.next = seq + 1
	}, f.next)
	if err != nil {
		return false, err
	}
	if f.postgres() && (len(f.gaps) > 0 || f.horizon != nil) {
		if err := f.settle(ctx); err != nil {
			return false, err
		}
	}
	more = n == feedBatch
	if !more && f.horizon == nil && !f.c.on.Load() {
		f.c.setOn(true)
	}
	return more, nil
}

// overflow replaces the tracked gaps by a horizon: the cache goes off
// until every writing transaction that could hold one of them has ended.
func (f *changeFeed) overflow() {
	clear(f.gaps)
	f.c.setOn(false)
	f.horizon = &wait{}
}

// settle (PostgreSQL) looks again for the gaps and forgets those no
// running transaction can fill.
func (f *changeFeed) settle(ctx context.Context) error {
	var (
		xmin, xmax int64
		now        time.Time
	)
	// The snapshot comes first: a transaction that has ended by then has
	// its row visible to the gap query after it, if it committed.
	err := f.db.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint, clock_timestamp()
		FROM pg_current_snapshot() AS s`).Scan(&xmin, &xmax, &now)
	if err != nil {
		return err
	}
	// done advances w and reports whether it holds.
	done := func(w *wait) bool {
		switch {
		case w.since.IsZero():
			w.since = now
		case w.mark == 0 && now.Sub(w.since) > gapGrace:
			w.mark = xmax
		}
		return w.mark != 0 && xmin >= w.mark
	}
	var ended []int64
	for g, w := range f.gaps {
		if done(w) {
			ended = append(ended, g)
		}
	}
	if len(f.gaps) > 0 {
		list := make([]string, 0, len(f.gaps))
		for g := range f.gaps {
			list = append(list, fmt.Sprint(g))
		}
		err := f.changes(ctx, `SELECT seq, type, id FROM resource_version WHERE seq IN (`+strings.Join(list, ",")+`)`, false, func(seq int64) {
			delete(f.gaps, seq)
		})
		if err != nil {
			return err
		}
	}
	for _, g := range ended {
		delete(f.gaps, g) // its transaction rolled back (a commit was found above)
	}
	if f.horizon != nil && done(f.horizon) {
		f.horizon = nil
	}
	return nil
}

// changes runs q, which selects seq, type and id of resource_version rows,
// invalidates each row's resource in the cache and passes its seq to fn.
// The poll's statement is prepared; on PostgreSQL the gap lookup, whose
// text changes with the gaps, runs unprepared (prepared says which).
func (f *changeFeed) changes(ctx context.Context, q string, prepared bool, fn func(seq int64), args ...any) error {
	var (
		rows rowsIter
		err  error
	)
	switch {
	case !f.postgres():
		rows, err = f.s.reader().query(ctx, q, args...)
	case prepared:
		rows, err = f.db.QueryContext(ctx, q, args...)
	default:
		rows, err = f.db.QueryContext(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq     int64
			typ, id string
		)
		if err := rows.Scan(&seq, &typ, &id); err != nil {
			return err
		}
		f.c.invalidate(cacheKey{typ, id})
		fn(seq)
	}
	return rows.Err()
}
