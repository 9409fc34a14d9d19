package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
	"github.com/promsgateway/gateway/vault/pseudonym"
)

// gateway is a real server on a loopback port over a real database.
type gateway struct {
	t       testing.TB
	url     string // FHIR base
	store   store.Store
	handler http.Handler
	// pseudonyms shares the gateway's keys and store (for $reidentify).
	pseudonyms *pseudonym.Service
	// srv is the server, for what callers inside the gateway use (Commit).
	srv *rest.Server
}

type engine struct {
	name string
	dsn  func(t testing.TB) string
}

var engines = []engine{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "gateway.db") }},
	{"postgres", func(t testing.TB) string { return storetest.PostgresDSN(t) }},
}

// forEachEngine runs fn against a fresh gateway on SQLite and on PostgreSQL.
func forEachEngine(t *testing.T, cfg func(*rest.Config), fn func(t *testing.T, g *gateway)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, start(t, e.dsn(t), cfg)) })
	}
}

func start(t testing.TB, dsn string, cfg func(*rest.Config)) *gateway {
	return startSealed(t, dsn, cfg, nil)
}

// startSealed is start with another body sealer than the envelope (nil:
// the envelope over the development keystore).
func startSealed(t testing.TB, dsn string, cfg func(*rest.Config), seal sqlstore.Sealer) *gateway {
	t.Helper()
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "keys.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if seal == nil {
		seal = vault.NewEnvelope(ks)
	}
	st, err := sqlstore.Open(context.Background(), dsn, seal)
	if err != nil {
		t.Fatal(err)
	}
	c := rest.DefaultConfig()
	if cfg != nil {
		cfg(&c)
	}
	reg := prometheus.NewRegistry()
	logOut := io.Discard
	if os.Getenv("GATEWAY_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	srv := rest.NewServer(c, st, ks, slog.New(slog.NewTextHandler(logOut, nil)), rest.NewMetrics(reg))
	svc := pseudonym.New(ks, st)
	srv.EnableReidentify(svc)
	h := srv.Handler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), rest.Check{Name: "database", Fn: st.Ping})
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); st.Close() })
	return &gateway{t: t, url: hs.URL + "/fhir", store: st, handler: h, pseudonyms: svc, srv: srv}
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
	return m
}

// do sends a request; headers are name, value pairs.
func (g *gateway) do(method, path, body string, headers ...string) reply {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// expect checks the status and, for errors, that the body is an
// OperationOutcome.
func expect(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d; want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		if rt := r.json(t)["resourceType"]; rt != "OperationOutcome" {
			t.Fatalf("error body is a %v, not an OperationOutcome: %s", rt, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("error Content-Type %q", ct)
		}
	}
}

// versions is how many versions the whole store holds.
func (g *gateway) versions() int {
	g.t.Helper()
	p, err := g.store.History(context.Background(), store.HistoryQuery{Count: 1})
	if err != nil {
		g.t.Fatal(err)
	}
	return p.Total
}

func field(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

const patientBody = `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"family":"Smith","given":["Jane"]}],"gender":"female","birthDate":"1950-02-01"}`

func TestCreateReadUpdateDelete(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		r := g.do("POST", "/Patient", patientBody)
		expect(t, r, 201)
		loc := r.header.Get("Location")
		if !strings.HasPrefix(loc, g.url+"/Patient/") || !strings.HasSuffix(loc, "/_history/1") {
			t.Fatalf("Location %q", loc)
		}
		if r.header.Get("ETag") != `W/"1"` || r.header.Get("Last-Modified") == "" {
			t.Errorf("ETag %q Last-Modified %q", r.header.Get("ETag"), r.header.Get("Last-Modified"))
		}
		created := r.json(t)
		id := created["id"].(string)
		if field(created, "meta", "versionId") != "1" || field(created, "meta", "lastUpdated") == nil {
			t.Errorf("meta not maintained: %s", r.body)
		}

		read := g.do("GET", "/Patient/"+id, "")
		expect(t, read, 200)
		if !bytes.Equal(read.body, r.body) {
			t.Errorf("read differs from what create returned:\n%s\n%s", read.body, r.body)
		}
		if read.header.Get("Content-Location") != loc {
			t.Errorf("Content-Location %q; want %q", read.header.Get("Content-Location"), loc)
		}

		upd := strings.Replace(patientBody, `"resourceType":"Patient"`, `"resourceType":"Patient","id":"`+id+`"`, 1)
		upd = strings.Replace(upd, "Jane", "Janet", 1)
		u := g.do("PUT", "/Patient/"+id, upd)
		expect(t, u, 200)
		if u.header.Get("ETag") != `W/"2"` {
			t.Errorf("update ETag %q", u.header.Get("ETag"))
		}
		expect(t, g.do("PUT", "/Patient/"+id, upd, "If-Match", `W/"1"`), 412)
		expect(t, g.do("PUT", "/Patient/"+id, upd, "If-Match", `W/"2"`), 200)
		expect(t, g.do("PUT", "/Patient/"+id, upd, "If-Match", `three`), 400)

		v1 := g.do("GET", "/Patient/"+id+"/_history/1", "")
		expect(t, v1, 200)
		if !bytes.Contains(v1.body, []byte(`"Jane"`)) {
			t.Errorf("vread 1: %s", v1.body)
		}
		expect(t, g.do("GET", "/Patient/"+id+"/_history/9", ""), 404)
		expect(t, g.do("GET", "/Patient/"+id+"/_history/x", ""), 404)

		expect(t, g.do("GET", "/Patient/"+id, "", "If-None-Match", `W/"3"`), 304)
		expect(t, g.do("GET", "/Patient/"+id, "", "If-None-Match", `W/"2"`), 200)
		expect(t, g.do("GET", "/Patient/"+id, "", "If-Modified-Since", "Mon, 01 Jan 2000 00:00:00 GMT"), 200)
		expect(t, g.do("GET", "/Patient/"+id, "", "If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"), 304)

		d := g.do("DELETE", "/Patient/"+id, "")
		expect(t, d, 204)
		expect(t, g.do("GET", "/Patient/"+id, ""), 410)
		expect(t, g.do("DELETE", "/Patient/"+id, ""), 204) // idempotent
		expect(t, g.do("GET", "/Patient/nothere", ""), 404)

		h := g.do("GET", "/Patient/"+id+"/_history", "")
		expect(t, h, 200)
		hb := h.json(t)
		if hb["type"] != "history" || hb["total"] != float64(4) {
			t.Errorf("history: %s", h.body)
		}
		entries := hb["entry"].([]any)
		first := entries[0].(map[string]any)
		if field(first, "request", "method") != "DELETE" || first["resource"] != nil {
			t.Errorf("newest history entry should be the delete: %v", first)
		}
		last := entries[3].(map[string]any)
		if field(last, "request", "method") != "POST" || field(last, "response", "status") != "201 Created" {
			t.Errorf("oldest history entry should be the create: %v", last)
		}
	})
}

func TestUpdateAsCreate(t *testing.T) {
	body := `{"resourceType":"Patient","id":"client-chosen","active":true}`
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		r := g.do("PUT", "/Patient/client-chosen", body)
		expect(t, r, 201)
		if r.header.Get("Location") == "" {
			t.Error("update-as-create without Location")
		}
		expect(t, g.do("PUT", "/Patient/client-chosen", body), 200)
		expect(t, g.do("PUT", "/Patient/other", body), 400)                                       // id mismatch
		expect(t, g.do("PUT", "/Patient/other", `{"resourceType":"Patient","active":true}`), 400) // id missing
		expect(t, g.do("PUT", "/Patient/new-one", `{"resourceType":"Patient","id":"new-one"}`, "If-None-Match", "*"), 201)
		expect(t, g.do("PUT", "/Patient/new-one", `{"resourceType":"Patient","id":"new-one"}`, "If-None-Match", "*"), 412)
	})
	forEachEngine(t, func(c *rest.Config) { c.UpdateCreate = false }, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/client-chosen", body), 405)
		if g.versions() != 0 {
			t.Error("refused update-as-create stored something")
		}
	})
}

func TestConditionalInteractions(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		ident := "https://fhir.nhs.uk/Id/nhs-number|9000000009"
		first := g.do("POST", "/Patient", patientBody, "If-None-Exist", "identifier="+ident)
		expect(t, first, 201)
		id := first.json(t)["id"].(string)
		again := g.do("POST", "/Patient", patientBody, "If-None-Exist", "identifier="+ident)
		expect(t, again, 200)
		if again.json(t)["id"] != id || g.versions() != 1 {
			t.Errorf("conditional create with a match created something")
		}
		expect(t, g.do("POST", "/Patient", patientBody, "If-None-Exist", "shoe-size=9"), 400) // unknown criterion
		expect(t, g.do("POST", "/Patient", patientBody), 201)                                 // a second, unconditionally
		expect(t, g.do("POST", "/Patient", patientBody, "If-None-Exist", "identifier="+ident), 412)

		// Conditional update: no match creates, one match updates, several 412.
		other := `{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"u1"}],"active":true}`
		c := g.do("PUT", "/Patient?identifier=urn:x|u1", other)
		expect(t, c, 201)
		oid := c.json(t)["id"].(string)
		u := g.do("PUT", "/Patient?identifier=urn:x|u1", strings.Replace(other, "true", "false", 1))
		expect(t, u, 200)
		if u.json(t)["id"] != oid {
			t.Errorf("conditional update touched another resource")
		}
		expect(t, g.do("PUT", "/Patient?identifier="+ident, patientBody), 412)
		expect(t, g.do("PUT", "/Patient", patientBody), 400) // no criteria

		// Conditional patch on the single match.
		p := g.do("PATCH", "/Patient?identifier=urn:x|u1", `[{"op":"replace","path":"/active","value":true}]`, "Content-Type", "application/json-patch+json")
		expect(t, p, 200)

		// Conditional delete removes every match (multiple allowed by default).
		expect(t, g.do("DELETE", "/Patient?identifier="+ident, ""), 204)
		if r := g.do("GET", "/Patient?identifier=9000000009", ""); r.json(t)["total"] != float64(0) {
			t.Errorf("conditional delete left %s", r.body)
		}
		expect(t, g.do("DELETE", "/Patient", ""), 400) // no criteria: never "delete everything"
	})
	forEachEngine(t, func(c *rest.Config) { c.ConditionalDeleteMultiple = false }, func(t *testing.T, g *gateway) {
		expect(t, g.do("POST", "/Patient", patientBody), 201)
		expect(t, g.do("POST", "/Patient", patientBody), 201)
		expect(t, g.do("DELETE", "/Patient?identifier=9000000009", ""), 412)
	})
}

func TestPatch(t *testing.T) {
	jp := "application/json-patch+json"
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/p", `{"resourceType":"Patient","id":"p","active":true,"gender":"female"}`), 201)
		r := g.do("PATCH", "/Patient/p", `[{"op":"test","path":"/gender","value":"female"},{"op":"replace","path":"/active","value":false}]`, "Content-Type", jp)
		expect(t, r, 200)
		if !bytes.Contains(r.body, []byte(`"active":false`)) || r.header.Get("ETag") != `W/"2"` {
			t.Errorf("patched: %s %v", r.body, r.header)
		}
		before := g.versions()
		tests := []struct {
			name, patch string
			headers     []string
			status      int
		}{
			{"test op fails", `[{"op":"test","path":"/gender","value":"male"}]`, nil, 422},
			{"invalid result", `[{"op":"replace","path":"/gender","value":"robot"}]`, nil, 400},
			{"unknown element", `[{"op":"add","path":"/colour","value":"blue"}]`, nil, 400},
			{"changes id", `[{"op":"replace","path":"/id","value":"q"}]`, nil, 422},
			{"not a patch", `{"op":"add"}`, nil, 400},
			{"stale If-Match", `[{"op":"replace","path":"/active","value":true}]`, []string{"If-Match", `W/"1"`}, 412},
			{"wrong content type", `[{"op":"replace","path":"/active","value":true}]`, []string{"Content-Type", "application/fhir+json"}, 415},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				h := append([]string{"Content-Type", jp}, tc.headers...)
				expect(t, g.do("PATCH", "/Patient/p", tc.patch, h...), tc.status)
			})
		}
		if g.versions() != before {
			t.Errorf("failed patches stored %d versions", g.versions()-before)
		}
		expect(t, g.do("PATCH", "/Patient/missing", `[]`, "Content-Type", jp), 404)
	})
}

func TestPrefer(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		r := g.do("POST", "/Patient", patientBody, "Prefer", "return=minimal")
		expect(t, r, 201)
		if len(r.body) != 0 || r.header.Get("Location") == "" {
			t.Errorf("return=minimal: body %q, Location %q", r.body, r.header.Get("Location"))
		}
		r = g.do("POST", "/Patient", patientBody, "Prefer", "return=OperationOutcome")
		expect(t, r, 201)
		if r.json(t)["resourceType"] != "OperationOutcome" {
			t.Errorf("return=OperationOutcome: %s", r.body)
		}
		r = g.do("POST", "/Patient", patientBody, "Prefer", "return=representation")
		if r.json(t)["resourceType"] != "Patient" {
			t.Errorf("return=representation: %s", r.body)
		}
	})
}

func TestFormatsAndViews(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/f", `{"resourceType":"Patient","id":"f","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane &amp; co</div>"},"active":true,"gender":"female","photo":[{"contentType":"image/png","data":"AAAA"}]}`), 201)
		tests := []struct {
			name    string
			path    string
			headers []string
			status  int
			ct      string
		}{
			{"default", "/Patient/f", nil, 200, "application/fhir+json"},
			{"accept fhir json", "/Patient/f", []string{"Accept", "application/fhir+json"}, 200, "application/fhir+json"},
			{"accept json", "/Patient/f", []string{"Accept", "application/json"}, 200, "application/json"},
			{"accept any", "/Patient/f", []string{"Accept", "text/html;q=0.9, */*;q=0.8"}, 200, "application/fhir+json"},
			{"accept xml only", "/Patient/f", []string{"Accept", "application/fhir+xml"}, 406, ""},
			{"_format json", "/Patient/f?_format=json", []string{"Accept", "application/fhir+xml"}, 200, "application/fhir+json"},
			{"_format xml", "/Patient/f?_format=xml", nil, 406, ""},
			{"bad _summary", "/Patient/f?_summary=maybe", nil, 400, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := g.do("GET", tc.path, "", tc.headers...)
				expect(t, r, tc.status)
				if tc.ct != "" && !strings.HasPrefix(r.header.Get("Content-Type"), tc.ct) {
					t.Errorf("Content-Type %q; want %s", r.header.Get("Content-Type"), tc.ct)
				}
			})
		}
		plain := g.do("GET", "/Patient/f", "")
		if !bytes.Contains(plain.body, []byte(`Jane &amp; co</div>`)) {
			t.Errorf("narrative was re-escaped: %s", plain.body)
		}
		pretty := g.do("GET", "/Patient/f?_pretty=true", "")
		if !bytes.Contains(pretty.body, []byte("\n  \"resourceType\"")) {
			t.Errorf("_pretty: %s", pretty.body)
		}
		sum := g.do("GET", "/Patient/f?_summary=true", "").json(t)
		if sum["text"] != nil || sum["photo"] != nil || sum["active"] != true || sum["gender"] != "female" {
			t.Errorf("_summary=true kept non-summary elements or lost summary ones: %v", sum)
		}
		if !strings.Contains(string(g.do("GET", "/Patient/f?_summary=true", "").body), "SUBSETTED") {
			t.Error("_summary=true without the SUBSETTED tag")
		}
		el := g.do("GET", "/Patient/f?_elements=gender", "").json(t)
		if el["gender"] != "female" || el["active"] != nil {
			t.Errorf("_elements=gender: %v", el)
		}
	})
}

// Concurrent conditional writes on one new identifier make one resource:
// without the criteria lock each would find no match and create its own.
func TestConditionalWritesRace(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		for _, c := range []struct {
			name, method, path, header string
		}{
			{"update", "PUT", "/Patient?identifier=urn:race|u", ""},
			{"create", "POST", "/Patient", "identifier=urn:race|c"},
		} {
			t.Run(c.name, func(t *testing.T) {
				value := c.path[len(c.path)-1:]
				if c.header != "" {
					value = c.header[len(c.header)-1:]
				}
				body := `{"resourceType":"Patient","identifier":[{"system":"urn:race","value":"` + value + `"}]}`
				const n = 8
				statuses := make(chan int, n)
				for i := 0; i < n; i++ {
					go func() {
						req, _ := http.NewRequest(c.method, g.url+c.path, strings.NewReader(body))
						req.Header.Set("Content-Type", "application/fhir+json")
						if c.header != "" {
							req.Header.Set("If-None-Exist", c.header)
						}
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							statuses <- 0
							return
						}
						resp.Body.Close()
						statuses <- resp.StatusCode
					}()
				}
				created := 0
				for i := 0; i < n; i++ {
					switch s := <-statuses; s {
					case 201:
						created++
					case 200:
					default:
						t.Errorf("status %d", s)
					}
				}
				r := g.do("GET", "/Patient?identifier=urn:race|"+value, "")
				if created != 1 || r.json(t)["total"] != float64(1) {
					t.Errorf("%d creates, search %s", created, r.body)
				}
			})
		}
	})
}
