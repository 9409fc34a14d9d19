package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/mapping"
)

// Decode names the field at fault, so a rejected record says what to fix.
func TestDecode(t *testing.T) {
	cases := []struct {
		name, raw, field, reason string
	}{
		{"cut short", `{"source": `, "", "not valid JSON"},
		{"not JSON", `{"source": ]`, "", "not valid JSON"},
		{"unknown field", `{"patient": {"id": "p", "eyeColour": "blue"}}`, "eyeColour", "not a field"},
		{"wrong type", `{"patient": {"given": "Ann"}}`, "patient.given", "must be a JSON array"},
		{"number as string", `{"measurements": [{"kind": "height", "value": "tall"}]}`, "measurements.value", "must be a JSON number"},
		{"trailing data", `{} {}`, "", "after the record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.raw))
			var ps mapping.Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("Decode = %v", err)
			}
			if ps[0].Field != c.field || !strings.Contains(ps[0].Reason, c.reason) {
				t.Errorf("problem %+v; want field %q saying %q", ps[0], c.field, c.reason)
			}
		})
	}
	if _, err := Decode([]byte(`{"patient": {"id": "p"}}`)); err != nil {
		t.Errorf("a partial record is a Check problem, not a decoding one: %v", err)
	}
}
