package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// Queue is the durable job queue (River) on the store's own database.
type Queue interface {
	// Insert enqueues a job.
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	// Start runs the workers until Stop (an insert-only queue has none).
	Start(ctx context.Context) error
	// Stop lets running jobs finish and stops the workers.
	Stop(ctx context.Context) error
	// Close releases the queue's connections.
	Close()
}

// Queue opens the job queue on the store's database, creating River's
// tables first. workers nil gives an insert-only queue (admin commands);
// otherwise jobs run one at a time on the default queue.
func (s *Store) Queue(ctx context.Context, workers *river.Workers, log *slog.Logger) (Queue, error) {
	cfg := &river.Config{Logger: log, RescueStuckJobsAfter: 10 * time.Minute, FetchPollInterval: 500 * time.Millisecond}
	if workers != nil {
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}}
	}
	if s.d.name == "postgres" {
		pool, err := pgxpool.New(ctx, s.dsn)
		if err != nil {
			return nil, fmt.Errorf("job queue: %w", err)
		}
		q, err := newQueue(ctx, riverpgxv5.New(pool), cfg)
		if err != nil {
			pool.Close()
			return nil, err
		}
		q.close = pool.Close
		return q, nil
	}
	// River's SQLite driver wants one connection; it shares the file with
	// the store's pool, and busy_timeout settles who writes when.
	db, err := openSQLite(s.dsn)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	db.SetMaxOpenConns(1)
	q, err := newQueue(ctx, riversqlite.New(db), cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	q.close = func() { db.Close() }
	return q, nil
}

type queue[TTx any] struct {
	client *river.Client[TTx]
	close  func()
}

func newQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], cfg *river.Config) (*queue[TTx], error) {
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("job queue: migrate: %w", err)
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return &queue[TTx]{client: c}, nil
}

func (q *queue[TTx]) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := q.client.Insert(ctx, args, opts)
	return err
}

func (q *queue[TTx]) Start(ctx context.Context) error { return q.client.Start(ctx) }
func (q *queue[TTx]) Stop(ctx context.Context) error  { return q.client.Stop(ctx) }
func (q *queue[TTx]) Close()                          { q.close() }
