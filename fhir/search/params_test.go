package search

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every official R4 search parameter expression must parse.
func TestAllExpressionsParse(t *testing.T) {
	r := R4()
	for _, b := range r.Broken {
		t.Error(b)
	}
	if _, ok := r.Lookup("Patient", "birthdate"); !ok {
		t.Error("Patient birthdate missing")
	}
	if _, ok := r.Lookup("Observation", "_lastUpdated"); !ok {
		t.Error("Resource parameters are not inherited")
	}
	if n := len(r.ForType("Patient")); n < 25 {
		t.Errorf("Patient has %d parameters", n)
	}
}

func TestBranches(t *testing.T) {
	tests := []struct{ expr, typ, want string }{
		{"Patient.birthDate | Person.birthDate | RelatedPerson.birthDate", "Person", "Person.birthDate"},
		{"Resource.meta.tag", "Patient", "Resource.meta.tag"},
		{"(Observation.value as Quantity) | (Observation.value as SampledData)", "Observation", "(Observation.value as Quantity) | (Observation.value as SampledData)"},
		{"AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient)", "CarePlan", "CarePlan.subject.where(resolve() is Patient)"},
	}
	for _, tc := range tests {
		if got := branches(tc.expr, tc.typ); got != tc.want {
			t.Errorf("branches(%q, %s) = %q; want %q", tc.expr, tc.typ, got, tc.want)
		}
	}
}

// Every official example indexes without an evaluation error, and a few
// known values come out as the specification's parameters say.
func TestExtractOfficialExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("shared test material missing in CI")
		}
		t.Skip("shared test material not present")
	}
	total := 0
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var head struct{ ResourceType string }
		_ = json.Unmarshal(raw, &head)
		rows, errs := R4().Extract(head.ResourceType, raw)
		for _, err := range errs {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		// Skipping parameters whose elements are absent changes nothing.
		skipAbsent = false
		all, _ := R4().Extract(head.ResourceType, raw)
		skipAbsent = true
		if fmt.Sprint(all) != fmt.Sprint(rows) {
			t.Errorf("%s: skipping absent elements lost rows:\nall  %v\ngot  %v", filepath.Base(f), all, rows)
		}
		if len(rows) == 0 && head.ResourceType != "Binary" && head.ResourceType != "Parameters" && head.ResourceType != "OperationOutcome" {
			t.Errorf("%s: no index rows", filepath.Base(f))
		}
		total += len(rows)
	}
	t.Logf("%d index rows from %d examples", total, len(files))
}

func TestExtract(t *testing.T) {
	patient := `{"resourceType":"Patient","id":"p","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],
	"name":[{"family":"Brontë","given":["Anne"]}],"gender":"female","birthDate":"1950-02","active":true,
	"generalPractitioner":[{"reference":"Organization/gp1"}],"address":[{"postalCode":"LS1 1AA","city":"Leeds"}]}`
	rows, errs := R4().Extract("Patient", []byte(patient))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	has := func(want Row) bool {
		for _, r := range rows {
			r.source = ""
			if r == want {
				return true
			}
		}
		return false
	}
	feb1950 := time.Date(1950, 2, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	mar1950 := time.Date(1950, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for _, want := range []Row{
		{Param: "identifier", Sys: "https://fhir.nhs.uk/Id/nhs-number", Val: "9000000009"},
		{Param: "family", Val: "bronte", Raw: "Brontë"},
		{Param: "name", Val: "anne", Raw: "Anne"},
		{Param: "gender", Val: "female"},
		{Param: "active", Val: "true"},
		{Param: "birthdate", DLow: feb1950, DHigh: mar1950, HasDate: true},
		{Param: "general-practitioner", Sys: "Organization", Val: "gp1", Raw: "Organization/gp1"},
		{Param: "address-postalcode", Val: "ls1 1aa", Raw: "LS1 1AA"},
	} {
		if !has(want) {
			t.Errorf("missing %+v in %+v", want, rows)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	docs := map[string]string{
		"Patient":     `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"use":"official","family":"Smith","given":["Jane","Mary"]}],"gender":"female","birthDate":"1950-02-01","address":[{"line":["1 High Street"],"city":"Leeds","postalCode":"LS1 1AA"}]}`,
		"Observation": `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000","display":"Oxford hip score"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-11-01","valueInteger":42}`,
	}
	for typ, doc := range docs {
		b.Run(typ, func(b *testing.B) {
			for b.Loop() {
				if _, errs := R4().Extract(typ, []byte(doc)); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}
