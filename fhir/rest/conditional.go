package rest

import (
	"context"
	"errors"
	"net/url"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// matchQuery finds the live resources of typ that meet the search criteria
// in q, for the conditional interactions (If-None-Exist, conditional
// update, patch and delete, conditional references; R4 3.1.0.8-10). The
// criteria are parsed strictly: an unknown or unsupported parameter would
// be ignored by a search and so widen the match, and a conditional delete or
// update would then touch resources the client did not mean. At most limit
// ids are returned (0: all).
func (s *Server) matchQuery(ctx context.Context, db store.Reader, typ string, q url.Values, limit int) ([]string, error) {
	sq, err := s.parseSearch(ctx, typ, q, true)
	if err != nil {
		return nil, err
	}
	if len(sq.Where) == 0 {
		return nil, outcome.New(outcome.Invalid, "conditional interaction without search criteria")
	}
	err = sq.ResolveValueSets(func(string) (search.ValueSetCodes, error) {
		return nil, errors.New("ValueSet modifiers are not supported in conditional criteria")
	})
	if err != nil {
		return nil, err
	}
	sq.Total = "none"
	sq.Count = limit
	if limit <= 0 {
		sq.Count = search.MaxCount
	}
	var ids []string
	for {
		res, err := db.Search(ctx, sq)
		if err != nil {
			return nil, err
		}
		for _, m := range res.Matches {
			ids = append(ids, m.ID)
		}
		if limit > 0 || res.Next == nil {
			return ids, nil
		}
		sq.Cursor = res.Next
	}
}

// lockCriteria serialises transactions that decide a conditional create or
// update on the same criteria, so two of them cannot both find no match
// and both create (store.Tx.LockCriteria). Outside a transaction (db is
// not a Tx) there is nothing to hold.
func lockCriteria(ctx context.Context, db store.Reader, typ string, q url.Values) error {
	tx, ok := db.(store.Tx)
	if !ok {
		return nil
	}
	return tx.LockCriteria(ctx, criteriaKey(typ, q))
}

// criteriaKey names the lock of a conditional interaction's criteria; the
// single and the batched paths (lookupConditionals) must agree on it.
func criteriaKey(typ string, q url.Values) string { return typ + "?" + q.Encode() }
