package rest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkServe measures the server side of each interaction without the
// network: the handler is called directly.
func BenchmarkServe(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			h := start(b, e.dsn(b), nil).handler
			var ids []string
			for i := 0; i < 200; i++ {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader(patientBody))
				req.Header.Set("Content-Type", "application/fhir+json")
				h.ServeHTTP(rec, req)
				loc := rec.Header().Get("Location")
				ids = append(ids, strings.Split(strings.SplitN(loc, "/Patient/", 2)[1], "/")[0])
			}
			b.Run("read", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", "/fhir/Patient/"+ids[i%len(ids)], nil))
					if rec.Code != http.StatusOK {
						b.Fatal(rec.Code)
					}
				}
			})
			b.Run("create", func(b *testing.B) {
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader(patientBody))
					req.Header.Set("Content-Type", "application/fhir+json")
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusCreated {
						b.Fatal(rec.Code)
					}
				}
			})
			tx := `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":` + patientBody + `,"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Observation","status":"final","code":{"text":"OHS"},"subject":{"reference":"urn:uuid:1"},"valueInteger":42},"request":{"method":"POST","url":"Observation"}}]}`
			b.Run("transaction", func(b *testing.B) {
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("POST", "/fhir", strings.NewReader(tx))
					req.Header.Set("Content-Type", "application/fhir+json")
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatal(rec.Code, rec.Body.String())
					}
				}
			})
		})
	}
}
