package rest_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func entries(t *testing.T, r reply) []map[string]any {
	t.Helper()
	var out []map[string]any
	list, _ := r.json(t)["entry"].([]any)
	for _, e := range list {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestTransaction(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/old", `{"resourceType":"Patient","id":"old"}`), 201)
		expect(t, g.do("PUT", "/Patient/upd", `{"resourceType":"Patient","id":"upd","active":true}`), 201)
		expect(t, g.do("PUT", "/Organization/org1", `{"resourceType":"Organization","id":"org1","identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX"}]}`), 201)
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"GET","url":"Patient/upd"}},
			{"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient","name":[{"family":"New"}],"managingOrganization":{"reference":"Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|RXX"}},"request":{"method":"POST","url":"Patient"}},
			{"fullUrl":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059","resource":{"resourceType":"Observation","status":"final","code":{"text":"Oxford Hip Score"},"subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},"valueInteger":42},"request":{"method":"POST","url":"Observation"}},
			{"resource":{"resourceType":"Patient","id":"upd","active":false},"request":{"method":"PUT","url":"Patient/upd"}},
			{"request":{"method":"DELETE","url":"Patient/old"}}
		]}`
		r := g.do("POST", "", tx)
		expect(t, r, 200)
		b := r.json(t)
		if b["type"] != "transaction-response" {
			t.Fatalf("type %v", b["type"])
		}
		es := entries(t, r)
		want := []string{"200 OK", "201 Created", "201 Created", "200 OK", "204 No Content"}
		for i, e := range es {
			if got := field(e, "response", "status"); got != want[i] {
				t.Errorf("entry %d status %v; want %s", i, got, want[i])
			}
		}
		// The GET runs after the PUT (R4 processing order), so it sees active=false.
		if field(es[0], "resource", "active") != false {
			t.Errorf("GET entry did not run last: %v", es[0]["resource"])
		}
		patientID := field(es[1], "resource", "id").(string)
		if ref := field(es[2], "resource", "subject", "reference"); ref != "Patient/"+patientID {
			t.Errorf("urn:uuid reference not resolved: %v", ref)
		}
		if ref := field(es[1], "resource", "managingOrganization", "reference"); ref != "Organization/org1" {
			t.Errorf("conditional reference not resolved: %v", ref)
		}
		if loc, _ := field(es[2], "response", "location").(string); !strings.HasPrefix(loc, "Observation/") || !strings.HasSuffix(loc, "/_history/1") {
			t.Errorf("location %q", loc)
		}
		expect(t, g.do("GET", "/Patient/old", ""), 410)
		expect(t, g.do("GET", "/Patient/"+patientID, ""), 200)
	})
}

// A transaction that fails at any entry stores nothing (R4 3.1.0.11.2).
func TestTransactionAtomicAtEveryEntry(t *testing.T) {
	good := []string{
		`{"fullUrl":"urn:uuid:a1","resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}}`,
		`{"resource":{"resourceType":"Patient","id":"keep","active":false},"request":{"method":"PUT","url":"Patient/keep"}}`,
		`{"request":{"method":"DELETE","url":"Patient/gone"}}`,
		`{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/active","value":false}]`)) + `"},"request":{"method":"PATCH","url":"Patient/pat"}}`,
	}
	bad := []struct {
		name, entry string
		status      int
	}{
		{"invalid resource", `{"resource":{"resourceType":"Patient","gender":"robot"},"request":{"method":"POST","url":"Patient"}}`, 400},
		{"rule violation", `{"resource":{"resourceType":"Observation","code":{"text":"x"}},"request":{"method":"POST","url":"Observation"}}`, 422},
		{"stale If-Match", `{"resource":{"resourceType":"Patient","id":"other"},"request":{"method":"PUT","url":"Patient/other","ifMatch":"W/\"9\""}}`, 412},
		{"read of a missing resource", `{"request":{"method":"GET","url":"Patient/missing"}}`, 404},
		{"dangling urn:uuid", `{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:nowhere"}},"request":{"method":"POST","url":"Observation"}}`, 400},
		{"unknown route", `{"request":{"method":"GET","url":"Nothing/1"}}`, 404},
	}
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/keep", `{"resourceType":"Patient","id":"keep","active":true}`), 201)
		expect(t, g.do("PUT", "/Patient/gone", `{"resourceType":"Patient","id":"gone"}`), 201)
		expect(t, g.do("PUT", "/Patient/pat", `{"resourceType":"Patient","id":"pat","active":true}`), 201)
		expect(t, g.do("PUT", "/Patient/other", `{"resourceType":"Patient","id":"other"}`), 201)
		before := g.versions()
		for _, b := range bad {
			for pos := 0; pos <= len(good); pos++ {
				t.Run(fmt.Sprintf("%s at %d", b.name, pos), func(t *testing.T) {
					es := append(append(append([]string{}, good[:pos]...), b.entry), good[pos:]...)
					r := g.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+strings.Join(es, ",")+`]}`)
					expect(t, r, b.status)
					if !strings.Contains(string(r.body), fmt.Sprintf("Bundle.entry[%d]", pos)) {
						t.Errorf("outcome does not name entry %d: %s", pos, r.body)
					}
					if n := g.versions(); n != before {
						t.Fatalf("failed transaction stored %d versions", n-before)
					}
				})
			}
		}
		// Two entries changing one resource are refused.
		r := g.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+good[1]+`,`+good[1]+`]}`)
		expect(t, r, 400)
		// And the good entries alone succeed.
		expect(t, g.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+strings.Join(good, ",")+`]}`), 200)
		if n := g.versions(); n != before+4 {
			t.Errorf("good transaction stored %d versions; want 4", n-before)
		}
	})
}

func TestBatch(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		r := g.do("POST", "", `{"resourceType":"Bundle","type":"batch","entry":[
			{"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}},
			{"resource":{"resourceType":"Patient","gender":"robot"},"request":{"method":"POST","url":"Patient"}},
			{"request":{"method":"GET","url":"Patient/missing"}},
			{"request":{"method":"GET","url":"metadata"}}
		]}`, "Prefer", "return=minimal")
		expect(t, r, 200)
		es := entries(t, r)
		want := []string{"201 Created", "400 Bad Request", "404 Not Found", "200 OK"}
		for i, e := range es {
			if got := field(e, "response", "status"); got != want[i] {
				t.Errorf("entry %d status %v; want %s", i, got, want[i])
			}
		}
		if es[0]["resource"] != nil {
			t.Errorf("return=minimal still returned the resource")
		}
		if field(es[1], "response", "outcome", "resourceType") != "OperationOutcome" {
			t.Errorf("failed entry has no outcome: %v", es[1])
		}
		if field(es[3], "resource", "resourceType") != "CapabilityStatement" {
			t.Errorf("GET in batch: %v", es[3])
		}
		if g.versions() != 1 {
			t.Errorf("batch stored %d versions; want 1", g.versions())
		}
	})
}

// A conditional entry on a parameter whose rows are kept under others
// (combo-code: code and component-code) matches as a search would.
func TestTransactionConditionalOnUnionParameter(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Observation/bp", `{"resourceType":"Observation","id":"bp","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
			"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":128}}]}`), 201)
		entry := func(criteria string) string {
			return `{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]}},
				"request":{"method":"POST","url":"Observation","ifNoneExist":"` + criteria + `"}}`
		}
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[` + entry("combo-code=http://loinc.org|8480-6") + `,` + entry("combo-code=http://loinc.org|0000-0") + `]}`
		r := g.do("POST", "", tx)
		expect(t, r, 200)
		es := entries(t, r)
		for i, want := range []string{"200 OK", "201 Created"} {
			if got := field(es[i], "response", "status"); got != want {
				t.Errorf("entry %d status %v; want %s", i, got, want)
			}
		}
		if id := field(es[0], "resource", "id"); id != "bp" {
			t.Errorf("the matching entry names %v; want bp", id)
		}
	})
}
