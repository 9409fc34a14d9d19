package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checkpoints on SQLite.
//
// In WAL mode a commit appends the pages it changed to the -wal file, and
// a checkpoint copies them back into the database file so that the log can
// start again from its beginning. By default SQLite checkpoints inside the
// commit that takes the log past 1,000 pages, on the committing connection:
// for this process that is the group writer (group.go), whose turn every
// write waits for. On ingestion the writer was busy all the time, and
// about half of that was commits, of which half again was these
// checkpoints (copying pages back, and two fsyncs), while the second core
// was partly idle.
//
// So the pool's connections do not checkpoint (wal_autocheckpoint=0).
// Every checkpointEvery a goroutine with a connection of its own runs two
// PASSIVE checkpoints, which neither wait for nor block readers:
//
//   - the first beside the writer, copying back what the log holds;
//   - then, if the writer appended more meanwhile, a second while it holds
//     the writer's turn, so that it copies the few pages left and the next
//     group starts the log again. Without it, a writer that never stops
//     (a long import) would never let the log restart, and the -wal file
//     would grow by everything written.
//
// As with SQLite's own checkpoints, a reader that holds an old snapshot
// keeps the log from starting again until it ends; a checkpoint that finds
// nothing to copy writes and syncs nothing.

// checkpointEvery is how often the checkpointer runs. Pages written many
// times between two checkpoints are copied back once.
const checkpointEvery = time.Second

// checkpointer runs a Store's checkpoints until stopped.
type checkpointer struct {
	db     *sql.DB
	writer chan struct{}
	every  time.Duration
	stop   context.CancelFunc
	done   chan struct{}
	// logged is the length of the log after the last turn's checkpoint,
	// seen the length the last checkpoint found.
	logged, seen int64
	// For tests: turns counts the checkpoints that held the writer's
	// turn, restarts the times a checkpoint found the log shorter than
	// the one before it did (it had started again).
	turns, restarts atomic.Int64
}

// startCheckpointer opens the checkpointer's connection to the database
// at path and starts it; writer is the Store's writer turn.
func startCheckpointer(path string, writer chan struct{}, every time.Duration) (*checkpointer, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, writer: writer, every: every, stop: stop, done: make(chan struct{})}
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := c.cycle(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Said once per spell of failures: the writes go on, and
			// the log grows until a checkpoint succeeds.
			slog.Warn("sqlite checkpoint failed; the -wal file grows until one succeeds", "error", err)
			failing = true
		case err == nil && failing:
			slog.Info("sqlite checkpoints succeed again")
			failing = false
		}
	}
}

// cycle runs the checkpoints of one turn (see above).
func (c *checkpointer) cycle(ctx context.Context) error {
	logged, err := c.checkpoint(ctx)
	if err != nil || logged == c.logged {
		// The log is as long as it was after the last turn, and all
		// of it is copied back: nothing was written since.
		return err
	}
	select {
	case c.writer <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-c.writer }()
	c.turns.Add(1)
	c.logged, err = c.checkpoint(ctx)
	return err
}

// checkpoint runs one PASSIVE checkpoint and returns how many pages the
// log held when it began. It copies back all of them, unless a reader's
// snapshot still needs some, but not those appended while it ran: SQLite
// reports only the first.
func (c *checkpointer) checkpoint(ctx context.Context) (logged int64, err error) {
	var busy, copied int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logged, &copied); err != nil {
		return 0, fmt.Errorf("wal_checkpoint: %w", err)
	}
	if logged < c.seen {
		c.restarts.Add(1)
	}
	c.seen = logged
	return logged, nil
}

// close stops the checkpointer and closes its connection; the last
// connection of the process to close checkpoints what is left.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
