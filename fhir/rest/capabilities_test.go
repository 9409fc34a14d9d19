package rest_test

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/rest"
)

// The CapabilityStatement claims exactly what works: every interaction it
// lists for a type is exercised here and must not be 404/405, and the ones
// it leaves out (search-type) must be 405.
func TestCapabilityStatementMatchesBehaviour(t *testing.T) {
	g := start(t, t.TempDir()+"/cap.db", nil)
	r := g.do("GET", "/metadata", "")
	expect(t, r, 200)
	cs := r.json(t)
	if cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" || cs["kind"] != "instance" {
		t.Fatalf("statement header: %v %v %v", cs["resourceType"], cs["fhirVersion"], cs["kind"])
	}
	rest0 := cs["rest"].([]any)[0].(map[string]any)
	resources := rest0["resource"].([]any)
	if len(resources) != 146 { // R4 4.0.1 concrete resource types, as the google/fhir R4 protos also count them
		t.Errorf("%d resource types; R4 has 146", len(resources))
	}
	var patient map[string]any
	for _, res := range resources {
		if m := res.(map[string]any); m["type"] == "Patient" {
			patient = m
		}
	}
	claimed := map[string]bool{}
	for _, i := range patient["interaction"].([]any) {
		claimed[i.(map[string]any)["code"].(string)] = true
	}
	for _, i := range rest0["interaction"].([]any) {
		claimed[i.(map[string]any)["code"].(string)] = true
	}
	patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":true}]`))
	probes := map[string]func() reply{
		"create": func() reply { return g.do("POST", "/Patient", `{"resourceType":"Patient"}`) },
		"update": func() reply { return g.do("PUT", "/Patient/cap", `{"resourceType":"Patient","id":"cap"}`) },
		"read":   func() reply { return g.do("GET", "/Patient/cap", "") },
		"vread":  func() reply { return g.do("GET", "/Patient/cap/_history/1", "") },
		"patch": func() reply {
			return g.do("PATCH", "/Patient/cap", `[]`, "Content-Type", "application/json-patch+json")
		},
		"history-instance": func() reply { return g.do("GET", "/Patient/cap/_history", "") },
		"history-type":     func() reply { return g.do("GET", "/Patient/_history", "") },
		"history-system":   func() reply { return g.do("GET", "/_history", "") },
		"delete":           func() reply { return g.do("DELETE", "/Patient/cap", "") },
		"transaction": func() reply {
			return g.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+patch+`"},"request":{"method":"PATCH","url":"Patient/cap"}}]}`)
		},
		"batch":         func() reply { return g.do("POST", "", `{"resourceType":"Bundle","type":"batch"}`) },
		"search-type":   func() reply { return g.do("GET", "/Patient?_id=cap", "") },
		"search-system": func() reply { return g.do("GET", "?_type=Patient", "") },
	}
	order := []string{"create", "update", "read", "vread", "patch", "transaction", "history-instance", "history-type", "history-system", "batch", "search-type", "search-system", "delete"}
	for _, code := range order {
		if !claimed[code] {
			t.Errorf("statement does not claim %s, which works", code)
			continue
		}
		delete(claimed, code)
		if r := probes[code](); r.status >= 300 {
			t.Errorf("claimed %s answers %d: %s", code, r.status, r.body)
		}
	}
	for code := range claimed {
		t.Errorf("statement claims %s, which no probe here checks", code)
	}
	expect(t, g.do("DELETE", "", ""), http.StatusMethodNotAllowed) // nothing claims a system-level delete
	params := map[string]bool{}
	for _, p := range patient["searchParam"].([]any) {
		params[p.(map[string]any)["name"].(string)] = true
	}
	for _, want := range []string{"_id", "_lastUpdated", "identifier", "family", "birthdate", "general-practitioner"} {
		if !params[want] {
			t.Errorf("Patient searchParam lacks %s", want)
		}
	}
	if params["_text"] || params["_content"] || params["phonetic"] {
		t.Error("statement claims _text/_content/phonetic, which are not served")
	}
	if patient["conditionalCreate"] != true || patient["conditionalUpdate"] != true || patient["conditionalDelete"] != "multiple" ||
		patient["versioning"] != "versioned-update" || patient["updateCreate"] != true || patient["readHistory"] != true {
		t.Errorf("Patient capabilities: %v", patient)
	}

	g2 := start(t, t.TempDir()+"/cap2.db", func(c *rest.Config) { c.UpdateCreate = false; c.ConditionalDeleteMultiple = false })
	cs2 := g2.do("GET", "/metadata", "").body
	if !strings.Contains(string(cs2), `"updateCreate":false`) || !strings.Contains(string(cs2), `"conditionalDelete":"single"`) {
		t.Error("statement does not follow configuration")
	}
}

func TestOperations(t *testing.T) {
	g := start(t, t.TempDir()+"/ops.db", nil)
	base := strings.TrimSuffix(g.url, "/fhir")
	get := func(path string, headers ...string) reply {
		req, _ := http.NewRequest("GET", base+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return reply{resp.StatusCode, resp.Header, []byte(b.String())}
	}
	if r := get("/healthz"); r.status != 200 {
		t.Errorf("/healthz %d", r.status)
	}
	if r := get("/readyz"); r.status != 200 || !strings.Contains(string(r.body), `"database":"ok"`) {
		t.Errorf("/readyz %d %s", r.status, r.body)
	}
	r := get("/fhir/metadata", "X-Request-ID", "abc-123")
	if r.header.Get("X-Request-ID") != "abc-123" {
		t.Errorf("request id not echoed: %q", r.header.Get("X-Request-ID"))
	}
	generated := regexp.MustCompile(`^[0-9a-f]{24}$`)
	first := get("/fhir/metadata", "X-Request-ID", "bad id!").header.Get("X-Request-ID")
	second := get("/fhir/metadata").header.Get("X-Request-ID")
	if !generated.MatchString(first) || !generated.MatchString(second) || first == second {
		t.Errorf("generated request ids %q and %q: want two different sets of 24 hex digits", first, second)
	}
	if d, err := http.ParseTime(r.header.Get("Date")); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Second {
		t.Errorf("Date %q (%v): want the time of the response", r.header.Get("Date"), err)
	}
	g.do("GET", "/Patient/none", "")
	g.do("GET", "/Patient/none", "")
	m := get("/metrics")
	for _, want := range []string{
		`fhir_requests_total{interaction="capabilities",status="200",type=""} 3`,
		`fhir_requests_total{interaction="read",status="404",type="Patient"} 2`,
		`fhir_request_duration_seconds_count{interaction="read",type="Patient"} 2`,
		`fhir_request_duration_seconds_bucket{interaction="read",type="Patient"`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r := get("/elsewhere"); r.status != 404 || !strings.Contains(string(r.body), "OperationOutcome") {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
}
