package rest

import (
	"context"
	"net/http"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/store"
)

// delete: DELETE [base]/[type]/[id] (R4 3.1.0.7). Deleting adds a version
// without a body; later reads are 410. Deleting what is already gone or
// never existed succeeds with nothing to do. DELETE [base]/[type]?criteria is
// the conditional delete (3.1.0.10): every match is deleted when the server
// allows multiple deletes, otherwise more than one match is 412.
func (s *Server) delete(ctx context.Context, tx store.Tx, r *Request) (*Response, error) {
	ifm, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	ids := []string{r.ID}
	if r.ID == "" {
		limit := 2
		if s.cfg.ConditionalDeleteMultiple {
			limit = 0
		}
		if ids, err = s.matchQuery(ctx, tx, r.Type, r.Query, limit); err != nil {
			return nil, err
		}
		if len(ids) > 1 && !s.cfg.ConditionalDeleteMultiple {
			return nil, outcome.New(outcome.PreconditionFailed, "the criteria match more than one %s and this server deletes one at a time", r.Type)
		}
		if len(ids) > 1 && ifm != 0 {
			return nil, outcome.New(outcome.Invalid, "If-Match cannot apply to a conditional delete of several resources")
		}
	} else if err := checkID(r.ID); err != nil {
		return nil, err
	}
	resp := &Response{Status: http.StatusNoContent}
	deleted := 0
	for _, id := range ids {
		res, err := tx.Delete(ctx, r.Type, id, http.MethodDelete, ifm)
		if err != nil {
			return nil, err
		}
		if res != nil {
			deleted++
			resp.Resource = res
		}
	}
	if deleted != 1 {
		resp.Resource = nil // no single version to describe
	}
	resp.Outcome = outcome.Information("deleted %d %s resource(s)", deleted, r.Type)
	if preferReturn(r.Header) == "OperationOutcome" {
		resp.Status = http.StatusOK
	}
	return resp, nil
}
