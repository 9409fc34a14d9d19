package rest

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// newID is the id the server assigns a new resource of type typ: random
// for the types that describe a person (Patient, RelatedPerson, Person),
// whose ids every reference to them carries, so that no Observation tells
// when its patient was registered; time-ordered for everything else
// (resource.NewID), which the database appends to its indexes.
func newID(typ string) string {
	if search.DescribesPerson(typ) {
		return resource.NewRandomID()
	}
	return resource.NewID()
}

// create: POST [base]/[type] (R4 3.1.0.6). The server assigns the id (an id
// in the body is ignored, as the specification requires) and answers 201
// with Location. With If-None-Exist (conditional create, 3.1.0.8) one match
// returns that resource with 200 and creates nothing, several are 412.
func (s *Server) create(ctx context.Context, tx store.Tx, r *Request) (*Response, error) {
	body, _, err := s.requestBody(ctx, r)
	if err != nil {
		return nil, err
	}
	id := r.assignedID
	if inx := r.Header.Get("If-None-Exist"); inx != "" && id == "" {
		existing, err := s.findExisting(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return &Response{Status: http.StatusOK, Resource: existing,
				Outcome: outcome.Information("a matching %s already exists; nothing was created", r.Type)}, nil
		}
	}
	if id == "" {
		id = newID(r.Type)
	}
	res, _, err := tx.Put(ctx, store.Write{Type: r.Type, ID: id, Body: body, Method: http.MethodPost, MustNotExist: true, NewID: true, Index: r.index})
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusCreated, Resource: res, Location: true,
		Outcome: outcome.Information("created %s", versionedPath(res))}, nil
}

// findExisting evaluates the If-None-Exist criteria of r: the match, nil
// for none, 412 for several. In a transaction the criteria may be locked
// and looked up already (lookupConditionals).
func (s *Server) findExisting(ctx context.Context, db store.Reader, r *Request) (*store.Resource, error) {
	typ := r.Type
	q, err := conditionQuery(typ, r.Header.Get("If-None-Exist"))
	if err != nil {
		return nil, err
	}
	if !r.criteriaLocked {
		if err := lockCriteria(ctx, db, typ, q); err != nil {
			return nil, err
		}
	}
	ids := r.matched
	if !r.matchedSet {
		if ids, err = s.matchQuery(ctx, db, typ, q, 2); err != nil {
			return nil, err
		}
	}
	switch len(ids) {
	case 0:
		return nil, nil
	case 1:
		return db.Read(ctx, typ, ids[0])
	}
	return nil, outcome.New(outcome.PreconditionFailed, "If-None-Exist matches more than one %s; the criteria are not selective enough", typ)
}

// conditionQuery parses the search part of If-None-Exist, which may be
// given as "identifier=..." or "[type]?identifier=...".
func conditionQuery(typ, header string) (url.Values, error) {
	header = strings.TrimSpace(header)
	if before, after, ok := strings.Cut(header, "?"); ok {
		if before != "" && before != typ && !strings.HasSuffix(before, "/"+typ) {
			return nil, outcome.New(outcome.Invalid, "If-None-Exist names type %q but the request creates a %s", before, typ)
		}
		header = after
	}
	q, err := url.ParseQuery(header)
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "If-None-Exist is not a valid query: %v", err)
	}
	return q, nil
}
