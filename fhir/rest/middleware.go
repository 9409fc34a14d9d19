package rest

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promsgateway/gateway/fhir/outcome"
)

// Metrics are the Prometheus metrics of the FHIR API.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the API's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhir_requests_total",
			Help: "FHIR API requests by interaction, resource type and HTTP status.",
		}, []string{"interaction", "type", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fhir_request_duration_seconds",
			Help:    "FHIR API request latency by interaction and resource type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"interaction", "type"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// validRequestID accepts 1 to 128 of [A-Za-z0-9._:-], so an echoed id
// cannot inject anything into headers or logs.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// requestID echoes a well-formed X-Request-ID or makes one, and puts it on
// the response and in the logs.
func requestID(c *gin.Context) {
	id := headerValue(c.Request.Header, hRequestID)
	if !validRequestID(id) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(factsKey, &facts{id: id})
	c.Writer.Header()[hRequestID] = []string{id}
	c.Next()
}

// observe logs each request and records its metrics. The access line
// goes straight to the logger's handler: slog.Logger would look up its
// caller's program counter for a source the handler does not write.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	end := time.Now()
	elapsed := end.Sub(start)
	f := factsOf(c)
	interaction, typ := f.interaction, f.typ
	if interaction == "" {
		interaction = "other"
	}
	status := c.Writer.Status()
	if s.metrics != nil {
		s.metrics.requests.WithLabelValues(interaction, typ, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(interaction, typ).Observe(elapsed.Seconds())
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := c.Request.Context()
	h := s.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(end, level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", f.id),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("interaction", interaction),
		slog.String("type", typ),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
	)
	_ = h.Handle(ctx, r)
}

// recovery turns a panic into a 500 OperationOutcome and a log line; it is
// a last line of defence, never a way of handling input.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "panic", p, "request_id", factsOf(c).id, "path", c.Request.URL.Path)
			if !c.Writer.Written() {
				c.Data(http.StatusInternalServerError, fhirJSON+"; charset=utf-8", outcome.Resource(outcome.New(outcome.Internal, "internal error")))
			}
			c.Abort()
		}
	}()
	c.Next()
}
