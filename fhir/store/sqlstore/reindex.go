package sqlstore

import (
	"context"
	"fmt"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// reindexBatch is how many resources one reindex transaction covers.
const reindexBatch = 200

// Reindex implements store.Store. It walks resource_current in (type, id)
// order, so an interrupted run can simply be started again.
func (s *Store) Reindex(ctx context.Context, index func(ctx context.Context, typ string, body []byte) ([]search.Row, error), progress func(done, total int)) error {
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource_current WHERE deleted = 0 AND version > 0`).Scan(&total); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	done := 0
	lastType, lastID := "", ""
	for {
		rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT type, id FROM resource_current
			WHERE deleted = 0 AND version > 0 AND (type > ? OR (type = ? AND id > ?)) ORDER BY type, id LIMIT ?`), lastType, lastType, lastID, reindexBatch)
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		var batch [][2]string
		for rows.Next() {
			var t, id string
			if err := rows.Scan(&t, &id); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, [2]string{t, id})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		// Index outside the transaction: index may call the key service
		// (blind indexes), and no lock should wait on it.
		type indexed struct {
			version int64
			rows    []search.Row
		}
		prepared := make([]*indexed, len(batch))
		for i, k := range batch {
			res, err := s.Read(ctx, k[0], k[1])
			if err == store.ErrNotFound {
				continue // deleted since the batch was listed
			}
			if err != nil {
				return fmt.Errorf("reindex: %w", err)
			}
			if res.Deleted {
				continue
			}
			rows, err := index(ctx, res.Type, res.Body)
			if err != nil {
				return fmt.Errorf("reindex %s/%s: %w", res.Type, res.ID, err)
			}
			prepared[i] = &indexed{res.Version, rows}
		}
		err = s.InTx(ctx, func(st store.Tx) error {
			t := st.(*tx)
			for i, k := range batch {
				if prepared[i] == nil {
					continue
				}
				res, err := t.Read(ctx, k[0], k[1])
				if err == store.ErrNotFound {
					continue
				}
				if err != nil {
					return err
				}
				if res.Deleted || res.Version != prepared[i].version {
					continue // written since: that write indexed it
				}
				if err := t.index(ctx, res, prepared[i].rows, true); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		done += len(batch)
		lastType, lastID = batch[len(batch)-1][0], batch[len(batch)-1][1]
		if progress != nil {
			progress(done, total)
		}
	}
}
