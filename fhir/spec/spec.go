// Package spec holds the facts of FHIR R4 4.0.1 that the REST layer needs
// at run time: which resource types exist and which of their elements are in
// the summary view. It reads them from the R4 type model
// (conformance/fhirmodel), generated from the official HL7
// StructureDefinitions, so behaviour follows the specification's data
// rather than hand-written per-type code.
package spec

import (
	"sort"
	"strings"

	"github.com/promsgateway/gateway/conformance/fhirmodel"
)

// ResourceType describes one concrete R4 resource type.
type ResourceType struct {
	Name string
	// Summary lists the top-level elements marked isSummary in the base
	// definition; choice elements keep their [x]-less stem (e.g. "value").
	Summary []string
	choice  map[string]bool // summary stems that came from a [x] element
}

var (
	types map[string]*ResourceType
	names []string
	// Version is the FHIR version the definitions describe.
	Version string
)

func init() {
	m := fhirmodel.R4()
	Version = m.Version
	types = map[string]*ResourceType{}
	for name, t := range m.Types {
		if t.Kind == "resource" && !t.Abstract {
			types[name] = &ResourceType{Name: name, choice: map[string]bool{}}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for path, el := range m.Elements {
		typ, elem, _ := strings.Cut(path, ".")
		rt, ok := types[typ]
		if !ok || strings.Contains(elem, ".") || !el.Summary {
			continue
		}
		rt.Summary = append(rt.Summary, elem)
		rt.choice[elem] = el.Choice
	}
	for _, rt := range types {
		sort.Strings(rt.Summary)
	}
}

// Lookup returns the resource type called name (case-sensitive, as FHIR is).
func Lookup(name string) (*ResourceType, bool) {
	t, ok := types[name]
	return t, ok
}

// ResourceTypes returns the names of all concrete R4 resource types, sorted.
func ResourceTypes() []string { return append([]string(nil), names...) }

// InSummary reports whether the top-level JSON property key (e.g.
// "valueQuantity", "_birthDate") belongs to the summary view of t.
func (t *ResourceType) InSummary(key string) bool {
	key = strings.TrimPrefix(key, "_")
	for _, s := range t.Summary {
		if key == s {
			return true
		}
		// A choice element value[x] appears as valueQuantity, valueString, ...
		if rest, ok := strings.CutPrefix(key, s); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' && t.choice[s] {
			return true
		}
	}
	return false
}
