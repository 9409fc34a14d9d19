package fhirpath

import (
	"bytes"
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
}

// EvalError is an expression that failed while running (FHIRPath's
// execution errors, such as a singleton expected and several found).
type EvalError struct{ Msg string }

func (e *EvalError) Error() string { return "FHIRPath evaluation error: " + e.Msg }

func evalErrorf(format string, args ...any) error {
	return &EvalError{Msg: fmt.Sprintf(format, args...)}
}

// ParseResource decodes a FHIR JSON resource into a Node.
func ParseResource(raw []byte) (*Node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
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

// maxSteps bounds the work one evaluation may do (repeat() over a cycle,
// pathological inputs).
const maxSteps = 5_000_000

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
			return ev.rootMember(input, n.name), nil
		}
		target, err := ev.eval(n.target, input, fr)
		if err != nil {
			return nil, err
		}
		var out Collection
		for _, item := range target {
			out = append(out, ev.children(item, n.name)...)
		}
		return out, nil
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
		if len(x) > 1 {
			return nil, evalErrorf("%s needs a single value", n.op)
		}
		if n.op == "is" {
			return Collection{Boolean(ev.isType(x[0], n.typ))}, nil
		}
		if ev.isType(x[0], n.typ) {
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
func (ev *evaluator) rootMember(input Collection, name string) Collection {
	var out Collection
	for _, item := range input {
		if n, ok := item.(*Node); ok && name != "" && unicode.IsUpper(rune(name[0])) && ev.model.IsA(n.Type, name) {
			out = append(out, item)
			continue
		}
		out = append(out, ev.children(item, name)...)
	}
	return out
}

// children navigates from a node to its child elements called name.
func (ev *evaluator) children(item Value, name string) Collection {
	n, ok := item.(*Node)
	if !ok {
		return nil
	}
	m, isObject := n.JSON.(map[string]any)
	if !isObject {
		// A primitive's id and extensions live in its "_name" object.
		if n.Ext != nil {
			switch name {
			case "extension":
				return ev.nodes(n.Ext["extension"], nil, "Extension")
			case "id":
				return ev.nodes(n.Ext["id"], nil, "string")
			}
		}
		return nil
	}
	typ := n.Type
	el, found := ev.model.Child(typ, name)
	if found && el.Choice {
		var out Collection
		for _, t := range el.Types {
			key := name + upperFirst(t)
			if v, ok := m[key]; ok {
				out = append(out, ev.nodes(v, m["_"+key], t)...)
			} else if x, ok := m["_"+key]; ok {
				out = append(out, ev.nodes(nil, x, t)...)
			}
		}
		return out
	}
	v, has := m[name]
	ext, hasExt := m["_"+name]
	if !has && !hasExt {
		return nil
	}
	declared := "Element"
	if found {
		if len(el.Types) > 0 {
			declared = el.Types[0]
		}
		declared = ev.model.NodeType(typ, name, el, declared)
	}
	return ev.nodes(v, ext, declared)
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
func (ev *evaluator) isType(v Value, typ string) bool {
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
		return ev.model.IsA(name, want)
	}
	if wantNS == "FHIR" {
		return false
	}
	return name == want || want == "Any"
}
