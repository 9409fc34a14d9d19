package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/rotation"
)

// MaxSeq returns the sequence number of the latest version written.
func (s *Store) MaxSeq(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM resource_version`).Scan(&n)
	return n.Int64, err
}

// CountSealed returns how many versions have a (sealed) body.
func (s *Store) CountSealed(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource_version WHERE body IS NOT NULL`).Scan(&n)
	return n, err
}

// SaveRotation records a rotation's progress.
func (s *Store) SaveRotation(ctx context.Context, r rotation.Rotation) error {
	var finished any
	if !r.Finished.IsZero() {
		finished = r.Finished.UnixMicro()
	}
	_, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO key_rotation (target, rotated_at, seq_at_rotation, pass, after_seq, rewrapped, total, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (target) DO UPDATE SET pass = excluded.pass, after_seq = excluded.after_seq,
			rewrapped = excluded.rewrapped, finished_at = excluded.finished_at`),
		r.Target, r.RotatedAt.UnixMicro(), r.SeqAtRotation, r.Pass, r.After, r.Rewrapped, r.Total, finished)
	return err
}

// Rotations lists the recorded rotations, latest first.
func (s *Store) Rotations(ctx context.Context) ([]rotation.Rotation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target, rotated_at, seq_at_rotation, pass, after_seq, rewrapped, total, finished_at FROM key_rotation ORDER BY target DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rotation.Rotation
	for rows.Next() {
		var (
			r        rotation.Rotation
			rotated  int64
			finished sql.NullInt64
		)
		if err := rows.Scan(&r.Target, &rotated, &r.SeqAtRotation, &r.Pass, &r.After, &r.Rewrapped, &r.Total, &finished); err != nil {
			return nil, err
		}
		r.RotatedAt = time.UnixMicro(rotated).UTC()
		if finished.Valid {
			r.Finished = time.UnixMicro(finished.Int64).UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Rotation returns the rotation to target.
func (s *Store) Rotation(ctx context.Context, target int) (rotation.Rotation, error) {
	all, err := s.Rotations(ctx)
	if err != nil {
		return rotation.Rotation{}, err
	}
	for _, r := range all {
		if r.Target == target {
			return r, nil
		}
	}
	return rotation.Rotation{}, rotation.ErrNoRotation
}

// RewrapBatch examines up to limit versions after seq after, in order, and
// rewrites those whose wrapped data key stale reports, with the data keys
// rewrapped by rewrap (one call for the batch's distinct keys). The sealed
// ciphertext is untouched, so readers are unaffected; a row is rewritten
// only if it still holds what was read. It returns the last seq examined
// (after itself when there was nothing left) and how many were rewritten.
func (s *Store) RewrapBatch(ctx context.Context, after int64, limit int, stale func(wrapped []byte) bool,
	rewrap func(ctx context.Context, wrapped [][]byte) ([][]byte, error)) (last int64, rewritten int, err error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT seq, body FROM resource_version WHERE seq > ? AND body IS NOT NULL ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return after, 0, fmt.Errorf("rewrap: %w", err)
	}
	type row struct {
		seq  int64
		body []byte
		key  string
	}
	var todo []row
	last = after
	distinct := map[string]int{}
	var keys [][]byte
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.body); err != nil {
			rows.Close()
			return after, 0, err
		}
		last = r.seq
		w, err := vault.SealedKey(r.body)
		if err != nil {
			rows.Close()
			return after, 0, fmt.Errorf("rewrap: version seq %d: %w", r.seq, err)
		}
		if !stale(w) {
			continue
		}
		r.key = string(w)
		if _, ok := distinct[r.key]; !ok {
			distinct[r.key] = len(keys)
			keys = append(keys, w)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return after, 0, err
	}
	if len(todo) == 0 {
		return last, 0, nil
	}
	fresh, err := rewrap(ctx, keys)
	if err != nil {
		return after, 0, fmt.Errorf("rewrap: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return after, 0, err
	}
	defer tx.Rollback()
	update := s.d.rebind(`UPDATE resource_version SET body = ? WHERE seq = ? AND body = ?`)
	for _, r := range todo {
		body, err := vault.WithSealedKey(r.body, fresh[distinct[r.key]])
		if err != nil {
			return after, 0, err
		}
		res, err := tx.ExecContext(ctx, update, body, r.seq, r.body)
		if err != nil {
			return after, 0, fmt.Errorf("rewrap: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rewritten++
		}
	}
	if err := tx.Commit(); err != nil {
		return after, 0, err
	}
	return last, rewritten, nil
}
