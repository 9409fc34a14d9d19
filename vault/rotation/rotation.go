// Package rotation retires old versions of the key that wraps data keys.
// After the transit key is rotated (`gateway keys rotate`), a background
// job rewraps every stored data key to the new version, batch by batch,
// recording its progress so that it resumes where it stopped; reads and
// writes go on meanwhile (a rewrap changes only the wrapped key in front of
// each sealed record). Once every record is rewrapped, the key's minimum
// decryption version is raised, so the old versions decrypt nothing.
// Pseudonyms and blind indexes use other keys at pinned versions and do
// not change.
//
// Records sealed just after the rotation may still carry a data key that
// was wrapped before it, for as long as a data key is used
// (vault.DataKeyMaxAge). So the job runs two passes: every record, then,
// once that time has passed, the records written since the rotation.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/promsgateway/gateway/vault/hcvault"
)

// Rotation is the progress of rewrapping every stored data key after the
// key that wraps them was rotated to version Target (vault/rotation).
type Rotation struct {
	Target int
	// RotatedAt and SeqAtRotation mark the rotation: versions written
	// after SeqAtRotation may carry data keys wrapped before it, for as
	// long as a data key is used, and get a second pass.
	RotatedAt     time.Time
	SeqAtRotation int64
	// Pass is 1 (every version) or 2 (versions after SeqAtRotation).
	Pass int
	// After is the last version (seq) the current pass has examined.
	After int64
	// Rewrapped counts versions rewritten; Total is how many versions had
	// a body when the rotation started.
	Rewrapped, Total int64
	// Finished is set once the old key versions were retired.
	Finished time.Time
}

// ErrNoRotation is returned by Store.Rotation for a target never recorded.
var ErrNoRotation = errors.New("no such key rotation")

// Store is what the job needs of storage (sqlstore.Store).
type Store interface {
	MaxSeq(ctx context.Context) (int64, error)
	CountSealed(ctx context.Context) (int64, error)
	SaveRotation(ctx context.Context, r Rotation) error
	Rotation(ctx context.Context, target int) (Rotation, error)
	RewrapBatch(ctx context.Context, after int64, limit int, stale func([]byte) bool,
		rewrap func(context.Context, [][]byte) ([][]byte, error)) (int64, int, error)
}

// Keys is what the job needs of the key service (hcvault.Client).
type Keys interface {
	KeyVersions(ctx context.Context) (latest, minDecryption int, err error)
	Rewrap(ctx context.Context, wrapped [][]byte) ([][]byte, error)
	SetMinDecryptionVersion(ctx context.Context, v int) error
}

// Args is the rewrap job: rewrap to key version Target. Progress is kept
// in the store, not in the job, so any job for the target resumes it.
type Args struct {
	Target int `json:"target"`
}

// Kind names the job in the queue.
func (Args) Kind() string { return "rewrap_data_keys" }

// Worker runs rewrap jobs.
type Worker struct {
	river.WorkerDefaults[Args]
	Store Store
	Keys  Keys
	// Queue enqueues the continuation of a job that used its time slice,
	// and the second pass.
	Queue interface {
		Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	}
	// Grace is how long after the rotation the second pass starts: at
	// least the data-key lifetime of every gateway writing to the store.
	Grace time.Duration
	// Slice bounds the work one job does before it hands over to the next.
	Slice time.Duration
	// Batch is how many versions one rewrap call covers.
	Batch int
	Log   *slog.Logger
}

// Timeout lets a job run its slice and finish its last batch.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.Slice + 5*time.Minute }

// Work rewraps one slice of the rotation to job.Args.Target.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	r, err := w.Store.Rotation(ctx, job.Args.Target)
	if err != nil {
		return fmt.Errorf("rewrap to version %d: %w", job.Args.Target, err)
	}
	if !r.Finished.IsZero() {
		return nil
	}
	stale := func(wrapped []byte) bool { return hcvault.WrappedVersion(wrapped) < r.Target }
	deadline := time.Now().Add(w.Slice)
	for {
		last, n, err := w.Store.RewrapBatch(ctx, r.After, w.Batch, stale, w.Keys.Rewrap)
		if err != nil {
			return err // River retries with backoff; progress so far is kept
		}
		r.Rewrapped += int64(n)
		end := last == r.After
		r.After = last
		if err := w.Store.SaveRotation(ctx, r); err != nil {
			return err
		}
		if end {
			break
		}
		if time.Now().After(deadline) {
			w.Log.Info("key rotation: rewrap continues", "target", r.Target, "pass", r.Pass, "after", r.After, "rewrapped", r.Rewrapped, "total", r.Total)
			return w.Queue.Insert(ctx, Args{Target: r.Target}, nil)
		}
	}
	if r.Pass == 1 {
		// Second pass: what was written since the rotation, once no data
		// key wrapped before it can still be in use.
		r.Pass, r.After = 2, r.SeqAtRotation
		if err := w.Store.SaveRotation(ctx, r); err != nil {
			return err
		}
		at := r.RotatedAt.Add(w.Grace)
		w.Log.Info("key rotation: first pass done; second pass scheduled", "target", r.Target, "rewrapped", r.Rewrapped, "at", at)
		return w.Queue.Insert(ctx, Args{Target: r.Target}, &river.InsertOpts{ScheduledAt: at})
	}
	_, minDecryption, err := w.Keys.KeyVersions(ctx)
	if err != nil {
		return err
	}
	if minDecryption < r.Target {
		if err := w.Keys.SetMinDecryptionVersion(ctx, r.Target); err != nil {
			return fmt.Errorf("retire key versions below %d: %w", r.Target, err)
		}
	}
	r.Finished = time.Now().UTC()
	w.Log.Info("key rotation finished: old key versions retired", "target", r.Target, "rewrapped", r.Rewrapped)
	return w.Store.SaveRotation(ctx, r)
}

// Rotator is the key service as the operator's rotate command uses it.
type Rotator interface {
	Rotate(ctx context.Context) error
	KeyVersions(ctx context.Context) (latest, minDecryption int, err error)
}

// ErrInProgress is returned by Start while an earlier rotation has not
// finished.
var ErrInProgress = errors.New("an earlier key rotation is still being rewrapped")

// Start rotates the key and queues the rewrap of every stored data key.
func Start(ctx context.Context, keys Rotator, st Store, rotations func(context.Context) ([]Rotation, error),
	queue interface {
		Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	}) (Rotation, error) {
	all, err := rotations(ctx)
	if err != nil {
		return Rotation{}, err
	}
	for _, r := range all {
		if r.Finished.IsZero() {
			return r, fmt.Errorf("%w (to version %d)", ErrInProgress, r.Target)
		}
	}
	if err := keys.Rotate(ctx); err != nil {
		return Rotation{}, err
	}
	latest, _, err := keys.KeyVersions(ctx)
	if err != nil {
		return Rotation{}, err
	}
	seq, err := st.MaxSeq(ctx)
	if err != nil {
		return Rotation{}, err
	}
	total, err := st.CountSealed(ctx)
	if err != nil {
		return Rotation{}, err
	}
	r := Rotation{Target: latest, RotatedAt: time.Now().UTC(), SeqAtRotation: seq, Pass: 1, Total: total}
	if err := st.SaveRotation(ctx, r); err != nil {
		return r, err
	}
	return r, queue.Insert(ctx, Args{Target: latest}, nil)
}
