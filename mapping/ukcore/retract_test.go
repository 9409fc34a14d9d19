package ukcore

import (
	"encoding/json"
	"testing"

	"github.com/promsgateway/gateway/conformance/strict"
)

func TestRetract(t *testing.T) {
	tests := []struct {
		typ, body string
		ok        bool
		want      string // the retracted resource; "" for none
	}{
		{"Observation", `{"resourceType":"Observation","status":"final","code":{"text":"score"},"valueQuantity":{"value":0.750}}`, true,
			`{"code":{"text":"score"},"resourceType":"Observation","status":"entered-in-error","valueQuantity":{"value":0.750}}`},
		{"Observation", `{"resourceType":"Observation","status":"entered-in-error","code":{"text":"score"}}`, true, ""},
		{"Goal", `{"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"Walk <1 mile> & back"},"subject":{"reference":"Patient/p"}}`, true,
			`{"description":{"text":"Walk <1 mile> & back"},"lifecycleStatus":"entered-in-error","resourceType":"Goal","subject":{"reference":"Patient/p"}}`},
		{"Condition", `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},"abatementDateTime":"2026-01-01","subject":{"reference":"Patient/p"}}`, true,
			`{"resourceType":"Condition","subject":{"reference":"Patient/p"},"verificationStatus":{"coding":[{"code":"entered-in-error","display":"Entered in Error","system":"http://terminology.hl7.org/CodeSystem/condition-ver-status"}]}}`},
		{"RelatedPerson", `{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p"}}`, false, ""},
		{"BodyStructure", `{"resourceType":"BodyStructure","patient":{"reference":"Patient/p"}}`, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			out, ok := Retract(tc.typ, []byte(tc.body))
			if ok != tc.ok || string(out) != tc.want {
				t.Fatalf("Retract = %s, %v; want %s, %v", out, ok, tc.want, tc.ok)
			}
			if out != nil {
				if err := strict.Check(out); err != nil {
					t.Errorf("the retracted resource is not valid R4: %v", err)
				}
				if !json.Valid(out) {
					t.Error("not JSON")
				}
			}
		})
	}
}
