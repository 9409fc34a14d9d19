package rest

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
)

// facts are what the handlers of a request learn of it for the middleware
// (logs, metrics) and for the response. requestID puts them on the
// request's response writer (factsWriter), where a type assertion finds
// them: kept in the Gin context's map, the map's creation and lookups were
// 1.5% of a read's instructions.
type facts struct {
	// id is the request id, held as the X-Request-ID header's value.
	id          [1]string
	format      string // the negotiated media type, if any
	interaction string // the FHIR interaction, or a mount's name
	typ         string // the resource type, if any
}

// requestID returns the request id.
func (f *facts) requestID() string { return f.id[0] }

// factsWriter is a request's response writer with its facts.
type factsWriter struct {
	gin.ResponseWriter
	facts facts
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *factsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// factsOf returns the request's facts; outside requestID (tests of a
// handler alone) they are empty and kept nowhere.
func factsOf(c *gin.Context) *facts {
	if w, ok := c.Writer.(*factsWriter); ok {
		return &w.facts
	}
	return &facts{}
}

const fhirJSON = "application/fhir+json"

// negotiate picks the response media type from _format (which wins) or
// Accept (R4 3.1.0.1.10). Only JSON is served; asking for anything else
// only (XML, Turtle) is 406.
func negotiate(format, accept string) (string, error) {
	if format != "" {
		switch strings.ToLower(format) {
		case "json", fhirJSON, "application/json":
			if strings.EqualFold(format, "application/json") {
				return "application/json", nil
			}
			return fhirJSON, nil
		}
		return "", outcome.New(outcome.NotAcceptable, "_format %q is not supported; this server serves application/fhir+json", format)
	}
	switch accept {
	case fhirJSON, "*/*":
		// What nearly every client sends, answered before any parsing.
		return fhirJSON, nil
	case "application/json":
		return "application/json", nil
	}
	if strings.TrimSpace(accept) == "" {
		return fhirJSON, nil
	}
	if !strings.ContainsAny(accept, ",;") {
		// One media type without parameters, as most clients send: the
		// same answer as the parse below, without its allocations (a
		// parameter map a type), which were 1.5% of a read's CPU.
		switch strings.ToLower(strings.TrimSpace(accept)) {
		case fhirJSON, "*/*", "application/*", "application/fhir+*":
			return fhirJSON, nil
		case "application/json":
			return "application/json", nil
		}
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		switch mt {
		case fhirJSON, "*/*", "application/*", "application/fhir+*":
			return fhirJSON, nil
		case "application/json":
			return "application/json", nil
		}
	}
	return "", outcome.New(outcome.NotAcceptable, "none of the media types in Accept (%s) is served; this server serves application/fhir+json", accept)
}

// preferReturn is the return preference of a write (RFC 7240; R4 3.1.0.1.8).
func preferReturn(h http.Header) string {
	for _, v := range h.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "return") {
				return strings.Trim(strings.TrimSpace(val), `"`)
			}
		}
	}
	return "representation"
}

// write sends a successful response.
func (s *Server) write(c *gin.Context, req *Request, resp *Response) {
	if r := resp.Resource; r != nil {
		setVersionHeaders(c.Writer.Header(), req.Base, r, resp.Location)
	}
	body := resp.Body
	if body == nil && resp.Resource != nil {
		body = resp.Resource.Body
	}
	// Writes carry an Outcome; Prefer applies to them (a batch or
	// transaction applies it to its entries instead).
	if resp.Outcome != nil {
		switch preferReturn(req.Header) {
		case "minimal":
			body = nil
		case "OperationOutcome":
			body = resp.Outcome
			if body == nil {
				body = outcome.Information("%s succeeded", req.Method)
			}
		}
	}
	if resp.Status == http.StatusNotModified || resp.Status == http.StatusNoContent {
		body = nil
	}
	s.send(c, req, resp.Status, body)
}

func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// fail sends err as an OperationOutcome with its status.
func (s *Server) fail(c *gin.Context, req *Request, err error) {
	oe := outcome.As(err)
	status := outcome.Status(oe)
	if status >= 500 {
		s.log.ErrorContext(c.Request.Context(), "request failed", "error", err, "request_id", factsOf(c).requestID())
	}
	if oe.Kind == outcome.MethodNotAllowed {
		c.Header("Allow", s.allowed(c.Param("path")))
	}
	s.send(c, req, status, outcome.Resource(oe))
}

// allowed lists the methods routed at path, for the Allow header of a 405.
func (s *Server) allowed(path string) string {
	var methods []string
	seen := map[string]bool{}
	for _, rt := range s.routes {
		var r Request
		if _, err := s.match(rt.method, path, &r); err == nil && !seen[rt.method] {
			seen[rt.method] = true
			methods = append(methods, rt.method)
		}
	}
	return strings.Join(methods, ", ")
}

func (s *Server) send(c *gin.Context, req *Request, status int, body []byte) {
	if body == nil {
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	if req != nil && req.Query.Get("_pretty") == "true" {
		body = resource.Indent(body)
	}
	c.Writer.Header()[hContentType] = contentType(factsOf(c).format)
	c.Status(status)
	_, _ = c.Writer.Write(body) // a client gone away is not an error here
}

// marshal renders v as JSON without HTML escaping, so resource bytes inside
// Bundles (narrative XHTML above all) pass through unchanged.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("rest: marshal: " + err.Error()) // only fixed server types reach here
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
