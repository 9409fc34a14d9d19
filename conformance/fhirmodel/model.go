// Package fhirmodel is the FHIR R4 4.0.1 type model: every resource, complex
// and primitive type with its base, and every element with its types,
// cardinality, choice and summary flags. r4model.json is generated from the
// official StructureDefinitions by `make spec` (./gen) and embedded. The
// FHIRPath engine navigates resources with it; validation and search build
// on it.
package fhirmodel

import (
	_ "embed"
	"encoding/json"
	"strings"
	"sync"
)

//go:embed r4model.json
var r4JSON []byte

// Type is a type of the model.
type Type struct {
	Kind     string `json:"kind"` // resource, complex-type or primitive-type
	Base     string `json:"base,omitempty"`
	Abstract bool   `json:"abstract,omitempty"`
}

// Element is an element definition, keyed by its path without [x]
// ("Observation.value").
type Element struct {
	Types   []string `json:"t,omitempty"`
	Choice  bool     `json:"choice,omitempty"`
	Many    bool     `json:"many,omitempty"`
	Min     int      `json:"min,omitempty"`
	Summary bool     `json:"summary,omitempty"`
	// Ref is the path of the element whose definition this one reuses
	// (contentReference, as Questionnaire.item.item uses Questionnaire.item).
	Ref string `json:"ref,omitempty"`
	// ChoiceNames are, for a choice element, the JSON names of its types
	// in the order of Types ("valueQuantity", ...), and ChoiceExtNames the
	// names of their primitive extension objects ("_valueQuantity"): set
	// when the model loads, so navigation does not build them each time.
	ChoiceNames    []string `json:"-"`
	ChoiceExtNames []string `json:"-"`
}

// Model is a FHIR type model.
type Model struct {
	// Version is the FHIR version the model describes.
	Version  string             `json:"fhirVersion"`
	Types    map[string]Type    `json:"types"`
	Elements map[string]Element `json:"elements"`
}

var (
	r4     *Model
	r4Once sync.Once
)

// R4 returns the embedded R4 4.0.1 model.
func R4() *Model {
	r4Once.Do(func() {
		r4 = &Model{}
		if err := json.Unmarshal(r4JSON, r4); err != nil {
			panic("fhirmodel: embedded r4model.json is corrupt: " + err.Error())
		}
		r4.nameChoices()
	})
	return r4
}

// Child returns the definition of element name of the type (or backbone
// path) typ, and the path by which its own children are found: the
// element's type for a named type, or the element's path for an inline
// backbone element (following contentReference).
func (m *Model) Child(typ, name string) (Element, bool) {
	el, ok := m.Elements[typ+"."+name]
	if !ok {
		if base, isType := m.Types[typ]; isType && base.Base != "" && m.Types[base.Base].Kind != "" {
			return m.Child(base.Base, name)
		}
		return Element{}, false
	}
	if el.Ref != "" {
		ref := m.Elements[el.Ref]
		ref.Many = el.Many
		ref.Min = el.Min
		ref.Ref = el.Ref
		return ref, true
	}
	return el, true
}

// NodeType is the type name under which an element's children are looked
// up: its declared type, or its path when it is an inline BackboneElement or
// Element.
func (m *Model) NodeType(typ, name string, el Element, declared string) string {
	if declared == "BackboneElement" || declared == "Element" {
		if el.Ref != "" {
			return el.Ref
		}
		return typ + "." + name
	}
	return declared
}

// IsA reports whether typ is base or derives from it. Backbone paths
// ("Observation.component") derive from BackboneElement.
func (m *Model) IsA(typ, base string) bool {
	for typ != "" {
		if typ == base {
			return true
		}
		t, ok := m.Types[typ]
		if !ok {
			if strings.Contains(typ, ".") {
				typ = "BackboneElement"
				continue
			}
			return false
		}
		typ = t.Base
	}
	return false
}

// IsPrimitive reports whether typ is a FHIR primitive type.
func (m *Model) IsPrimitive(typ string) bool { return m.Types[typ].Kind == "primitive-type" }

// IsResource reports whether typ is a resource type (abstract or not).
func (m *Model) IsResource(typ string) bool { return m.Types[typ].Kind == "resource" }

// nameChoices fills ChoiceNames and ChoiceExtNames of the choice elements.
func (m *Model) nameChoices() {
	for path, el := range m.Elements {
		if !el.Choice {
			continue
		}
		name := path[strings.LastIndexByte(path, '.')+1:]
		for _, t := range el.Types {
			key := name + strings.ToUpper(t[:1]) + t[1:]
			el.ChoiceNames = append(el.ChoiceNames, key)
			el.ChoiceExtNames = append(el.ChoiceExtNames, "_"+key)
		}
		m.Elements[path] = el
	}
}
