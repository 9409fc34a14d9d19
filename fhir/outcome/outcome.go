// Package outcome carries FHIR errors through the gateway. An Error has a Kind
// and one or more OperationOutcome issues; Status is the one place where a
// Kind becomes an HTTP status (FHIR R4 RESTful API, section 3.1.0.4 "HTTP
// status codes"), and Resource the one place where an error becomes an
// OperationOutcome body.
package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error by what the client should do about it.
type Kind int

// The kinds of error the gateway reports. Each has exactly one HTTP status and
// one default OperationOutcome issue type (see kinds below).
const (
	Internal           Kind = iota // a fault of the gateway (500)
	Invalid                        // the request or its body could not be parsed or is not valid FHIR (400)
	Unprocessable                  // valid FHIR that breaks a rule of the specification or of this server (422)
	NotFound                       // no such resource or route (404)
	Gone                           // the resource was deleted (410)
	Conflict                       // the request conflicts with the server's state (409)
	PreconditionFailed             // If-Match or a conditional match failed (412)
	MethodNotAllowed               // the route exists but not for this method (405)
	NotAcceptable                  // no representation the client accepts (406)
	UnsupportedMedia               // the body's Content-Type is not FHIR JSON (415)
	TooLarge                       // the body exceeds the configured limit (413)
	Unavailable                    // a dependency (database, key service) is down (503)
	Forbidden                      // the caller may not do this (403)
	NotModified                    // If-None-Match or If-Modified-Since matched (304); not an error to the client
)

var kinds = map[Kind]struct {
	status int
	code   string
}{
	Internal:           {http.StatusInternalServerError, "exception"},
	Invalid:            {http.StatusBadRequest, "invalid"},
	Unprocessable:      {http.StatusUnprocessableEntity, "processing"},
	NotFound:           {http.StatusNotFound, "not-found"},
	Gone:               {http.StatusGone, "deleted"},
	Conflict:           {http.StatusConflict, "conflict"},
	PreconditionFailed: {http.StatusPreconditionFailed, "conflict"},
	MethodNotAllowed:   {http.StatusMethodNotAllowed, "not-supported"},
	NotAcceptable:      {http.StatusNotAcceptable, "not-supported"},
	UnsupportedMedia:   {http.StatusUnsupportedMediaType, "not-supported"},
	TooLarge:           {http.StatusRequestEntityTooLarge, "too-costly"},
	Unavailable:        {http.StatusServiceUnavailable, "transient"},
	Forbidden:          {http.StatusForbidden, "forbidden"},
	NotModified:        {http.StatusNotModified, "informational"},
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// Error is an error a FHIR client can see.
type Error struct {
	Kind   Kind
	Issues []Issue
	// Cause is kept for logs and never shown to the client.
	Cause error
}

func (e *Error) Error() string {
	msg := ""
	for i, is := range e.Issues {
		if i > 0 {
			msg += "; "
		}
		msg += is.Diagnostics
		if len(is.Expression) > 0 {
			msg += " (at " + is.Expression[0] + ")"
		}
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an Error of kind k with one error issue whose diagnostics are
// formatted from format and args.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Issues: []Issue{{Severity: "error", Code: kinds[k].code, Diagnostics: fmt.Sprintf(format, args...)}}}
}

// At returns an Error of kind k with one issue of type code at the FHIRPath
// expression path.
func At(k Kind, code, path, format string, args ...any) *Error {
	return &Error{Kind: k, Issues: []Issue{{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...), Expression: []string{path}}}}
}

// Wrap returns an Error of kind k whose client-visible diagnostics is msg and
// whose Cause (for logs only) is cause.
func Wrap(k Kind, cause error, msg string) *Error {
	e := New(k, "%s", msg)
	e.Cause = cause
	return e
}

// As returns the *Error in err's chain, or an Internal error wrapping err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(Internal, err, "internal error")
}

// Status is the HTTP status for err (500 for an error that is not an *Error).
func Status(err error) int {
	return kinds[As(err).Kind].status
}

// KindOf returns the Kind of err (Internal for an error that is not an *Error).
func KindOf(err error) Kind { return As(err).Kind }

// Resource renders err as an OperationOutcome resource.
func Resource(err error) []byte {
	return OperationOutcome(As(err).Issues...)
}

// OperationOutcome renders issues as an OperationOutcome resource.
func OperationOutcome(issues ...Issue) []byte {
	b, _ := json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		Issue        []Issue `json:"issue"`
	}{"OperationOutcome", issues})
	return b
}

// Information returns a single informational OperationOutcome, as used by
// Prefer: return=OperationOutcome for a successful write.
func Information(format string, args ...any) []byte {
	return OperationOutcome(Issue{Severity: "information", Code: "informational", Diagnostics: fmt.Sprintf(format, args...)})
}
