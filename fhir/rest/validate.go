package rest

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/promsgateway/gateway/conformance/strict"
	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
)

// checkResource verifies a request body is a valid R4 resource of type typ
// and returns it compacted with its id. Syntax problems (not JSON, unknown
// elements, wrong primitive formats) are 400; a parseable resource that
// breaks a rule of the specification (a required element missing, a
// reference to a type the element does not allow) is 422 (R4 3.1.0.4).
func (s *Server) checkResource(body []byte, typ string) ([]byte, string, error) {
	return s.readResource(body, typ, true)
}

// readResource is checkResource, without the strict check when strictly
// is false (for a body precheck already checked: only its ids differ).
func (s *Server) readResource(body []byte, typ string, strictly bool) ([]byte, string, error) {
	if err := resource.CheckDepth(body, s.cfg.MaxDepth); err != nil {
		return nil, "", outcome.New(outcome.Invalid, "%v", err)
	}
	compact, h, err := resource.ReadCompact(body)
	if err != nil {
		return nil, "", outcome.New(outcome.Invalid, "the body is not a FHIR JSON resource: %v", err)
	}
	if typ != "" && h.Type != typ {
		return nil, "", outcome.At(outcome.Invalid, "invalid", "resourceType", "resourceType %q does not match the URL's type %q", h.Type, typ)
	}
	if h.ID != "" && !resource.ValidID(h.ID) {
		return nil, "", outcome.At(outcome.Invalid, "value", h.Type+".id", "id %q is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)", h.ID)
	}
	if strictly {
		if err := strict.Check(compact); err != nil {
			return nil, "", validationError(err)
		}
	}
	return compact, h.ID, nil
}

// requestBody is the checked body of a create or update with its search
// index rows: prepared earlier, outside the transaction, or now.
func (s *Server) requestBody(ctx context.Context, r *Request) ([]byte, string, error) {
	if r.checked == nil {
		if err := s.prepareBody(ctx, r); err != nil {
			return nil, "", err
		}
	}
	return r.checked, r.checkedID, nil
}

// prepareBody checks r.Body and extracts its search index rows.
func (s *Server) prepareBody(ctx context.Context, r *Request) error {
	if err := s.checkBody(r, true); err != nil {
		return err
	}
	return s.blind(ctx, r)
}

// checkBody checks r.Body (strictly, unless precheck already did) and
// extracts its search index rows, still in plaintext: blind (or
// blindEntries) must follow before anything is written.
func (s *Server) checkBody(r *Request, strictly bool) error {
	checked, id, err := s.readResource(r.Body, r.Type, strictly)
	if err != nil {
		return err
	}
	r.checked, r.checkedID, r.index = checked, id, s.extractRows(r.Type, checked)
	return nil
}

// blind turns the identifying values of r's index rows into blind indexes.
func (s *Server) blind(ctx context.Context, reqs ...*Request) error {
	items := make([]search.Indexed, len(reqs))
	for i, r := range reqs {
		items[i] = search.Indexed{Type: r.Type, Rows: r.index}
	}
	if err := search.BlindAll(ctx, s.keys, items); err != nil {
		for _, r := range reqs {
			r.index = nil // never a plaintext row in a write
		}
		return storeError(err)
	}
	for i, r := range reqs {
		r.index = items[i].Rows
	}
	return nil
}

// extractRows extracts search index rows. A parameter whose expression
// fails on a valid resource is a fault of the server, not the client: it is
// logged and that parameter is not indexed for this resource.
func (s *Server) extractRows(typ string, body []byte) []search.Row {
	rows, errs := s.registry.Extract(typ, body)
	for _, err := range errs {
		s.log.Error("search index extraction failed", "type", typ, "error", err)
	}
	return rows
}

// indexRows extracts search index rows with blind indexes for the
// identifying parameters (search.BlindRows). Without the key service
// nothing is indexed, and so nothing is written: the error becomes a 503.
func (s *Server) indexRows(ctx context.Context, typ string, body []byte) ([]search.Row, error) {
	blind, err := search.BlindRows(ctx, s.keys, typ, s.extractRows(typ, body))
	if err != nil {
		return nil, storeError(err)
	}
	return blind, nil
}

// parseSearch parses search parameters and blinds the values of identifying
// parameters, so that they compare with the stored blind indexes.
func (s *Server) parseSearch(ctx context.Context, typ string, params url.Values, strict bool) (*search.Query, error) {
	q, err := s.registry.Parse(typ, params, strict)
	if err != nil {
		return nil, err
	}
	if err := q.Blind(ctx, s.keys); err != nil {
		return nil, storeError(err)
	}
	return q, nil
}

func validationError(err error) error {
	var ps strict.Problems
	if !errors.As(err, &ps) {
		return outcome.Wrap(outcome.Internal, err, "validation failed to run")
	}
	kind := outcome.Invalid
	if ps.Class() == strict.Rule {
		kind = outcome.Unprocessable
	}
	e := &outcome.Error{Kind: kind}
	for _, p := range ps {
		is := outcome.Issue{Severity: "error", Code: p.Code, Diagnostics: p.Message}
		if p.Path != "" {
			is.Expression = []string{p.Path}
		}
		e.Issues = append(e.Issues, is)
	}
	return e
}

var etagPattern = regexp.MustCompile(`^(W/)?"([0-9]+)"$`)

// ifMatch parses If-Match: W/"n" (R4 3.1.0.5). 0 means absent.
func ifMatch(r *Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, nil
	}
	m := etagPattern.FindStringSubmatch(v)
	if m == nil {
		return 0, outcome.New(outcome.Invalid, `If-Match %q is not a version ETag such as W/"3"`, v)
	}
	n, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil || n < 1 {
		return 0, outcome.New(outcome.Invalid, `If-Match %q is not a valid version`, v)
	}
	return n, nil
}

// parseVersion parses a version id from a URL.
func parseVersion(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, outcome.New(outcome.NotFound, "version %q does not exist (versions are 1, 2, 3, ...)", v)
	}
	return n, nil
}

func checkID(id string) error {
	if !resource.ValidID(id) {
		return outcome.New(outcome.Invalid, "%q is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)", id)
	}
	return nil
}
