package strict

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantClass Class // checked only when wantPath is set
		wantPath  string
		wantMsg   string
	}{
		{name: "valid", in: `{"resourceType":"Patient","active":true}`},
		{name: "unknown element", in: `{"resourceType":"Patient","colour":"x"}`, wantClass: Syntax, wantPath: "Patient.colour", wantMsg: "unknown field"},
		{name: "bad date", in: `{"resourceType":"Patient","birthDate":"2020-13-01"}`, wantClass: Syntax, wantPath: "Patient.birthDate"},
		{name: "required missing", in: `{"resourceType":"Observation","code":{"text":"x"}}`, wantClass: Rule, wantPath: "Observation", wantMsg: "status"},
		{name: "wrong reference type", in: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Medication/1"}}`, wantClass: Rule, wantPath: "Observation.subject", wantMsg: "Medication"},
		// One walk checks both: a syntax issue makes the whole a 400, and
		// the rule issue is still reported.
		{name: "bad primitive and required missing: the primitive", in: `{"resourceType":"Observation","code":{"coding":[{"code":" padded"}]}}`, wantClass: Syntax, wantPath: "Observation.code.coding[0].code"},
		{name: "bad primitive and required missing: the rule", in: `{"resourceType":"Observation","code":{"coding":[{"code":" padded"}]}}`, wantClass: Syntax, wantPath: "Observation", wantMsg: "status"},
		{name: "unknown resource type", in: `{"resourceType":"Nonsense"}`, wantClass: Syntax, wantMsg: "unknown resource type"},
		{name: "not JSON", in: `{`, wantClass: Syntax, wantMsg: "invalid JSON"},
		{name: "contained resource", in: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"}}`},
		// google/fhir v0.7.4 rejects Parameters.parameter.resource as an
		// unknown field; R4 allows it. These cases keep the workaround honest.
		{name: "workaround: Parameters.parameter.resource", in: `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","active":true}}]}`},
		{name: "workaround: nested part resource", in: `{"resourceType":"Parameters","parameter":[{"name":"outer","part":[{"name":"inner","resource":{"resourceType":"Patient"}}]}]}`},
		{name: "workaround still checks the lifted resource", in: `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","colour":"x"}}]}`,
			wantClass: Syntax, wantPath: "Parameters.parameter[0].resource.colour", wantMsg: "unknown field"},
		{name: "workaround still checks the rest", in: `{"resourceType":"Parameters","parameter":[{"name":"p","valueBoolean":"yes","resource":{"resourceType":"Patient"}}]}`,
			wantClass: Syntax, wantPath: "Parameters.parameter[0].valueBoolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.in))
			if tc.wantPath == "" && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("valid resource refused: %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if ps.Class() != tc.wantClass {
				t.Errorf("class %v; want %v (%v)", ps.Class(), tc.wantClass, ps)
			}
			found := false
			for _, p := range ps {
				if (tc.wantPath == "" || p.Path == tc.wantPath) && strings.Contains(p.Message, tc.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no issue at %q mentioning %q in %v", tc.wantPath, tc.wantMsg, ps)
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	patient := []byte(`{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"use":"official","family":"Smith","given":["Jane"]}],"gender":"female","birthDate":"1950-02-01","address":[{"line":["1 High Street"],"city":"Leeds","postalCode":"LS1 1AA"}]}`)
	for b.Loop() {
		if err := Check(patient); err != nil {
			b.Fatal(err)
		}
	}
}
