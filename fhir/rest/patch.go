package rest

import (
	"context"
	"errors"
	"net/http"

	"github.com/promsgateway/gateway/fhir/jsonpatch"
	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/store"
)

// patch: PATCH [base]/[type]/[id] with a JSON Patch document (R4 3.1.0.7).
// The patched resource is validated like any other write before it is
// stored, and it may not change resourceType or id. The write is bound to
// the version the patch was applied to, so a concurrent update is never
// overwritten. PATCH [base]/[type]?criteria patches the single match.
func (s *Server) patch(ctx context.Context, tx store.Tx, r *Request) (*Response, error) {
	id := r.ID
	if id == "" {
		ids, err := s.matchQuery(ctx, tx, r.Type, r.Query, 2)
		if err != nil {
			return nil, err
		}
		switch len(ids) {
		case 0:
			return nil, outcome.New(outcome.NotFound, "no %s matches the criteria", r.Type)
		case 1:
			id = ids[0]
		default:
			return nil, outcome.New(outcome.PreconditionFailed, "the criteria match more than one %s; a conditional patch needs exactly one", r.Type)
		}
	} else if err := checkID(id); err != nil {
		return nil, err
	}
	if err := resource.CheckDepth(r.Body, s.cfg.MaxDepth); err != nil {
		return nil, outcome.New(outcome.Invalid, "%v", err)
	}
	cur, err := tx.Read(ctx, r.Type, id)
	if err != nil {
		return nil, err
	}
	if cur.Deleted {
		return nil, outcome.New(outcome.Gone, "%s/%s was deleted", r.Type, id)
	}
	ifm, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	if ifm != 0 && ifm != cur.Version {
		return nil, outcome.New(outcome.PreconditionFailed, "If-Match version %d is not the current version %d", ifm, cur.Version)
	}
	patched, err := jsonpatch.Apply(cur.Body, r.Body)
	if err != nil {
		var pe *jsonpatch.Error
		if errors.As(err, &pe) {
			return nil, outcome.New(outcome.Unprocessable, "the patch cannot be applied: %v", err)
		}
		return nil, outcome.New(outcome.Invalid, "the patch document is not valid JSON Patch: %v", err)
	}
	h, _, err := resource.ReadHeader(patched)
	if err != nil {
		return nil, outcome.New(outcome.Unprocessable, "the patched document is not a resource: %v", err)
	}
	if h.Type != r.Type || h.ID != id {
		return nil, outcome.New(outcome.Unprocessable, "a patch may not change resourceType or id")
	}
	body, _, err := s.checkResource(patched, r.Type)
	if err != nil {
		return nil, err
	}
	index, err := s.indexRows(ctx, r.Type, body)
	if err != nil {
		return nil, err
	}
	res, _, err := tx.Put(ctx, store.Write{Type: r.Type, ID: id, Body: body, Method: http.MethodPatch, IfMatch: cur.Version, MustExist: true, Index: index})
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Resource: res, Outcome: outcome.Information("patched %s", versionedPath(res))}, nil
}
