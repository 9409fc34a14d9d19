package rest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/store"
)

// update: PUT [base]/[type]/[id] (R4 3.1.0.4). The body's id must equal the
// URL's. If-Match makes it a version-aware update (412 on mismatch). Where
// the resource does not exist the update creates it (201) if updateCreate is
// enabled. PUT [base]/[type]?criteria is the conditional update (3.1.0.9):
// no match creates, one match updates it, several are 412.
func (s *Server) update(ctx context.Context, tx store.Tx, r *Request) (*Response, error) {
	body, bodyID, err := s.requestBody(ctx, r)
	if err != nil {
		return nil, err
	}
	id := r.ID
	if id == "" {
		if id, err = s.conditionalTarget(ctx, tx, r, bodyID); err != nil {
			return nil, err
		}
	} else {
		if err := checkID(id); err != nil {
			return nil, err
		}
		if bodyID == "" {
			return nil, outcome.At(outcome.Invalid, "required", r.Type+".id", "the resource has no id; an update must carry the id of the URL (%s)", id)
		}
		if bodyID != id {
			return nil, outcome.At(outcome.Invalid, "invalid", r.Type+".id", "the resource's id %q does not match the URL's id %q", bodyID, id)
		}
	}
	ifm, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	if r.skipUnchanged && !r.generatedID {
		if cur, err := tx.Read(ctx, r.Type, id); err == nil && !cur.Deleted && (ifm == 0 || ifm == cur.Version) {
			// The body as the store would keep it, stamped like the current
			// version: equal bytes mean equal content.
			if same, err := resource.Stamp(body, cur.ID, cur.Version, cur.LastUpdated); err == nil && bytes.Equal(same, cur.Body) {
				return &Response{Status: http.StatusOK, Resource: cur, Unchanged: true,
					Outcome: outcome.Information("%s is unchanged; no version was written", versionedPath(cur))}, nil
			}
		}
	}
	w := store.Write{Type: r.Type, ID: id, Body: body, Method: http.MethodPut, IfMatch: ifm, MustExist: !s.cfg.UpdateCreate, Index: r.index,
		// A conditional update that matched nothing creates under an id the
		// server just generated: nothing can exist there to lock.
		NewID: r.generatedID && ifm == 0 && s.cfg.UpdateCreate}
	if strings.TrimSpace(r.Header.Get("If-None-Match")) == "*" {
		w.MustNotExist = true
	}
	res, created, err := tx.Put(ctx, w)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, outcome.New(outcome.MethodNotAllowed, "%s/%s does not exist and this server does not let update create resources (updateCreate is false)", r.Type, id)
	case errors.Is(err, store.ErrExists):
		return nil, outcome.New(outcome.PreconditionFailed, "If-None-Match: * but %s/%s exists", r.Type, id)
	case err != nil:
		return nil, err
	}
	if created {
		return &Response{Status: http.StatusCreated, Resource: res, Location: true,
			Outcome: outcome.Information("created %s", versionedPath(res))}, nil
	}
	return &Response{Status: http.StatusOK, Resource: res,
		Outcome: outcome.Information("updated %s", versionedPath(res))}, nil
}

// conditionalTarget resolves the id a conditional update writes to.
func (s *Server) conditionalTarget(ctx context.Context, db store.Reader, r *Request, bodyID string) (string, error) {
	if r.assignedID != "" {
		return r.assignedID, nil
	}
	r.generatedID = false // InTx may run this again
	if !r.criteriaLocked {
		if err := lockCriteria(ctx, db, r.Type, r.Query); err != nil {
			return "", err
		}
	}
	ids := r.matched
	if !r.matchedSet {
		var err error
		if ids, err = s.matchQuery(ctx, db, r.Type, r.Query, 2); err != nil {
			return "", err
		}
	}
	switch len(ids) {
	case 0:
		if bodyID != "" {
			return bodyID, nil
		}
		r.generatedID = true
		return newID(r.Type), nil
	case 1:
		if bodyID != "" && bodyID != ids[0] {
			return "", outcome.At(outcome.Invalid, "invalid", r.Type+".id", "the resource's id %q differs from the id %q the criteria matched", bodyID, ids[0])
		}
		return ids[0], nil
	}
	return "", outcome.New(outcome.PreconditionFailed, "the criteria match more than one %s; a conditional update needs exactly one", r.Type)
}
