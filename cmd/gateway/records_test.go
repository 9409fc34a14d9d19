package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/mapping/ingest"
)

// testRecord reads one of the mapping's test records.
func testRecord(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "mapping", "ukcore", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func postRecords(t *testing.T, gw string, records ...any) (int, recordsResponse, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"records": records})
	resp, err := http.Post(gw+"/internal/v1/records", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var out recordsResponse
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, string(raw)
}

func statusList(r recordsResponse) string {
	var s []string
	for _, o := range r.Outcomes {
		s = append(s, o.Status)
	}
	return strings.Join(s, ",")
}

func total(t *testing.T, gw, query string) float64 {
	t.Helper()
	r := call(t, "GET", gw+"/fhir/"+query, "")
	var b map[string]any
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || r.status != 200 {
		t.Fatalf("%s: %d %s", query, r.status, r.body)
	}
	n, _ := b["total"].(float64)
	return n
}

// Records sent to the internal API are stored as UK Core resources on both
// databases; sending them again changes nothing; a changed record updates
// the same resources; a bad record is refused field by field and leaves
// nothing behind, without affecting the others in its batch.
func TestRecordsAPI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "gw.db")
			if engine == "postgres" {
				db = storetest.PostgresDSN(t)
			}
			gw := startGateway(t, map[string]string{"GATEWAY_DB": db, "GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json")})
			hip, knee := testRecord(t, "hip"), testRecord(t, "knee")

			status, out, raw := postRecords(t, gw, hip, knee)
			if status != 200 || statusList(out) != "created,created" {
				t.Fatalf("first send: %d %s", status, raw)
			}
			history := total(t, gw, "_history?_count=1")
			status, out, raw = postRecords(t, gw, hip, knee)
			if status != 200 || statusList(out) != "unchanged,unchanged" {
				t.Fatalf("second send: %d %s", status, raw)
			}
			if h := total(t, gw, "_history?_count=1"); h != history {
				t.Errorf("an unchanged record wrote %v versions", h-history)
			}
			nhs := url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9434765919")
			if n := total(t, gw, "Patient?identifier="+nhs); n != 1 {
				t.Errorf("%v patients with the NHS number", n)
			}
			if n := total(t, gw, "Observation?code="+url.QueryEscape("https://proms.example.org/CodeSystem/proms-score|oxford-hip-score")); n != 2 {
				t.Errorf("%v Oxford Hip Score observations; want pre- and post-op", n)
			}

			hip["patient"].(map[string]any)["email"] = "ann@example.net"
			hip["source"].(map[string]any)["updated"] = "2026-06-30T10:00:00Z"
			status, out, raw = postRecords(t, gw, hip)
			if status != 200 || statusList(out) != "updated" {
				t.Fatalf("changed record: %d %s", status, raw)
			}
			changed := map[string]string{}
			for _, s := range out.Outcomes[0].Resources {
				if s.Status != ingest.Unchanged {
					changed[s.Type] = s.Status
				}
			}
			if len(changed) != 2 || changed["Patient"] != "updated" || changed["Provenance"] != "created" {
				t.Errorf("changed: %v; want the Patient updated and a new Provenance", changed)
			}
			if n := total(t, gw, "Patient?identifier="+nhs); n != 1 {
				t.Errorf("the update duplicated the patient: %v", n)
			}

			// The platform drops the post-operative Oxford response and the
			// surgeon: what the response made goes, the shared Practitioner
			// stays.
			episode := hip["episodes"].([]any)[0].(map[string]any)
			var kept []any
			for _, r := range episode["responses"].([]any) {
				if r.(map[string]any)["id"] != "r-4" {
					kept = append(kept, r)
				}
			}
			episode["responses"] = kept
			delete(episode["procedures"].([]any)[0].(map[string]any), "surgeon")
			hip["source"].(map[string]any)["updated"] = "2026-07-01T10:00:00Z"
			practitioners := total(t, gw, "Practitioner")
			r4 := "QuestionnaireResponse?identifier=" + url.QueryEscape("https://proms.example.org/Id/questionnaire-response|r-4")
			if n := total(t, gw, r4); n != 1 {
				t.Fatalf("%v responses r-4 before the platform dropped it", n)
			}
			status, out, raw = postRecords(t, gw, hip)
			if status != 200 || statusList(out) != "updated" {
				t.Fatalf("shrunk record: %d %s", status, raw)
			}
			gone := map[string]int{}
			for _, s := range out.Outcomes[0].Resources {
				if s.Status == ingest.Retracted {
					gone[s.Type]++
					r := call(t, "GET", gw+"/fhir/"+s.Type+"/"+s.ID, "")
					if r.status != http.StatusOK || !strings.Contains(r.body, `"entered-in-error"`) {
						t.Errorf("%s/%s reported retracted, read gives %d %s", s.Type, s.ID, r.status, r.body)
					}
				}
			}
			if gone["QuestionnaireResponse"] != 1 || gone["Observation"] == 0 || gone["Practitioner"] != 0 {
				t.Errorf("retracted %v; want the response and its scores, no Practitioner", gone)
			}
			if n := total(t, gw, r4+"&status=entered-in-error"); n != 1 {
				t.Errorf("the dropped response is not found marked entered-in-error (%v)", n)
			}
			if n := total(t, gw, "Observation?status:not=entered-in-error&code="+url.QueryEscape("https://proms.example.org/CodeSystem/proms-score|oxford-hip-score")); n != 1 {
				t.Errorf("%v Oxford Hip Score observations in force; want the pre-op one only", n)
			}
			if n := total(t, gw, "Practitioner"); n != practitioners {
				t.Errorf("Practitioners %v, were %v: shared data must stay", n, practitioners)
			}
			status, out, raw = postRecords(t, gw, hip)
			if status != 200 || statusList(out) != "unchanged" {
				t.Fatalf("shrunk record again: %d %s", status, raw)
			}
			// A version older than the stored one (a late delivery) is
			// refused and changes nothing.
			history = total(t, gw, "_history?_count=1")
			hip["source"].(map[string]any)["updated"] = "2026-06-30T11:00:00Z"
			hip["patient"].(map[string]any)["email"] = "old@example.net"
			status, out, raw = postRecords(t, gw, hip)
			if status != 200 || statusList(out) != "rejected" || len(out.Outcomes[0].Problems) == 0 || !strings.Contains(out.Outcomes[0].Problems[0].Reason, "out of date") {
				t.Fatalf("out-of-date record: %d %s", status, raw)
			}
			if h := total(t, gw, "_history?_count=1"); h != history {
				t.Errorf("an out-of-date record wrote %v versions", h-history)
			}

			// A batch with a good record and two bad ones.
			badNHS := testRecord(t, "shoulder")
			badNHS["patient"].(map[string]any)["id"] = "p-bad"
			badNHS["patient"].(map[string]any)["nhsNumber"] = "9434765918"
			unknown := testRecord(t, "shoulder")
			unknown["patient"].(map[string]any)["shoeSize"] = 7
			// The good one shares the hip patient's GP practice, which exists
			// already: still a new patient, so created.
			shoulder := testRecord(t, "shoulder")
			shoulder["care"] = map[string]any{"gpPractice": map[string]any{"ods": "B86001", "name": "Church Lane Surgery"}}
			status, out, raw = postRecords(t, gw, shoulder, badNHS, unknown)
			if status != 200 || statusList(out) != "created,rejected,rejected" {
				t.Fatalf("mixed batch: %d %s", status, raw)
			}
			if p := out.Outcomes[1].Problems; len(p) != 1 || p[0].Field != "patient.nhsNumber" {
				t.Errorf("bad NHS number: %+v", p)
			}
			if p := out.Outcomes[2].Problems; len(p) != 1 || p[0].Field != "shoeSize" {
				t.Errorf("unknown field: %+v", p)
			}
			if n := total(t, gw, "Patient?identifier="+url.QueryEscape("https://proms.example.org/Id/patient|p-bad")); n != 0 {
				t.Errorf("a rejected record left %v patients", n)
			}
			if out.Summary["created"] != 1 || out.Summary["rejected"] != 2 {
				t.Errorf("summary %v", out.Summary)
			}
		})
	}
}

// Batches the API cannot read are OperationOutcomes with the right status.
func TestRecordsAPIBadBatches(t *testing.T) {
	dir := t.TempDir()
	gw := startGateway(t, map[string]string{"GATEWAY_DB": filepath.Join(dir, "gw.db"), "GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json"),
		"GATEWAY_MAX_BODY_BYTES": "4096"})
	for _, c := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"not JSON", "application/json", `{"records": [`, 400},
		{"no records", "application/json", `{"records": []}`, 400},
		{"unknown member", "application/json", `{"recs": []}`, 400},
		{"wrong media type", "text/csv", `a,b`, 415},
		{"too large", "application/json", `{"records": ["` + strings.Repeat("x", 5000) + `"]}`, 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(gw+"/internal/v1/records", c.contentType, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var oo map[string]any
			json.NewDecoder(resp.Body).Decode(&oo)
			if resp.StatusCode != c.status || oo["resourceType"] != "OperationOutcome" {
				t.Errorf("%d %v; want %d and an OperationOutcome", resp.StatusCode, oo, c.status)
			}
		})
	}
}

// Ids and a source URI holding characters search gives a meaning (, | $ \)
// still identify their resources: sent twice, a record is unchanged.
func TestRecordsWithSearchCharacters(t *testing.T) {
	dir := t.TempDir()
	gw := startGateway(t, map[string]string{"GATEWAY_DB": filepath.Join(dir, "gw.db"), "GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json")})
	r := testRecord(t, "hip")
	r["source"].(map[string]any)["system"] = "https://proms.example.org/a,b|c$d"
	r["studies"].([]any)[0].(map[string]any)["study"].(map[string]any)["id"] = `S,1|x\y`
	for _, c := range r["consents"].([]any) {
		if c.(map[string]any)["kind"] == "study" {
			c.(map[string]any)["study"] = `S,1|x\y`
		}
	}
	for i, want := range []string{"created", "unchanged"} {
		status, out, raw := postRecords(t, gw, r)
		if status != 200 || statusList(out) != want {
			t.Fatalf("send %d: %d %s", i+1, status, raw)
		}
	}
}
