package rest

import (
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promsgateway/gateway/fhir/outcome"
)

// Metrics are the Prometheus metrics of the FHIR API.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series holds each label combination's counter and histogram once
	// looked up (seriesKey to *series): the label hashing and checks of
	// WithLabelValues were 2% of a read. Interactions, resource types (R4's,
	// checked before they are recorded) and statuses are bounded sets.
	series sync.Map
}

type seriesKey struct {
	interaction, typ string
	status           int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
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

// observe counts a request and records its latency.
func (m *Metrics) observe(interaction, typ string, status int, elapsed time.Duration) {
	k := seriesKey{interaction, typ, status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &series{
			requests: m.requests.WithLabelValues(interaction, typ, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(interaction, typ),
		})
	}
	se := v.(*series)
	se.requests.Inc()
	se.duration.Observe(elapsed.Seconds())
}

// dateCache makes a response's Date header once a second rather than once
// a response, as net/http would (with time.Format, 2% of a read).
type dateCache struct {
	cur atomic.Pointer[dateValue]
}

type dateValue struct {
	sec   int64
	value []string
}

// at returns the Date header value for now. Header values are replaced,
// never written in place, so every response of a second shares one.
func (d *dateCache) at(now time.Time) []string {
	sec := now.Unix()
	if v := d.cur.Load(); v != nil && v.sec == sec {
		return v.value
	}
	v := &dateValue{sec: sec, value: []string{string(appendHTTPDate(nil, now))}}
	d.cur.Store(v)
	return v.value
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

// newRequestID makes a request id of 96 random bits in 24 hex digits. An id
// need be unique, not secret: math/rand's generator (ChaCha8, seeded by the
// system) is as unlikely to repeat as crypto/rand, without its buffer
// escaping to the heap on every request.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var h [24]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// requestID echoes a well-formed X-Request-ID or makes one, and puts it on
// the response and, with the request's other facts, on its writer.
func requestID(c *gin.Context) {
	w := &factsWriter{ResponseWriter: c.Writer}
	id := headerValue(c.Request.Header, hRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.facts.id[0] = id
	w.Header()[hRequestID] = w.facts.id[:]
	c.Writer = w
	c.Next()
}

// observe logs each request and records its metrics, and gives the
// response its Date. The access line goes straight to the logger's
// handler: slog.Logger would look up its caller's program counter for a
// source the handler does not write.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Writer.Header()[hDate] = s.date.at(start)
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
		s.metrics.observe(interaction, typ, status, elapsed)
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
		slog.String("request_id", f.requestID()),
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
			s.log.Error("panic serving request", "panic", p, "request_id", factsOf(c).requestID(), "path", c.Request.URL.Path)
			if !c.Writer.Written() {
				c.Data(http.StatusInternalServerError, fhirJSON+"; charset=utf-8", outcome.Resource(outcome.New(outcome.Internal, "internal error")))
			}
			c.Abort()
		}
	}()
	c.Next()
}
