package fhirpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/promsgateway/gateway/conformance/fhirmodel"
)

// Environment is what an evaluation can see beyond its input.
type Environment struct {
	// Model types the resource; nil means the R4 model.
	Model *fhirmodel.Model
	// Resource is %resource and %context (and %rootResource).
	Resource *Node
	// Vars are further %variables by name (without %).
	Vars map[string]Collection
	// Resolve finds the resource a reference points to, for resolve();
	// nil makes resolve() find only contained resources and Bundle entries.
	Resolve func(reference string) *Node
	// Now fixes now(), today() and timeOfDay(); zero means the clock.
	Now time.Time
	// Lenient lets "as" filter a collection of several items, as the R4
	// SearchParameter expressions expect (Composition.relatesTo.target as
	// Identifier); strict FHIRPath makes that an error.
	Lenient bool
}

// EvalError is an expression that failed while running (FHIRPath's
// execution errors, such as a singleton expected and several found).
type EvalError struct{ Msg string }

func (e *EvalError) Error() string { return "FHIRPath evaluation error: " + e.Msg }

func evalErrorf(format string, args ...any) error {
	return &EvalError{Msg: fmt.Sprintf(format, args...)}
}

// ParseResource decodes a FHIR JSON resource into a Node. raw must be one
// JSON object, with nothing after it but white space.
func ParseResource(raw []byte) (*Node, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	v, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("not a FHIR resource: not a JSON object")
	}
	rt, _ := v["resourceType"].(string)
	if rt == "" {
		return nil, errors.New("not a FHIR resource: no resourceType")
	}
	return &Node{Type: rt, JSON: v}, nil
}

// Evaluate runs the expression on input, which is usually the resource.
func (e *Expression) Evaluate(env *Environment, input Collection) (Collection, error) {
	if env == nil {
		env = &Environment{}
	}
	ev := &evaluator{env: env, model: env.Model}
	if ev.model == nil {
		ev.model = fhirmodel.R4()
	}
	if env.Now.IsZero() {
		ev.now = time.Now()
	} else {
		ev.now = env.Now
	}
	var this Value
	if len(input) == 1 {
		this = input[0]
	}
	return ev.eval(e.root, input, &frame{this: this})
}

type evaluator struct {
	env   *Environment
	model *fhirmodel.Model
	now   time.Time
	steps int
}

// frame holds $this, $index and $total for the function being evaluated.
type frame struct {
	this     Value
	index    int
	total    Value
	hasTotal bool
}

// maxSteps bounds the work one evaluation may do (pathological inputs).
const maxSteps = 1_000_000

func (ev *evaluator) eval(n node, input Collection, fr *frame) (Collection, error) {
	ev.steps++
	if ev.steps > maxSteps {
		return nil, evalErrorf("evaluation exceeded %d steps", maxSteps)
	}
	switch n := n.(type) {
	case *literalNode:
		return n.val, nil
	case *memberNode:
		if n.target == nil {
			return ev.rootMember(input, n.name)
		}
		target, err := ev.eval(n.target, input, fr)
		if err != nil {
			return nil, err
		}
		return ev.navigate(target, n.name)
	case *functionNode:
		target := input
		if n.target != nil {
			var err error
			if target, err = ev.eval(n.target, input, fr); err != nil {
				return nil, err
			}
		}
		return ev.call(n, target, input, fr)
	case *indexNode:
		target, err := ev.eval(n.target, input, fr)
		if err != nil {
			return nil, err
		}
		idx, err := ev.eval(n.index, input, fr)
		if err != nil {
			return nil, err
		}
		i, ok, err := integerArg(idx)
		if err != nil || !ok {
			return nil, err
		}
		if i < 0 || int(i) >= len(target) {
			return Collection{}, nil
		}
		return Collection{target[i]}, nil
	case *binaryNode:
		return ev.binary(n, input, fr)
	case *unaryNode:
		x, err := ev.eval(n.x, input, fr)
		if err != nil {
			return nil, err
		}
		if n.op == "+" {
			return x, nil
		}
		if len(x) == 0 {
			return x, nil
		}
		if len(x) > 1 {
			return nil, evalErrorf("unary - needs a single value")
		}
		switch v := system(x[0]).(type) {
		case Integer:
			return Collection{-v}, nil
		case Decimal:
			return Collection{Decimal{r: new(bigRat).Neg(v.r), scale: v.scale}}, nil
		case Quantity:
			return Collection{Quantity{Value: Decimal{r: new(bigRat).Neg(v.Value.r), scale: v.Value.scale}, Unit: v.Unit}}, nil
		}
		return nil, evalErrorf("unary - needs a number or quantity")
	case *typeNode:
		x, err := ev.eval(n.x, input, fr)
		if err != nil {
			return nil, err
		}
		if len(x) == 0 {
			return Collection{}, nil
		}
		if len(x) > 1 && n.op == "as" && ev.env.Lenient {
			out := Collection{}
			for _, item := range x {
				if ok, err := ev.isTypeChecked(item, n.typ, true); err != nil {
					return nil, err
				} else if ok {
					out = append(out, item)
				}
			}
			return out, nil
		}
		if len(x) > 1 {
			return nil, evalErrorf("%s needs a single value", n.op)
		}
		ok, err := ev.isTypeChecked(x[0], n.typ, n.op == "as")
		if err != nil {
			return nil, err
		}
		if n.op == "is" {
			return Collection{Boolean(ok)}, nil
		}
		if ok {
			return x, nil
		}
		return Collection{}, nil
	case *varNode:
		switch n.name {
		case "$this":
			if fr.this == nil {
				return input, nil
			}
			return Collection{fr.this}, nil
		case "$index":
			return Collection{Integer(fr.index)}, nil
		case "$total":
			if !fr.hasTotal {
				return nil, evalErrorf("$total outside aggregate()")
			}
			if fr.total == nil {
				return Collection{}, nil
			}
			return Collection{fr.total}, nil
		}
	case *envNode:
		return ev.envVar(n.name)
	}
	return nil, evalErrorf("unsupported expression node %T", n)
}

func (ev *evaluator) envVar(name string) (Collection, error) {
	if v, ok := ev.env.Vars[name]; ok {
		return v, nil
	}
	switch name {
	case "resource", "context", "rootResource":
		if ev.env.Resource == nil {
			return Collection{}, nil
		}
		return Collection{ev.env.Resource}, nil
	case "ucum":
		return Collection{String("http://unitsofmeasure.org")}, nil
	case "sct":
		return Collection{String("http://snomed.info/sct")}, nil
	case "loinc":
		return Collection{String("http://loinc.org")}, nil
	}
	if rest, ok := strings.CutPrefix(name, "vs-"); ok {
		return Collection{String("http://hl7.org/fhir/ValueSet/" + rest)}, nil
	}
	if rest, ok := strings.CutPrefix(name, "ext-"); ok {
		return Collection{String("http://hl7.org/fhir/StructureDefinition/" + rest)}, nil
	}
	return nil, evalErrorf("unknown environment variable %%%s", name)
}

// rootMember resolves a name at the start of a path: a type name matching
// the input ("Patient.name" on a Patient) selects the input itself;
// anything else is a child element.
func (ev *evaluator) rootMember(input Collection, name string) (Collection, error) {
	var out Collection
	for _, item := range input {
		if n, ok := item.(*Node); ok && name != "" && unicode.IsUpper(rune(name[0])) {
			if ev.model.IsA(n.Type, name) {
				out = append(out, item)
				continue
			}
			if ev.model.IsResource(name) {
				return nil, &SemanticError{Msg: fmt.Sprintf("%s does not apply to a %s", name, n.Type)}
			}
		}
		c, err := ev.navigate(Collection{item}, name)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// navigate takes every item's children called name. An unknown name is a
// semantic error when the items are all of one type; in a mixed collection
// (from children(), descendants() or repeat()) it just selects nothing.
func (ev *evaluator) navigate(target Collection, name string) (Collection, error) {
	var out Collection
	var semantic error
	types := map[string]bool{}
	for _, item := range target {
		if n, ok := item.(*Node); ok {
			types[n.Type] = true
		}
		c, err := ev.children(item, name)
		var se *SemanticError
		if errors.As(err, &se) {
			semantic = err
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	if semantic != nil && len(types) == 1 && len(out) == 0 {
		return nil, semantic
	}
	return out, nil
}

// SemanticError is an expression that cannot apply to the model, such as
// a path to an element the type does not have.
type SemanticError struct{ Msg string }

func (e *SemanticError) Error() string { return "FHIRPath semantic error: " + e.Msg }

// children navigates from a node to its child elements called name. A name
// the node's type does not define is a semantic error.
func (ev *evaluator) children(item Value, name string) (Collection, error) {
	n, ok := item.(*Node)
	if !ok {
		return nil, nil
	}
	m, isObject := n.JSON.(map[string]any)
	if !isObject {
		// A primitive's id and extensions live in its "_name" object.
		switch name {
		case "extension":
			if n.Ext == nil {
				return nil, nil
			}
			return ev.nodes(n.Ext["extension"], nil, "Extension"), nil
		case "id":
			if n.Ext == nil {
				return nil, nil
			}
			return ev.nodes(n.Ext["id"], nil, "string"), nil
		case "value":
			return nil, nil
		}
		if ev.model.IsPrimitive(n.Type) {
			return nil, &SemanticError{Msg: fmt.Sprintf("a %s has no element %q", n.Type, name)}
		}
		return nil, nil
	}
	typ := n.Type
	el, found := ev.model.Child(typ, name)
	if !found && ev.knownType(typ) {
		return nil, &SemanticError{Msg: fmt.Sprintf("%s has no element %q", typ, name)}
	}
	if !found {
		// A structure outside the model (TypeInfo): plain JSON values.
		return plain(m[name]), nil
	}
	if found && el.Choice {
		var out Collection
		for i, t := range el.Types {
			var key, extKey string
			if i < len(el.ChoiceNames) {
				key, extKey = el.ChoiceNames[i], el.ChoiceExtNames[i]
			} else { // a model built without R4()
				key = name + upperFirst(t)
				extKey = "_" + key
			}
			if v, ok := m[key]; ok {
				out = append(out, ev.nodes(v, m[extKey], t)...)
			} else if x, ok := m[extKey]; ok {
				out = append(out, ev.nodes(nil, x, t)...)
			}
		}
		return out, nil
	}
	v, has := m[name]
	ext, hasExt := m["_"+name]
	if !has && !hasExt {
		return nil, nil
	}
	declared := "Element"
	if found {
		if len(el.Types) > 0 {
			declared = el.Types[0]
		}
		declared = ev.model.NodeType(typ, name, el, declared)
	}
	return ev.nodes(v, ext, declared), nil
}

// knownType reports whether typ is a type (or backbone path) of the model.
func (ev *evaluator) knownType(typ string) bool {
	if _, ok := ev.model.Types[typ]; ok {
		return true
	}
	_, ok := ev.model.Elements[typ]
	return ok
}

// plain converts JSON outside the model to System values.
func plain(v any) Collection {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return Collection{String(x)}
	case bool:
		return Collection{Boolean(x)}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return Collection{Integer(i)}
		}
		d, err := ParseDecimal(string(x))
		if err != nil {
			return nil
		}
		return Collection{d}
	case []any:
		var out Collection
		for _, e := range x {
			out = append(out, plain(e)...)
		}
		return out
	}
	return Collection{&Node{Type: "Element", JSON: v}}
}

// nodes wraps a JSON value (an array or a single value) and its primitive
// extension object(s) as nodes of type typ.
func (ev *evaluator) nodes(v, ext any, typ string) Collection {
	arr, isArr := v.([]any)
	exts, _ := ext.([]any)
	if !isArr {
		if v == nil && ext == nil {
			return nil
		}
		e, _ := ext.(map[string]any)
		return Collection{ev.node(v, e, typ)}
	}
	out := make(Collection, 0, len(arr))
	for i, item := range arr {
		var e map[string]any
		if i < len(exts) {
			e, _ = exts[i].(map[string]any)
		}
		if item == nil && e == nil {
			continue
		}
		out = append(out, ev.node(item, e, typ))
	}
	return out
}

func (ev *evaluator) node(v any, ext map[string]any, typ string) *Node {
	if m, ok := v.(map[string]any); ok {
		if rt, ok := m["resourceType"].(string); ok && (typ == "Resource" || typ == "DomainResource" || ev.model.IsResource(typ)) {
			typ = rt
		}
	}
	return &Node{Type: typ, JSON: v, Ext: ext}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// isType implements is/as/ofType: FHIR types by FHIR name (with or without
// "FHIR."), System types by System name (with or without "System.").
var systemTypes = map[string]bool{"Boolean": true, "String": true, "Integer": true, "Decimal": true, "Date": true, "DateTime": true, "Time": true, "Quantity": true, "Any": true}

// isTypeChecked is isType that also reports a type name that names no
// type at all. exact makes FHIR primitives match only their own type: the
// FHIRPath suite has is(string) true for a code but as(string) and
// ofType(string) empty.
func (ev *evaluator) isTypeChecked(v Value, typ string, exact bool) (bool, error) {
	bare := strings.TrimPrefix(strings.TrimPrefix(typ, "FHIR."), "System.")
	if !systemTypes[bare] && !ev.knownType(bare) {
		return false, evalErrorf("unknown type %q", typ)
	}
	return ev.isTypeOf(v, typ, exact), nil
}

func (ev *evaluator) isTypeOf(v Value, typ string, exact bool) bool {
	ns, name := typeName(v)
	want := typ
	wantNS := ""
	if rest, ok := strings.CutPrefix(typ, "FHIR."); ok {
		want, wantNS = rest, "FHIR"
	} else if rest, ok := strings.CutPrefix(typ, "System."); ok {
		want, wantNS = rest, "System"
	}
	if ns == "FHIR" {
		if wantNS == "System" {
			return false
		}
		if exact && ev.model.IsPrimitive(name) {
			return name == want
		}
		return ev.model.IsA(name, want)
	}
	if wantNS == "FHIR" {
		return false
	}
	return name == want || want == "Any"
}
