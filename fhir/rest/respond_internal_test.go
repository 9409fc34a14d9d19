package rest

import "testing"

// negotiate answers a lone media type without parsing it; the answers must
// be those of the parse, whatever the case and spacing.
func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		format, accept, want string // want "" is 406
	}{
		{"", "", fhirJSON},
		{"", "application/fhir+json", fhirJSON},
		{"", " APPLICATION/FHIR+JSON ", fhirJSON},
		{"", "application/json", "application/json"},
		{"", "Application/JSON", "application/json"},
		{"", "*/*", fhirJSON},
		{"", "application/*", fhirJSON},
		{"", "application/fhir+*", fhirJSON},
		{"", "application/fhir+xml", ""},
		{"", "text/html", ""},
		{"", "not a media type", ""},
		{"", "application/json; charset=utf-8", "application/json"},
		{"", "application/fhir+json;q=0", ""},
		{"", "application/fhir+xml, application/json;q=0.5", "application/json"},
		{"", "text/html;q=0.9, */*;q=0.8", fhirJSON},
		{"json", "application/fhir+xml", fhirJSON},
		{"application/json", "", "application/json"},
		{"xml", "application/fhir+json", ""},
	} {
		got, err := negotiate(tc.format, tc.accept)
		if tc.want == "" {
			if err == nil {
				t.Errorf("negotiate(%q, %q) = %q; want 406", tc.format, tc.accept, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("negotiate(%q, %q) = %q, %v; want %q", tc.format, tc.accept, got, err, tc.want)
		}
	}
}
