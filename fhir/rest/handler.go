package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/promsgateway/gateway/fhir/outcome"
)

// Check is a named readiness check (database, key service).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Mount serves h at method and path beside the FHIR API (the internal
// records API), behind the same request ids, logs, metrics (interaction
// label name) and panic recovery. Call it before Handler.
func (s *Server) Mount(method, path, name string, h http.Handler) {
	s.mounts = append(s.mounts, mount{method, path, name, h})
}

// mount is a route outside the FHIR API.
type mount struct {
	method, path, name string
	h                  http.Handler
}

// Handler returns the gateway's HTTP handler: the FHIR API under /fhir,
// /healthz (the process is up), /readyz (every check passes) and /metrics.
func (s *Server) Handler(metrics http.Handler, checks ...Check) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = false
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.Use(requestID, s.recovery, s.observe)

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
		defer cancel()
		report, ok := gin.H{}, true
		for _, ch := range checks {
			if err := ch.Fn(ctx); err != nil {
				report[ch.Name] = err.Error()
				ok = false
			} else {
				report[ch.Name] = "ok"
			}
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, report)
	})
	if metrics != nil {
		e.GET("/metrics", gin.WrapH(metrics))
	}
	for _, m := range s.mounts {
		e.Handle(m.method, m.path, func(c *gin.Context) {
			factsOf(c).interaction = m.name
			m.h.ServeHTTP(c.Writer, c.Request)
		})
	}
	e.Any("/fhir", s.serveFHIR)
	e.Any("/fhir/*path", s.serveFHIR)
	e.NoRoute(func(c *gin.Context) {
		c.Data(http.StatusNotFound, fhirJSON+"; charset=utf-8",
			outcome.Resource(outcome.New(outcome.NotFound, "nothing at %s; the FHIR API is under /fhir", c.Request.URL.Path)))
	})
	return e
}
