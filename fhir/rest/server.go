// Package rest is the FHIR R4 RESTful API of the gateway (R4 section 3.1.0),
// served with Gin. routes.go lists every interaction; each has its own file.
// Handlers work on a Request and return a Response, so HTTP requests and the
// entries of batch and transaction Bundles go through the same code.
package rest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/vault"
)

// Config tunes the FHIR API.
type Config struct {
	// BaseURL is the public FHIR base (e.g. https://gw.example.nhs.uk/fhir);
	// empty means derive it from each request's Host.
	BaseURL string
	// MaxBodyBytes limits request bodies (413 beyond it).
	MaxBodyBytes int64
	// MaxDepth limits JSON nesting in request bodies (400 beyond it).
	MaxDepth int
	// UpdateCreate allows update (PUT) to create a resource with a
	// client-chosen id (CapabilityStatement updateCreate).
	UpdateCreate bool
	// ConditionalDeleteMultiple lets a conditional delete remove every match;
	// when false, more than one match is 412.
	ConditionalDeleteMultiple bool
	// MaxBundleEntries limits batch and transaction Bundles.
	MaxBundleEntries int
	// SoftwareVersion is reported in the CapabilityStatement.
	SoftwareVersion string
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:              16 << 20,
		MaxDepth:                  64,
		UpdateCreate:              true,
		ConditionalDeleteMultiple: true,
		MaxBundleEntries:          1000,
		SoftwareVersion:           "dev",
	}
}

// Server serves the FHIR API.
type Server struct {
	cfg      Config
	store    store.Store
	registry *search.Registry
	keys     search.Hasher
	// reidentifier, when set, serves $reidentify (EnableReidentify).
	reidentifier Reidentifier
	log          *slog.Logger
	metrics      *Metrics
	routes       []route
	mounts       []mount
	started      time.Time
	date         dateCache
	lastBase     atomic.Pointer[derivedBase]
}

// NewServer returns a Server over st. keys digests the identifying search
// values into blind indexes (the key holder that also seals st's bodies).
func NewServer(cfg Config, st store.Store, keys search.Hasher, log *slog.Logger, m *Metrics) *Server {
	s := &Server{cfg: cfg, store: st, registry: search.R4(), keys: keys, log: log, metrics: m, started: time.Now().UTC()}
	s.routes = s.routeTable()
	return s
}

// Request is one FHIR interaction, from HTTP or from a Bundle entry.
type Request struct {
	Method string
	// Type, ID and VID come from the matched route; Compartment is the
	// resource type of a compartment search.
	Type, ID, VID string
	Compartment   string
	// Query is the request's parameters, nil when it has none: read it,
	// never write to it.
	Query  url.Values
	Header http.Header
	Body   []byte
	// Base is the FHIR base URL used for absolute links.
	Base string

	// assignedID is the id a transaction decided in advance for a create.
	assignedID string
	// checked is Body after checkResource, when that ran before the
	// transaction; checkedID is the id it found in the body, and index its
	// search index rows.
	checked   []byte
	checkedID string
	index     []search.Row
	// criteriaLocked says the transaction holds the lock on this
	// conditional entry's criteria, or needs none because they already
	// matched; matched, when matchedSet, are the ids
	// its criteria matched, looked up with the transaction's other entries
	// (resolveIdentities).
	criteriaLocked bool
	matched        []string
	matchedSet     bool
	// generatedID says the id of a conditional update was generated because
	// nothing matched: the resource is new.
	generatedID bool
	// skipUnchanged makes an update that would store what is already
	// current (apart from id and meta) write nothing (Commit).
	skipUnchanged bool
}

// Response is the result of an interaction.
type Response struct {
	Status int
	// Resource is the version the interaction read or wrote, if any; it gives
	// ETag, Last-Modified and Location.
	Resource *store.Resource
	// Body is the response body: a resource, a Bundle or an OperationOutcome.
	// Nil means the Resource's body (or none).
	Body []byte
	// Location is set for creates.
	Location bool
	// Outcome, for writes, is what Prefer: return=OperationOutcome returns.
	Outcome []byte
	// Unchanged marks a write that wrote nothing: an update of a resource
	// already as sent (only with Request.skipUnchanged), or a conditional
	// create in a transaction that matched.
	Unchanged bool
}

// serveFHIR is the single Gin handler under the FHIR base.
func (s *Server) serveFHIR(c *gin.Context) {
	path := strings.TrimPrefix(c.Param("path"), "/")
	req := &Request{
		Method: c.Request.Method,
		Header: c.Request.Header,
		Base:   s.base(c.Request),
	}
	if c.Request.URL.RawQuery != "" {
		req.Query = c.Request.URL.Query()
	}
	format, err := negotiate(req.Query.Get("_format"), headerValue(c.Request.Header, hAccept))
	if err != nil {
		s.fail(c, req, err)
		return
	}
	f := factsOf(c)
	f.format = format
	rt, err := s.match(req.Method, path, req)
	if rt != nil {
		f.interaction, f.typ = rt.interaction, req.Type
	}
	if err != nil {
		s.fail(c, req, err)
		return
	}
	if hasBody(req.Method) {
		if req.Body, err = s.readBody(c, rt); err != nil {
			s.fail(c, req, err)
			return
		}
	}
	resp, err := s.run(c.Request.Context(), rt, req)
	if err != nil {
		s.fail(c, req, err)
		return
	}
	s.write(c, req, resp)
}

func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// run executes one routed request outside any transaction.
func (s *Server) run(ctx context.Context, rt *route, req *Request) (*Response, error) {
	switch {
	case rt.bundle:
		return s.bundle(ctx, req)
	case rt.read != nil:
		resp, err := rt.read(s, ctx, s.store, req)
		return resp, storeError(err)
	default:
		if rt.interaction == "create" || rt.interaction == "update" {
			// Check and index the body before taking any lock.
			if err := s.prepareBody(ctx, req); err != nil {
				return nil, err
			}
		}
		var resp *Response
		err := s.store.InTx(ctx, func(tx store.Tx) error {
			var err error
			resp, err = rt.write(s, ctx, tx, req)
			return err
		})
		return resp, storeError(err)
	}
}

// readBody reads a request body within the size limit, checking its media
// type: FHIR JSON for resources, JSON Patch for patch.
func (s *Server) readBody(c *gin.Context, rt *route) ([]byte, error) {
	ct := c.GetHeader("Content-Type")
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	want := []string{"application/fhir+json", "application/json"}
	switch rt.interaction {
	case "patch":
		want = []string{"application/json-patch+json"}
	case "search-type":
		want = []string{"application/x-www-form-urlencoded"}
	}
	ok := false
	for _, w := range want {
		ok = ok || mt == w
	}
	if !ok {
		if mt == "" {
			return nil, outcome.New(outcome.UnsupportedMedia, "Content-Type is missing; send %s", strings.Join(want, " or "))
		}
		return nil, outcome.New(outcome.UnsupportedMedia, "Content-Type %q is not supported here; send %s", mt, strings.Join(want, " or "))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, outcome.New(outcome.TooLarge, "request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes)
		}
		return nil, outcome.Wrap(outcome.Invalid, err, "could not read the request body")
	}
	if len(body) == 0 {
		return nil, outcome.New(outcome.Invalid, "request body is empty")
	}
	return body, nil
}

// base is the FHIR base URL for links in responses. Derived from the
// request, the last one made is kept: a gateway's clients nearly all
// reach it by one name.
func (s *Server) base(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return strings.TrimSuffix(s.cfg.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := headerValue(r.Header, hForwardedProto); p == "https" || p == "http" {
		scheme = p
	}
	if b := s.lastBase.Load(); b != nil && b.host == r.Host && b.scheme == scheme {
		return b.base
	}
	b := &derivedBase{scheme: scheme, host: r.Host, base: scheme + "://" + r.Host + "/fhir"}
	s.lastBase.Store(b)
	return b.base
}

// derivedBase is a base URL derived from a request's scheme and host.
type derivedBase struct{ scheme, host, base string }

// storeError turns store and key-service errors into client-visible ones.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var oe *outcome.Error
	switch {
	case errors.As(err, &oe):
		return err
	case errors.Is(err, store.ErrNotFound):
		return outcome.New(outcome.NotFound, "resource not found")
	case errors.Is(err, store.ErrVersionConflict):
		return outcome.New(outcome.PreconditionFailed, "the resource's current version does not match If-Match")
	case errors.Is(err, store.ErrExists):
		return outcome.New(outcome.Conflict, "a resource with this id already exists")
	case errors.Is(err, store.ErrBadCursor):
		return outcome.At(outcome.Invalid, "value", "_cursor", "the _cursor does not belong to this search (its sort differs)")
	case errors.Is(err, vault.ErrUnavailable):
		return outcome.Wrap(outcome.Unavailable, err, "the key service is unavailable; the request was not carried out and nothing was written")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return outcome.Wrap(outcome.Unavailable, err, "the request did not complete in time")
	}
	return outcome.Wrap(outcome.Internal, err, "internal error")
}
