package rest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// negotiate answers a lone media type without parsing it; the answers must
// be those of the parse, whatever the case and spacing.
func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		format, accept, want string // want "" is 406
	}{
		{"", "", fhirJSON},
		{"", "application/fhir+json", fhirJSON},
		{"", " APPLICATION/FHIR+JSON ", fhirJSON},
		{"", "application/json", "application/json"},
		{"", "Application/JSON", "application/json"},
		{"", "*/*", fhirJSON},
		{"", "application/*", fhirJSON},
		{"", "application/fhir+*", fhirJSON},
		{"", "application/fhir+xml", ""},
		{"", "text/html", ""},
		{"", "not a media type", ""},
		{"", "application/json; charset=utf-8", "application/json"},
		{"", "application/fhir+json;q=0", ""},
		{"", "application/fhir+xml, application/json;q=0.5", "application/json"},
		{"", "text/html;q=0.9, */*;q=0.8", fhirJSON},
		{"json", "application/fhir+xml", fhirJSON},
		{"application/json", "", "application/json"},
		{"xml", "application/fhir+json", ""},
	} {
		got, err := negotiate(tc.format, tc.accept)
		if tc.want == "" {
			if err == nil {
				t.Errorf("negotiate(%q, %q) = %q; want 406", tc.format, tc.accept, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("negotiate(%q, %q) = %q, %v; want %q", tc.format, tc.accept, got, err, tc.want)
		}
	}
}

// TestFactsWriter checks that the facts travel on the writer and that
// http.ResponseController reaches the connection through it.
func TestFactsWriter(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(requestID)
	e.GET("/x", func(c *gin.Context) {
		factsOf(c).interaction = "probe"
		if err := http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the facts writer: %v", err)
		}
		c.String(http.StatusOK, factsOf(c).interaction+" "+factsOf(c).requestID())
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
	req.Header.Set("X-Request-ID", "probe-1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "probe probe-1" || resp.Header.Get("X-Request-ID") != "probe-1" {
		t.Errorf("body %q, X-Request-ID %q", body, resp.Header.Get("X-Request-ID"))
	}
}
