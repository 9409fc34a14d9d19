// Package strict checks that JSON bytes are a well-formed FHIR R4 resource,
// using github.com/google/fhir/go/jsonformat (v0.7.4) as the parser: unknown
// elements, wrong primitive formats, wrong JSON shapes, missing required
// elements and references to types an element does not allow are all
// reported, each with the FHIRPath-like location the library gives.
//
// Where the library rejects valid FHIR, this package works around it and
// says so next to the workaround; each workaround has a test.
package strict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// Class tells a syntax problem (the bytes are not a parseable R4 resource:
// HTTP 400) from a rule problem (a parseable resource that breaks a rule of
// the specification: HTTP 422).
type Class int

// The two classes of problem.
const (
	Syntax Class = iota
	Rule
)

// Issue is one problem found in a resource.
type Issue struct {
	Class Class
	// Code is the OperationOutcome issue type: structure, value, required,
	// invalid.
	Code string
	// Path is where the problem is, e.g. "Patient.name[0].given".
	Path    string
	Message string
}

// Problems is the error Check returns: every issue found.
type Problems []Issue

func (p Problems) Error() string {
	var msgs []string
	for _, is := range p {
		msgs = append(msgs, is.Path+": "+is.Message)
	}
	return strings.Join(msgs, "; ")
}

// Class is Rule when every issue is a rule issue, else Syntax.
func (p Problems) Class() Class {
	for _, is := range p {
		if is.Class == Syntax {
			return Syntax
		}
	}
	return Rule
}

var (
	once   sync.Once
	parser *jsonformat.Unmarshaller
	errNew error
)

func unmarshaller() (*jsonformat.Unmarshaller, error) {
	once.Do(func() {
		// With extended validation the library checks primitives, required
		// elements and reference types in one walk of the parsed message;
		// reporter classes each issue (syntax or rule) by what it says.
		parser, errNew = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	})
	return parser, errNew
}

// Check parses raw as an R4 resource and validates required elements and
// reference target types. It returns nil or Problems.
func Check(raw []byte) error {
	u, err := unmarshaller()
	if err != nil {
		return err
	}
	var problems Problems
	body, nested, err := liftParameterResources(raw)
	if err != nil {
		return Problems{{Class: Syntax, Code: "structure", Path: "Parameters", Message: err.Error()}}
	}
	for _, n := range nested {
		if err := Check(n.raw); err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				return err
			}
			for _, p := range ps {
				// "Patient.name[0]" inside parameter[2] becomes
				// "Parameters.parameter[2].resource.name[0]".
				_, rest, found := strings.Cut(p.Path, ".")
				p.Path = n.path
				if found {
					p.Path += "." + rest
				}
				problems = append(problems, p)
			}
		}
	}
	rep := &reporter{}
	if _, err := u.UnmarshalWithErrorReporter(body, rep); err != nil {
		return append(problems, fromLibraryError(err)...)
	}
	if problems = append(problems, rep.issues...); len(problems) > 0 {
		return problems
	}
	return nil
}

// reporter collects the library's validation reports: a primitive with a
// wrong format is a syntax issue, a missing required element or a
// reference to a type the element does not allow a rule issue.
type reporter struct {
	issues Problems
}

func (r *reporter) ReportValidationError(path string, err error) error {
	class, code := Syntax, "value"
	msg := err.Error()
	if strings.Contains(msg, "missing required field") {
		class, code = Rule, "required"
	} else if strings.Contains(msg, "invalid reference") {
		class, code = Rule, "invalid"
	}
	r.issues = append(r.issues, Issue{Class: class, Code: code, Path: path, Message: stripPrefix(msg)})
	return nil
}

func (r *reporter) ReportValidationWarning(string, error) error { return nil }

// fromLibraryError turns the library's error list into issues. The
// library's error types live in an internal package, so their exported
// fields (Path, Details, Diagnostics) are read by reflection; Diagnostics
// carries the offending name or value, which the library leaves out of
// Error() to keep data out of logs. Our issues go to the client that sent
// the data, never to logs.
func fromLibraryError(err error) Problems {
	var out Problems
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		v = reflect.ValueOf([]error{err})
	}
	if v.Kind() != reflect.Slice {
		return Problems{classify(Issue{Message: err.Error()})}
	}
	for i := 0; i < v.Len(); i++ {
		e := v.Index(i)
		if e.Kind() == reflect.Interface {
			e = e.Elem()
		}
		if e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() != reflect.Struct {
			out = append(out, classify(Issue{Message: fmt.Sprint(v.Index(i).Interface())}))
			continue
		}
		is := Issue{Path: stringField(e, "Path"), Message: stringField(e, "Details")}
		if d := stringField(e, "Diagnostics"); d != "" {
			if is.Message == "unknown field" && is.Path != "" {
				is.Path += "." + strings.Trim(d, `"`)
			}
			is.Message += " " + d
		}
		out = append(out, classify(is))
	}
	return out
}

func stringField(v reflect.Value, name string) string {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

// classify sets an issue's class and code from the library's message.
func classify(is Issue) Issue {
	is.Class, is.Code = Syntax, "structure"
	switch {
	case strings.Contains(is.Message, "missing required field"):
		is.Class, is.Code = Rule, "required"
	case strings.Contains(is.Message, "invalid reference"):
		is.Class, is.Code = Rule, "invalid"
	case strings.HasPrefix(is.Message, "expected"), strings.Contains(is.Message, "invalid"):
		is.Code = "value"
	}
	return is
}

func stripPrefix(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "error at \""); ok {
		if i := strings.Index(rest, "\": "); i >= 0 {
			return rest[i+3:]
		}
	}
	return msg
}

type nestedResource struct {
	path string
	raw  []byte
}

// liftParameterResources works around google/fhir v0.7.4 rejecting every
// Parameters.parameter.resource (and parameter.part.resource) as an "unknown
// field" although R4 defines it (Resource, 0..1). The resources are taken out
// and checked on their own; the rest of the Parameters is checked without
// them. Other resource types pass through unchanged.
func liftParameterResources(raw []byte) ([]byte, []nestedResource, error) {
	if !bytes.Contains(raw, []byte(`"Parameters"`)) {
		return raw, nil, nil // cheap: most resources are not Parameters
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(raw, &head) != nil || head.ResourceType != "Parameters" {
		return raw, nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return raw, nil, nil // the parser will report the syntax error
	}
	params, ok := top["parameter"]
	if !ok {
		return raw, nil, nil
	}
	var nested []nestedResource
	lifted, err := liftFrom(params, "Parameters.parameter", &nested)
	if err != nil {
		return nil, nil, err
	}
	top["parameter"] = lifted
	out, err := json.Marshal(top)
	return out, nested, err
}

func liftFrom(list json.RawMessage, path string, nested *[]nestedResource) (json.RawMessage, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return list, nil // not an array of objects: leave it for the parser to report
	}
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if r, ok := it["resource"]; ok {
			*nested = append(*nested, nestedResource{path: p + ".resource", raw: r})
			delete(it, "resource")
		}
		if parts, ok := it["part"]; ok {
			lifted, err := liftFrom(parts, p+".part", nested)
			if err != nil {
				return nil, err
			}
			it["part"] = lifted
		}
	}
	return json.Marshal(items)
}
