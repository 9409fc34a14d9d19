package rest

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/store"
)

// read: GET [base]/[type]/[id] (R4 3.1.0.2). A deleted resource is 410;
// If-None-Match and If-Modified-Since give 304 when the client's copy is
// current; _summary=true and _elements return subsets.
func (s *Server) read(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	if err := checkID(r.ID); err != nil {
		return nil, outcome.New(outcome.NotFound, "%v", err)
	}
	res, err := db.Read(ctx, r.Type, r.ID)
	if err != nil {
		return nil, err
	}
	return s.serveVersion(res, r)
}

// serveVersion answers read and vread with one version.
func (s *Server) serveVersion(res *store.Resource, r *Request) (*Response, error) {
	if res.Deleted {
		return nil, &outcome.Error{Kind: outcome.Gone, Issues: []outcome.Issue{{
			Severity: "error", Code: "deleted",
			Diagnostics: "resource " + res.Type + "/" + res.ID + " was deleted (version " + strconv.FormatInt(res.Version, 10) + ")",
		}}}
	}
	if notModified(r, res) {
		return &Response{Status: http.StatusNotModified, Resource: res}, nil
	}
	body, err := view(res.Body, r)
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Resource: res, Body: body}, nil
}

// notModified implements the conditional read (R4 3.1.0.2.1).
func notModified(r *Request, res *store.Resource) bool {
	if inm := headerValue(r.Header, hIfNoneMatch); inm != "" {
		for _, tag := range strings.Split(inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(etag(res), "W/") {
				return true
			}
		}
		return false
	}
	if ims := headerValue(r.Header, hIfModifiedSince); ims != "" {
		t, err := http.ParseTime(ims)
		// HTTP dates have whole seconds: compare at that precision.
		return err == nil && !res.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

// view applies _summary and _elements (R4 3.1.1.5.8-9) to a resource.
func view(body []byte, r *Request) ([]byte, error) {
	switch sum := r.Query.Get("_summary"); sum {
	case "", "false":
	case "true":
		return resource.Summary(body)
	default:
		return nil, outcome.New(outcome.Invalid, "_summary=%s is not supported on read; use true or false", sum)
	}
	if el := r.Query.Get("_elements"); el != "" {
		return resource.Elements(body, strings.Split(el, ","))
	}
	return body, nil
}

// vread: GET [base]/[type]/[id]/_history/[vid] (R4 3.1.0.3).
func (s *Server) vread(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	if err := checkID(r.ID); err != nil {
		return nil, outcome.New(outcome.NotFound, "%v", err)
	}
	v, err := parseVersion(r.VID)
	if err != nil {
		return nil, err
	}
	res, err := db.VRead(ctx, r.Type, r.ID, v)
	if err != nil {
		return nil, err
	}
	return s.serveVersion(res, r)
}
