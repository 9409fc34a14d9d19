package fhirpath

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

type suite struct {
	Groups []struct {
		Name  string      `xml:"name,attr"`
		Tests []suiteTest `xml:"test"`
	} `xml:"group"`
}

type suiteTest struct {
	Name       string `xml:"name,attr"`
	InputFile  string `xml:"inputfile,attr"`
	Predicate  string `xml:"predicate,attr"`
	Mode       string `xml:"mode,attr"`
	Expression struct {
		Text    string `xml:",chardata"`
		Invalid string `xml:"invalid,attr"`
	} `xml:"expression"`
	Outputs []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"output"`
}

func sharedPath(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{"..", "..", "..", "shared"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test material missing in CI: %v", err)
		}
		t.Skipf("shared test material not present: %v", err)
	}
	return p
}

// minimumPassing is the floor this engine has reached on the official
// suite; the goal (issue 3) is 95% of the suite. The test fails on a
// regression below the floor and prints every failure.
const minimumPassing = 900

// TestOfficialSuite runs the official FHIRPath R4 suite. Inputs are the
// official examples; the suite names their XML form and ../shared holds the
// JSON form of the same resources. Tests whose input is not in ../shared
// are counted as not run.
func TestOfficialSuite(t *testing.T) {
	raw, err := os.ReadFile(sharedPath(t, "conformance", "fhirpath", "tests-fhir-r4.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var s suite
	if err := xml.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	examples := sharedPath(t, "conformance", "r4-examples")
	inputs := map[string]*Node{}
	total, passed, missing := 0, 0, 0
	var failures []string
	for _, g := range s.Groups {
		for _, tc := range g.Tests {
			total++
			name := strings.TrimSuffix(tc.InputFile, ".xml")
			name = strings.TrimSuffix(name, ".json") + ".json"
			if tc.InputFile == "" {
				if msg := runCase(tc, nil); msg != "" {
					failures = append(failures, fmt.Sprintf("%s/%s: %s\n    %s", g.Name, tc.Name, msg, strings.TrimSpace(tc.Expression.Text)))
				} else {
					passed++
				}
				continue
			}
			in, ok := inputs[name]
			if !ok {
				if b, err := os.ReadFile(filepath.Join(examples, name)); err == nil {
					if in, err = ParseResource(b); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
				inputs[name] = in
			}
			if in == nil {
				missing++
				continue
			}
			if msg := runCase(tc, in); msg != "" {
				failures = append(failures, fmt.Sprintf("%s/%s: %s\n    %s", g.Name, tc.Name, msg, strings.TrimSpace(tc.Expression.Text)))
				continue
			}
			passed++
		}
	}
	sort.Strings(failures)
	for _, f := range failures {
		t.Log(f)
	}
	t.Logf("FHIRPath official suite: %d of %d passed (%.1f%%); %d failed; %d not run (input not in ../shared)",
		passed, total, 100*float64(passed)/float64(total), len(failures), missing)
	if passed < minimumPassing {
		t.Errorf("%d passed; the floor is %d", passed, minimumPassing)
	}
}

func runCase(tc suiteTest, in *Node) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprintf("panic: %v", p)
		}
	}()
	expr, err := Parse(tc.Expression.Text)
	env := &Environment{Resource: in, Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	input := Collection{}
	if in != nil {
		input = Collection{in}
	}
	var got Collection
	if err == nil {
		got, err = expr.Evaluate(env, input)
	}
	if tc.Expression.Invalid != "" {
		if err == nil {
			return fmt.Sprintf("want a %s error, got %s", tc.Expression.Invalid, render(got))
		}
		return ""
	}
	if err != nil {
		return "error: " + err.Error()
	}
	if tc.Predicate == "true" {
		got = Collection{Boolean(len(got) > 0)}
	}
	if len(got) != len(tc.Outputs) {
		return fmt.Sprintf("got %s, want %d outputs %v", render(got), len(tc.Outputs), tc.Outputs)
	}
	for i, o := range tc.Outputs {
		typ, text := describe(got[i])
		want := strings.TrimSpace(o.Text)
		if text != want || !sameType(o.Type, typ) {
			return fmt.Sprintf("output %d: got %s %q, want %s %q", i, typ, text, o.Type, want)
		}
	}
	return ""
}

func sameType(want, got string) bool {
	if want == "" || want == got {
		return true
	}
	// FHIR primitives are reported with their system type by some runners.
	sys := map[string]string{"code": "string", "id": "string", "uri": "string", "markdown": "string", "instant": "dateTime"}
	return sys[got] == want || sys[want] == got
}

func describe(v Value) (typ, text string) {
	switch x := v.(type) {
	case *Node:
		if pv, ok := x.primitiveValue(); ok {
			_, t := describe(pv)
			if tv, isTemporal := pv.(Temporal); isTemporal {
				return x.Type, "@" + tv.String()
			}
			return x.Type, t
		}
		return x.Type, fmt.Sprint(x.JSON)
	case Boolean:
		return "boolean", fmt.Sprint(bool(x))
	case Integer:
		return "integer", fmt.Sprint(int64(x))
	case Decimal:
		return "decimal", x.String()
	case String:
		return "string", string(x)
	case Temporal:
		if x.Kind == TimeKind {
			return "time", "@T" + x.String()
		}
		return [...]string{"date", "dateTime", "time"}[x.Kind], "@" + x.String()
	case Quantity:
		return "Quantity", x.String()
	}
	return fmt.Sprintf("%T", v), fmt.Sprint(v)
}

func render(c Collection) string {
	var parts []string
	for _, v := range c {
		typ, text := describe(v)
		parts = append(parts, typ+" "+text)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
