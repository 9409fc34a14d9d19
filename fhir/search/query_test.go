package search

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/outcome"
)

func TestParse(t *testing.T) {
	tests := []struct {
		query   string
		strict  bool
		wantErr bool
		ignored int
		clauses int
	}{
		{"family=smith&given=jo", false, false, 0, 2},
		{"death-date=ge2000&death-date=lt2001", false, false, 0, 2},
		{"birthdate=1950&birthdate=1950-02", false, false, 0, 2},
		// Blind indexes answer equality only (blind.go).
		{"birthdate=ge2000", false, true, 0, 0},
		{"family:contains=mit", false, true, 0, 0},
		{"identifier:in=http://example.org/vs", false, true, 0, 0},
		{"_sort=family", false, true, 0, 0},
		{"_sort=-birthdate", false, true, 0, 0},
		{"family:exact=Smith&family:missing=false&identifier:not=x&telecom:text=y", false, false, 0, 4},
		{"link:Patient.family=smith", false, false, 0, 1},
		{"link.name=smith", false, true, 0, 0},
		{"general-practitioner.name=smith", false, false, 0, 1},
		{"general-practitioner:Practitioner.name:contains=mit", false, false, 0, 1},
		{"birthdate=tomorrow", false, true, 0, 0},
		{"birthdate=ge", false, true, 0, 0},
		{"identifier=|", false, true, 0, 0},
		{"shoe-size=9", false, false, 1, 0},
		{"shoe-size=9", true, true, 0, 0},
		{"family:fuzzy=x", false, false, 1, 0},
		{"family:fuzzy=x", true, true, 0, 0},
		{"_count=-1", false, true, 0, 0},
		{"_count=abc", false, true, 0, 0},
		{"_total=some", false, true, 0, 0},
		{"_sort=gender,-death-date", false, false, 0, 0},
		{"_sort=nonsense", false, true, 0, 0},
		{"_include=Patient:general-practitioner", false, false, 0, 0},
		{"_include=Patient:family", false, true, 0, 0},
		{"gender:missing=maybe", false, true, 0, 0},
		{"general-practitioner=Practitioner/1,Organization/2", false, false, 0, 1},
		{"general-practitioner=a/b/c", false, true, 0, 0},
		{"_id=a,b", false, false, 0, 1},
		{"_lastUpdated=gt2026-01-01T00:00:00Z", false, false, 0, 1},
		{"_format=json&_pretty=true", false, false, 0, 0},
		{"_id=" + strings.Repeat("a,", 1000) + "a", false, true, 0, 0},
		{strings.Repeat("family=x&", 65), false, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := R4().Parse("Patient", v, tc.strict)
			if tc.wantErr {
				var oe *outcome.Error
				if !errors.As(err, &oe) || oe.Kind != outcome.Invalid {
					t.Fatalf("err = %v; want an Invalid outcome", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Ignored) != tc.ignored || len(q.Where) != tc.clauses {
				t.Errorf("ignored %v, %d clauses; want %d and %d", q.Ignored, len(q.Where), tc.ignored, tc.clauses)
			}
		})
	}
}

// FuzzParseQuery: no query string makes the parser panic, and every
// refusal is an Invalid OperationOutcome (a 400).
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"family=smith", "birthdate=ge2000-01-01T00:00:00Z", "_sort=-birthdate&_count=5", "value-quantity=5.4|http://unitsofmeasure.org|mg", "_include:iterate=*", "subject=Patient/1", "_cursor=eyJrIjpbXSwiaSI6ImEifQ", "code:text=hip", "number=1e5"} {
		f.Add("Observation", s)
	}
	f.Fuzz(func(t *testing.T, typ, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		_, err = R4().Parse(typ, v, len(query)%2 == 0)
		var oe *outcome.Error
		if err != nil && (!errors.As(err, &oe) || oe.Kind != outcome.Invalid) {
			t.Fatalf("Parse(%q): %v", query, err)
		}
	})
}

// Escapes (R4 3.1.1.5.7): \, \| and \$ are literal, in the part of the
// value they belong to.
func TestEscapes(t *testing.T) {
	tests := []struct {
		typ, query string
		want       []Value // System, HasSystem, Code, Text compared
	}{
		{"Observation", `identifier=urn:a\|b|c`, []Value{{System: "urn:a|b", HasSystem: true, Code: "c"}}},
		{"Observation", `identifier=urn:a|c\,d,urn:e|f`, []Value{{System: "urn:a", HasSystem: true, Code: "c,d"}, {System: "urn:e", HasSystem: true, Code: "f"}}},
		{"Observation", `identifier=a\\b`, []Value{{Code: `a\b`}}},
		{"Observation", `code:text=a\|b`, []Value{{Text: "a|b"}}},
		{"Patient", `family=o\,brien`, []Value{{Text: "o,brien"}}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			name, value, _ := strings.Cut(tc.query, "=")
			q, err := R4().Parse(tc.typ, url.Values{name: {value}}, true)
			if err != nil {
				t.Fatal(err)
			}
			got := q.Where[0].Values
			if len(got) != len(tc.want) {
				t.Fatalf("%d values; want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.System != w.System || g.HasSystem != w.HasSystem || g.Code != w.Code || (w.Text != "" && g.Text != w.Text) {
					t.Errorf("value %d = %+v; want %+v", i, g, w)
				}
			}
		})
	}
}
