package fhirpath

import (
	"errors"
	"testing"
	"time"
)

const obs = `{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000"}]},
"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":42,"unit":"score","system":"http://unitsofmeasure.org","code":"{score}"},
"component":[{"code":{"text":"pain"},"valueInteger":3},{"code":{"text":"function"},"valueInteger":4}]}`

func TestEvaluate(t *testing.T) {
	res, err := ParseResource([]byte(obs))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string
	}{
		{"Observation.subject.reference", "[string Patient/p1]"},
		{"Observation.value.value", "[decimal 42]"},
		{"Observation.value.ofType(Quantity).code", "[code {score}]"},
		{"Observation.component.value.sum()", "error"},
		{"Observation.component.value.aggregate($this + $total, 0)", "[integer 7]"},
		{"Observation.component.where(code.text = 'pain').value", "[integer 3]"},
		{"Observation.effective > @2026-01-01", "[boolean true]"},
		{"Observation.effective.toString()", "[string 2026-11-01T10:00:00Z]"},
		{"Observation.code.coding.where(system = %sct).code", "[code 273335000]"},
		{"Observation.component.count() = 2 and Observation.status = 'final'", "[boolean true]"},
		{"Observation.valueQuantity", "error"}, // value[x] is reached as value
		{"Observation.nonsense", "error"},
		{"Patient.name", "error"}, // the wrong resource type
		{"(Observation.value as Quantity).value * 2", "[decimal 84]"},
		{"Observation.component.value.select($this * 10)", "[integer 30, integer 40]"},
		{"{}.exists()", "[boolean false]"},
		{"iif(Observation.status = 'final', 'done', 'open')", "[string done]"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Evaluate(&Environment{Resource: res}, Collection{res})
			if tc.want == "error" {
				if err == nil {
					t.Fatalf("got %s; want an error", render(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if render(got) != tc.want {
				t.Errorf("got %s; want %s", render(got), tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{"", "a.", "a..b", "(", "a(", "1 +", "'open", "@", "a[1", "%", "$nope", "a.b(c,)", "1 is", "`x"} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) accepted it", src)
		} else {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Parse(%q) error %T is not a SyntaxError", src, err)
			}
		}
	}
}

// FuzzParse: no input makes the parser panic, and every refusal is a
// SyntaxError (which the search API turns into a 400).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"Patient.name.where(use = 'official').given.first()", "a.b[0] | c", "@2020-01-01T10:00:00Z + 1 day", "1.5 'mg' > 1 'g'", "%`vs-x`", "(((((1)))))", "a.as(FHIR.`Patient`)"} {
		f.Add(s)
	}
	res, _ := ParseResource([]byte(obs))
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %T %v", src, err, err)
			}
			return
		}
		done := make(chan bool)
		go func() { _, _ = e.Evaluate(&Environment{Resource: res}, Collection{res}); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("slow: %q", src)
		}
	})
}
