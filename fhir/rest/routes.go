package rest

import (
	"context"
	"net/http"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/spec"
	"github.com/promsgateway/gateway/fhir/store"
)

// level is where an interaction applies (R4 3.1.0: instance, type, system).
type level int

const (
	systemLevel level = iota
	typeLevel
	instanceLevel
)

// route is one FHIR interaction the server offers. The table below is the
// whole FHIR API: HTTP requests and Bundle entries are dispatched through it,
// and the CapabilityStatement is generated from it, so the two cannot
// disagree.
type route struct {
	// interaction is the CapabilityStatement code (TypeRestfulInteraction or
	// SystemRestfulInteraction).
	interaction string
	method      string
	// pattern is the path below the FHIR base; {type}, {id} and {vid} are
	// placeholders.
	pattern string
	level   level
	// conditional marks the conditional form of an interaction (criteria in
	// the query string instead of an id).
	conditional bool
	// read handlers run outside a transaction; write handlers inside one.
	read  func(s *Server, ctx context.Context, db store.Reader, r *Request) (*Response, error)
	write func(s *Server, ctx context.Context, tx store.Tx, r *Request) (*Response, error)
	// bundle marks the system batch/transaction endpoint, which manages its
	// own transactions.
	bundle bool
	// segments is pattern split on "/", computed once.
	segments []string
	// operation names the $operation a route serves.
	operation string
}

func (s *Server) routeTable() []route {
	routes := []route{
		{interaction: "capabilities", method: http.MethodGet, pattern: "metadata", level: systemLevel, read: (*Server).capabilities},
		{interaction: "history-system", method: http.MethodGet, pattern: "_history", level: systemLevel, read: (*Server).history},
		{interaction: "transaction", method: http.MethodPost, pattern: "", level: systemLevel, bundle: true},
		{interaction: "search-system", method: http.MethodGet, pattern: "", level: systemLevel, read: (*Server).searchSystem},
		{interaction: "history-type", method: http.MethodGet, pattern: "{type}/_history", level: typeLevel, read: (*Server).history},
		{interaction: "search-type", method: http.MethodGet, pattern: "{type}", level: typeLevel, read: (*Server).searchType},
		{interaction: "search-type", method: http.MethodPost, pattern: "{type}/_search", level: typeLevel, read: (*Server).searchType},
		{interaction: "create", method: http.MethodPost, pattern: "{type}", level: typeLevel, write: (*Server).create},
		{interaction: "update", method: http.MethodPut, pattern: "{type}", level: typeLevel, conditional: true, write: (*Server).update},
		{interaction: "patch", method: http.MethodPatch, pattern: "{type}", level: typeLevel, conditional: true, write: (*Server).patch},
		{interaction: "delete", method: http.MethodDelete, pattern: "{type}", level: typeLevel, conditional: true, write: (*Server).delete},
		{interaction: "read", method: http.MethodGet, pattern: "{type}/{id}", level: instanceLevel, read: (*Server).read},
		{interaction: "update", method: http.MethodPut, pattern: "{type}/{id}", level: instanceLevel, write: (*Server).update},
		{interaction: "patch", method: http.MethodPatch, pattern: "{type}/{id}", level: instanceLevel, write: (*Server).patch},
		{interaction: "delete", method: http.MethodDelete, pattern: "{type}/{id}", level: instanceLevel, write: (*Server).delete},
		{interaction: "history-instance", method: http.MethodGet, pattern: "{type}/{id}/_history", level: instanceLevel, read: (*Server).history},
		{interaction: "vread", method: http.MethodGet, pattern: "{type}/{id}/_history/{vid}", level: instanceLevel, read: (*Server).vread},
		{interaction: "search-compartment", method: http.MethodGet, pattern: "{type}/{id}/{compartment}", level: instanceLevel, read: (*Server).searchCompartment},
		{interaction: "operation", operation: "everything", method: http.MethodGet, pattern: "{type}/{id}/$everything", level: instanceLevel, read: (*Server).everything},
	}
	if s.reidentifier != nil {
		routes = append(routes, route{interaction: "operation", operation: "reidentify", method: http.MethodPost, pattern: "$reidentify", level: systemLevel, read: (*Server).reidentify})
	}
	for i := range routes {
		if routes[i].pattern != "" {
			routes[i].segments = strings.Split(routes[i].pattern, "/")
		}
	}
	return routes
}

// match finds the route for method and path (relative to the FHIR base,
// without query) and fills the request's Type, ID and VID. A path that fits
// a route under another method is 405; no fit is 404.
func (s *Server) match(method, path string, r *Request) (*route, error) {
	path = strings.Trim(path, "/")
	var buf [8]string
	segs := splitPath(buf[:0], path)
	shapeFits := false
	for i := range s.routes {
		rt := &s.routes[i]
		if len(rt.segments) != len(segs) {
			continue // before fit, which returns its placeholders by value
		}
		vals, ok := fit(rt.segments, segs)
		if !ok {
			continue
		}
		if rt.method != method {
			shapeFits = true
			continue
		}
		if vals.typ != "" {
			if _, known := spec.Lookup(vals.typ); !known {
				return nil, outcome.New(outcome.NotFound, "unknown resource type %q (not an R4 4.0.1 resource type)", vals.typ)
			}
			r.Type = vals.typ
		}
		r.ID, r.VID, r.Compartment = vals.id, vals.vid, vals.compartment
		return rt, nil
	}
	if shapeFits {
		return nil, outcome.New(outcome.MethodNotAllowed, "%s is not supported on /%s", method, path)
	}
	return nil, outcome.New(outcome.NotFound, "no FHIR interaction at /%s", path)
}

// splitPath appends the "/"-separated segments of path to segs, as
// strings.Split does but into the caller's array (no segments for "").
func splitPath(segs []string, path string) []string {
	if path == "" {
		return segs
	}
	for {
		seg, rest, found := strings.Cut(path, "/")
		segs = append(segs, seg)
		if !found {
			return segs
		}
		path = rest
	}
}

// fit matches path segments against a pattern. Literal segments must be
// equal; placeholders take any segment that is not a literal of another
// route at that place (an id never starts with "_" or "$").
func fit(pat, segs []string) (vals placeholders, ok bool) {
	if len(pat) != len(segs) {
		return vals, false
	}
	for i, p := range pat {
		seg := segs[i]
		if p[0] != '{' {
			if p != seg {
				return vals, false
			}
			continue
		}
		if seg == "" || seg[0] == '_' || seg[0] == '$' || (i == 0 && seg == "metadata") {
			return vals, false
		}
		switch p {
		case "{type}":
			vals.typ = seg
		case "{id}":
			vals.id = seg
		case "{vid}":
			vals.vid = seg
		case "{compartment}":
			vals.compartment = seg
		}
	}
	return vals, true
}

// placeholders are the values a path gave a pattern's placeholders.
type placeholders struct{ typ, id, vid, compartment string }
