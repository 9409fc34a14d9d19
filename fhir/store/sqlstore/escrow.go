package sqlstore

import (
	"context"
	"fmt"
	"sort"
)

// Escrows returns the re-identification escrows held for pseudonyms of
// domain (vault/pseudonym.EscrowStore).
func (s *Store) Escrows(ctx context.Context, domain string, pseudonyms []string) (map[string]string, error) {
	out := make(map[string]string, len(pseudonyms))
	const chunk = 500
	for start := 0; start < len(pseudonyms); start += chunk {
		part := pseudonyms[start:min(start+chunk, len(pseudonyms))]
		args := []any{domain}
		for _, p := range part {
			args = append(args, p)
		}
		rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT pseudonym, escrow FROM pseudonym_escrow WHERE domain = ? AND pseudonym IN (`+placeholders(len(part))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("escrows: %w", err)
		}
		for rows.Next() {
			var p, e string
			if err := rows.Scan(&p, &e); err != nil {
				rows.Close()
				return nil, err
			}
			out[p] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PutEscrows records escrows, keeping any already held (the first escrow of
// a pseudonym stays; a replica racing to record the same one changes
// nothing).
func (s *Store) PutEscrows(ctx context.Context, domain string, escrows map[string]string) error {
	keys := make([]string, 0, len(escrows))
	for p := range escrows {
		keys = append(keys, p)
	}
	sort.Strings(keys) // a stable lock order between concurrent writers
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := s.d.rebind(`INSERT INTO pseudonym_escrow (domain, pseudonym, escrow) VALUES (?, ?, ?) ON CONFLICT (domain, pseudonym) DO NOTHING`)
	for _, p := range keys {
		if _, err := tx.ExecContext(ctx, q, domain, p, escrows[p]); err != nil {
			return fmt.Errorf("put escrows: %w", err)
		}
	}
	return tx.Commit()
}
