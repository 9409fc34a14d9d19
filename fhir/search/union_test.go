package search

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/conformance/fhirpath"
)

// Each union is what its definition says: its expression's branches are
// its parts' branches, a composite's components are its parts' (same
// expressions, same types), and on every resource tried its rows are its
// parts' rows.
func TestUnionsAreUnions(t *testing.T) {
	r := R4()
	for typ, us := range unions {
		for code, parts := range us {
			u, ok := r.Lookup(typ, code)
			if !ok {
				t.Fatalf("%s.%s is not a parameter", typ, code)
			}
			var want []string
			for _, part := range parts {
				p, ok := r.Lookup(typ, part)
				if !ok {
					t.Fatalf("%s.%s: part %s is not a parameter", typ, code, part)
				}
				if p.Type != u.Type {
					t.Errorf("%s.%s is a %s, part %s a %s", typ, code, u.Type, part, p.Type)
				}
				want = append(want, splitTopLevel(branches(p.Expression, typ), '|')...)
				if u.Type == "composite" {
					if len(p.components) != len(u.components) {
						t.Fatalf("%s.%s has %d components, part %s %d", typ, code, len(u.components), part, len(p.components))
					}
					for i := range u.components {
						if u.Component[i].Expression != p.Component[i].Expression || u.components[i].typ != p.components[i].typ {
							t.Errorf("%s.%s component %d (%s, %s) differs from part %s's (%s, %s)", typ, code, i,
								u.Component[i].Expression, u.components[i].typ, part, p.Component[i].Expression, p.components[i].typ)
						}
					}
				}
			}
			got := splitTopLevel(branches(u.Expression, typ), '|')
			if !slices.Equal(trimmedSorted(got), trimmedSorted(want)) {
				t.Errorf("%s.%s is %q; its parts are %q", typ, code, got, want)
			}
		}
	}

	resources := map[string][]byte{
		"blood pressure": []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
			"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":128,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
			{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"error"}]}},
			{"code":{"coding":[{"system":"http://loinc.org","code":"8361-8"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"33586001"}]}}]}`),
		"score": []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000"}]},"valueQuantity":{"value":42,"system":"http://unitsofmeasure.org","code":"{score}"}}`),
	}
	dir := filepath.Join("..", "..", "..", "shared", "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 && os.Getenv("CI") == "true" {
		t.Fatal("shared test material missing in CI")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var head struct{ ResourceType string }
		if json.Unmarshal(raw, &head) == nil && unions[head.ResourceType] != nil {
			resources[filepath.Base(f)] = raw
		}
	}
	if len(files) == 0 {
		t.Logf("shared test material not present: %d resources of this file only", len(resources))
	}
	nonEmpty := map[string]int{}
	for name, raw := range resources {
		var head struct{ ResourceType string }
		_ = json.Unmarshal(raw, &head)
		typ := head.ResourceType
		for code, parts := range unions[typ] {
			got := evalRows(t, r, typ, code, raw)
			var want []string
			for _, part := range parts {
				want = append(want, evalRows(t, r, typ, part, raw)...)
			}
			if !slices.Equal(dedupe(got), dedupe(want)) {
				t.Errorf("%s: %s rows %v; its parts' %v", name, code, got, want)
			}
			if len(got) > 0 {
				nonEmpty[code]++
			}
		}
	}
	// The comparison above means something only where there are rows.
	for code := range unions["Observation"] {
		if nonEmpty[code] == 0 {
			t.Errorf("no resource tried has rows for %s", code)
		}
	}
}

// evalRows are the rows of one parameter of typ on raw, without Param.
func evalRows(t *testing.T, r *Registry, typ, code string, raw []byte) []string {
	t.Helper()
	p, _ := r.Lookup(typ, code)
	expr, err := r.expression(p, typ)
	if err != nil || expr == nil {
		t.Fatalf("%s.%s: %v", typ, code, err)
	}
	res, err := fhirpath.ParseResource(raw)
	if err != nil {
		t.Fatal(err)
	}
	env := &fhirpath.Environment{Resource: res, Resolve: referenceStub, Lenient: true, Now: time.Now()}
	rows, err := paramRows(p, expr, env, res)
	if err != nil {
		t.Fatalf("%s.%s: %v", typ, code, err)
	}
	var out []string
	for _, row := range rows {
		row.Param = ""
		b, _ := json.Marshal([]any{row.Sys, row.Val, row.Raw, row.DLow, row.DHigh, row.NLow, row.NHigh, row.HasDate, row.HasNumber})
		out = append(out, string(b))
	}
	return out
}

func dedupe(rows []string) []string {
	out := append([]string(nil), rows...)
	sort.Strings(out)
	return slices.Compact(out)
}

func trimmedSorted(branches []string) []string {
	out := make([]string, len(branches))
	for i, b := range branches {
		out[i] = strings.TrimSpace(b)
	}
	sort.Strings(out)
	return out
}
