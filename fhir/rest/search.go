package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/spec"
	"github.com/promsgateway/gateway/fhir/store"
)

// searchType: GET [base]/[type]?params and POST [base]/[type]/_search with
// a form body (R4 3.1.1). Unknown parameters are ignored and left out of
// the self link, or refused with Prefer: handling=strict; malformed values
// are 400 naming the parameter. Pages continue through an opaque keyset
// cursor, so they do not shift when data changes between them.
func (s *Server) searchType(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	params := r.Query
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "the _search body is not a form: %v", err)
		}
		params = mergeValues(r.Query, form)
	}
	strict := preferHandling(r.Header) == "strict"
	q, err := s.parseSearch(ctx, r.Type, params, strict)
	if err != nil {
		return nil, err
	}
	return s.searchBundle(ctx, db, r, q, params, r.Type)
}

// searchSystem: GET [base]?_type=...&params, a search across resource
// types with the parameters every resource has (_id, _lastUpdated, _tag,
// _profile, _security, _source). Without _type it searches every type.
func (s *Server) searchSystem(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	params := url.Values{}
	for k, v := range r.Query {
		if k != "_type" {
			params[k] = v
		}
	}
	q, err := s.parseSearch(ctx, "Resource", params, preferHandling(r.Header) == "strict")
	if err != nil {
		return nil, err
	}
	q.Type = ""
	if v := r.Query.Get("_type"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if _, ok := spec.Lookup(t); !ok {
				return nil, outcome.New(outcome.Invalid, "_type: %q is not an R4 resource type", t)
			}
			q.Types = append(q.Types, t)
		}
		q.Used.Set("_type", v)
	}
	if len(q.Sort) == 0 {
		q.Sort = []search.SortKey{{Code: "_type", Type: "token"}}
	}
	return s.searchBundle(ctx, db, r, q, r.Query, "")
}

// searchCompartment: GET [base]/Patient/[id]/[type]?params, a search
// limited to one patient's compartment as the official Patient
// CompartmentDefinition draws it (R4 3.1.1.2.3).
func (s *Server) searchCompartment(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	if r.Type != "Patient" {
		return nil, outcome.New(outcome.NotFound, "only the Patient compartment is supported, not %s", r.Type)
	}
	if !search.InPatientCompartment(r.Compartment) {
		return nil, outcome.New(outcome.NotFound, "%s is not a resource type of the Patient compartment", r.Compartment)
	}
	if err := checkID(r.ID); err != nil {
		return nil, outcome.New(outcome.NotFound, "%v", err)
	}
	q, err := s.parseSearch(ctx, r.Compartment, r.Query, preferHandling(r.Header) == "strict")
	if err != nil {
		return nil, err
	}
	q.Compartment = &search.Compartment{PatientID: r.ID}
	return s.searchBundle(ctx, db, r, q, r.Query, "Patient/"+r.ID+"/"+r.Compartment)
}

// everything: GET [base]/Patient/[id]/$everything with _since, _type and
// _count: the patient and every resource in its compartment, paged.
func (s *Server) everything(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	if r.Type != "Patient" {
		return nil, outcome.New(outcome.NotFound, "$everything is defined on Patient only here")
	}
	if err := checkID(r.ID); err != nil {
		return nil, outcome.New(outcome.NotFound, "%v", err)
	}
	if _, err := db.Read(ctx, "Patient", r.ID); err != nil {
		return nil, err
	}
	q := &search.Query{Types: search.PatientCompartmentTypes(), Compartment: &search.Compartment{PatientID: r.ID}, Count: search.DefaultCount,
		Sort: []search.SortKey{{Code: "_type", Type: "token"}, {Code: "_id", Type: "token"}}, Used: url.Values{}}
	if v := r.Query.Get("_type"); v != "" {
		q.Types = nil
		for _, t := range strings.Split(v, ",") {
			if !search.InPatientCompartment(t) {
				return nil, outcome.New(outcome.Invalid, "_type: %q is not a resource type of the Patient compartment", t)
			}
			q.Types = append(q.Types, t)
		}
		q.Used.Set("_type", v)
	}
	if v := r.Query.Get("_since"); v != "" {
		start, _, err := parseDateRange(v)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "_since=%q: %v", v, err)
		}
		q.Since = start.UnixMicro()
		q.Used.Set("_since", v)
	}
	if v := r.Query.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, outcome.New(outcome.Invalid, "_count=%q is not a positive integer", v)
		}
		q.Count = min(n, search.MaxCount)
		q.Used.Set("_count", strconv.Itoa(q.Count))
	}
	if v := r.Query.Get("_cursor"); v != "" {
		c, err := search.DecodeCursor(v)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "_cursor=%q is not a cursor this server issued", v)
		}
		q.Cursor = c
	}
	return s.searchBundle(ctx, db, r, q, r.Query, "Patient/"+r.ID+"/$everything")
}

// searchBundle runs q and renders the searchset Bundle; path is the
// search's path for the paging links.
func (s *Server) searchBundle(ctx context.Context, db store.Reader, r *Request, q *search.Query, params url.Values, path string) (*Response, error) {
	err := q.ResolveValueSets(func(canonical string) (search.ValueSetCodes, error) {
		return s.valueSetCodes(ctx, db, canonical)
	})
	if err != nil {
		return nil, err
	}
	summary := params.Get("_summary")
	switch summary {
	case "", "true", "false", "count", "data", "text":
	default:
		return nil, outcome.New(outcome.Invalid, "_summary=%s: use true, false, text, data or count", summary)
	}
	if summary == "count" {
		q.Count = 0
		q.Total = "accurate"
	}
	res, err := db.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	b := bundle{ResourceType: "Bundle", Type: "searchset", Meta: &bundleMeta{LastUpdated: resource.Instant(time.Now())}}
	if res.Total >= 0 {
		b.Total = &res.Total
	}
	self := q.Used
	for _, k := range []string{"_summary", "_elements", "_format", "_pretty"} {
		if v := params.Get(k); v != "" {
			self.Set(k, v)
		}
	}
	b.Link = append(b.Link, bundleLink{"self", linkURL(r.Base, path, self, "")})
	if res.Next != nil {
		b.Link = append(b.Link, bundleLink{"next", linkURL(r.Base, path, self, res.Next.Encode())})
	}
	add := func(m *store.Resource, mode string) error {
		body, err := searchView(m.Body, params, summary)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, bundleEntry{FullURL: r.Base + "/" + m.Type + "/" + m.ID, Resource: body, Search: &entrySearch{Mode: mode}})
		return nil
	}
	for _, m := range res.Matches {
		if err := add(m, "match"); err != nil {
			return nil, err
		}
	}
	for _, m := range res.Included {
		if err := add(m, "include"); err != nil {
			return nil, err
		}
	}
	if len(q.Ignored) > 0 {
		b.Entry = append(b.Entry, bundleEntry{Resource: outcome.OperationOutcome(outcome.Issue{Severity: "warning", Code: "not-supported",
			Diagnostics: "ignored unknown or unsupported search parameters: " + strings.Join(q.Ignored, ", ")}), Search: &entrySearch{Mode: "outcome"}})
	}
	return &Response{Status: http.StatusOK, Body: b.bytes()}, nil
}

// searchView applies _summary and _elements to a search result.
func searchView(body []byte, params url.Values, summary string) ([]byte, error) {
	switch summary {
	case "true":
		return resource.Summary(body)
	case "data":
		obj, err := resource.ParseObject(body)
		if err != nil {
			return nil, err
		}
		return obj.Delete("text").Bytes(), nil
	case "text":
		return resource.Elements(body, []string{"text"})
	}
	if el := params.Get("_elements"); el != "" {
		return resource.Elements(body, strings.Split(el, ","))
	}
	return body, nil
}

func mergeValues(a, b url.Values) url.Values {
	out := url.Values{}
	for k, v := range a {
		out[k] = append(out[k], v...)
	}
	for k, v := range b {
		out[k] = append(out[k], v...)
	}
	return out
}

// preferHandling is the Prefer: handling value (strict or lenient).
func preferHandling(h http.Header) string {
	for _, v := range h.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "handling") {
				return strings.TrimSpace(val)
			}
		}
	}
	return "lenient"
}

func linkURL(base, path string, params url.Values, cursor string) string {
	out := url.Values{}
	for k, v := range params {
		if k != "_cursor" {
			out[k] = v
		}
	}
	if cursor != "" {
		out.Set("_cursor", cursor)
	}
	u := base
	if path != "" {
		u += "/" + path
	}
	if len(out) > 0 {
		u += "?" + out.Encode()
	}
	return u
}
