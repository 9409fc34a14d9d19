package rest_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/rest"
)

// Every malformed request is a 4xx OperationOutcome and stores nothing.
func TestBadInput(t *testing.T) {
	deep := strings.Repeat(`{"extension":[`, 40) + strings.Repeat(`]}`, 40)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		wantText                 string
	}{
		{"malformed JSON", "POST", "/Patient", `{"resourceType":"Patient",`, nil, 400, "not a FHIR JSON resource"},
		{"not an object", "POST", "/Patient", `[1,2]`, nil, 400, ""},
		{"trailing data", "POST", "/Patient", `{"resourceType":"Patient"} {}`, nil, 400, ""},
		{"duplicate key", "POST", "/Patient", `{"resourceType":"Patient","active":true,"active":false}`, nil, 400, "duplicate"},
		{"no resourceType", "POST", "/Patient", `{"active":true}`, nil, 400, "resourceType"},
		{"wrong resourceType for URL", "POST", "/Patient", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, nil, 400, "does not match"},
		{"unknown element", "POST", "/Patient", `{"resourceType":"Patient","favouriteColour":"blue"}`, nil, 400, "favouriteColour"},
		{"wrong primitive format", "POST", "/Patient", `{"resourceType":"Patient","birthDate":"01/02/1950"}`, nil, 400, "birthDate"},
		{"wrong primitive type", "POST", "/Patient", `{"resourceType":"Patient","active":"yes"}`, nil, 400, "active"},
		{"bad code", "POST", "/Patient", `{"resourceType":"Patient","gender":"F"}`, nil, 400, "gender"},
		{"missing required element", "POST", "/Observation", `{"resourceType":"Observation","code":{"text":"x"}}`, nil, 422, "status"},
		{"reference to a type not allowed", "POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Medication/1"}}`, nil, 422, "Medication"},
		{"too deep", "POST", "/Patient", `{"resourceType":"Patient",` + deep[1:], nil, 400, "nesting"},
		{"too large", "POST", "/Patient", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 5000) + `"}`, nil, 413, "limit"},
		{"empty body", "POST", "/Patient", ``, []string{"Content-Type", "application/fhir+json"}, 400, "empty"},
		{"no content type", "POST", "/Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", ""}, 415, "Content-Type"},
		{"xml content type", "POST", "/Patient", `<Patient/>`, []string{"Content-Type", "application/fhir+xml"}, 415, "not supported"},
		{"invalid id in body", "PUT", "/Patient/a", `{"resourceType":"Patient","id":"a b"}`, nil, 400, "id"},
		{"invalid id in URL", "PUT", "/Patient/a%20b", `{"resourceType":"Patient","id":"a b"}`, nil, 400, "id"},
		{"id mismatch", "PUT", "/Patient/a", `{"resourceType":"Patient","id":"b"}`, nil, 400, "does not match"},
		{"unknown type", "POST", "/Patiente", `{"resourceType":"Patiente"}`, nil, 404, "unknown resource type"},
		{"method not allowed", "DELETE", "/metadata", ``, nil, 405, ""},
		{"no route", "GET", "/Patient/a/b/c/d", ``, nil, 404, ""},
		{"bad _count", "GET", "/_history?_count=-1", ``, nil, 400, "_count"},
		{"bad _since", "GET", "/_history?_since=yesterday", ``, nil, 400, "_since"},
		{"bad _at", "GET", "/Patient/_history?_at=2026-13", ``, nil, 400, "_at"},
		{"bad cursor", "GET", "/_history?_cursor=!!", ``, nil, 400, "_cursor"},
		{"bundle of wrong type", "POST", "", `{"resourceType":"Bundle","type":"collection"}`, nil, 400, "batch or transaction"},
		{"not a bundle", "POST", "", `{"resourceType":"Patient"}`, nil, 400, "Bundle"},
		{"bundle entry without request", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`, nil, 400, "request"},
		{"unknown conditional criterion", "DELETE", "/Patient?shoe-size=9", ``, nil, 400, "shoe-size"},
		{"malformed search value", "GET", "/Patient?birthdate=yesterday", ``, nil, 400, "birthdate"},
		{"unknown parameter under handling=strict", "GET", "/Patient?shoe-size=9", ``, []string{"Prefer", "handling=strict"}, 400, "shoe-size"},
		{"bad search cursor", "GET", "/Patient?_cursor=zzz", ``, nil, 400, "_cursor"},
		// Cursors made by hand: a key of the wrong kind, or keys for another sort.
		{"cursor with a text key for a date sort", "GET", "/Patient?_sort=death-date&_cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"k":["x"],"i":"a"}`)), ``, nil, 400, "_cursor"},
		{"cursor with an object key", "GET", "/Patient?_sort=address-use&_cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"k":[{"a":1}],"i":"a"}`)), ``, nil, 400, "_cursor"},
		{"cursor for another sort", "GET", "/Patient?_cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"k":[1,2],"i":"a"}`)), ``, nil, 400, "_cursor"},
		{"bad _sort", "GET", "/Patient?_sort=shoe-size", ``, nil, 400, "_sort"},
		{"bad _include", "GET", "/Patient?_include=Patient:name", ``, nil, 400, "_include"},
		{"If-None-Exist for another type", "POST", "/Patient", `{"resourceType":"Patient"}`, []string{"If-None-Exist", "Observation?identifier=x"}, 400, "Observation"},
	}
	forEachEngine(t, func(c *rest.Config) { c.MaxBodyBytes = 4096; c.MaxDepth = 32 }, func(t *testing.T, g *gateway) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := g.do(tc.method, tc.path, tc.body, tc.headers...)
				expect(t, r, tc.status)
				if !strings.Contains(string(r.body), tc.wantText) {
					t.Errorf("OperationOutcome does not mention %q: %s", tc.wantText, r.body)
				}
			})
		}
		if n := g.versions(); n != 0 {
			t.Errorf("bad input stored %d versions", n)
		}
	})
}

// FuzzCreate: whatever a client sends to create, the answer is never a 5xx.
func FuzzCreate(f *testing.F) {
	for _, seed := range []string{patientBody, `{}`, `{"resourceType":"Patient","contained":[{"resourceType":"Patient"}]}`,
		`{"resourceType":"Patient","extension":[{"url":"x","valueQuantity":{"value":1e400}}]}`, `{"resourceType":"Patient","_birthDate":{"id":"x"}}`, "\x00", `{"resourceType":"Patient","name":[null]}`} {
		f.Add(seed)
	}
	g := start(f, f.TempDir()+"/fuzz.db", nil)
	f.Fuzz(func(t *testing.T, body string) {
		g.t = t
		r := g.do("POST", "/Patient", body, "Content-Type", "application/fhir+json")
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
	})
}

// FuzzSearch: whatever query string a client sends to search, the answer
// is never a 5xx.
func FuzzSearch(f *testing.F) {
	for _, seed := range []string{"family=smith", "death-date=ge2000&_sort=-death-date&_count=1", "_include=*&_revinclude=*", "subject:Patient.name=x",
		"_has:Observation:subject:code=1", "value-quantity=5||mg", "code-value-quantity=a|b$gt5", "_cursor=eyJrIjpbXSwiaSI6ImEifQ", "identifier:of-type=a|b|c",
		"code:in=http://x", "_total=accurate&_summary=count", "name:contains=%25_", "date=ap2020", "_lastUpdated=lt2030&_id=a,b"} {
		f.Add("Observation", seed)
	}
	g := start(f, f.TempDir()+"/fuzz.db", nil)
	g.t = f
	expectOK := func(r reply) bool { return r.status < 500 }
	g.do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","name":[{"family":"Smith"}],"birthDate":"2000-01-01"}`)
	g.do("PUT", "/Observation/o", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a"},"valueQuantity":{"value":5,"code":"mg"}}`)
	f.Fuzz(func(t *testing.T, typ, query string) {
		g.t = t
		if strings.ContainsAny(typ, "/?#% ") || typ == "" {
			return
		}
		if _, err := url.Parse("http://h/" + typ + "?" + query); err != nil {
			return // not a URL any client can send
		}
		r := g.do("GET", "/"+typ+"?"+query, "")
		if !expectOK(r) {
			t.Fatalf("GET /%s?%s: %d %s", typ, query, r.status, r.body)
		}
	})
}
