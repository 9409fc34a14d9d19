package search

import (
	_ "embed"
	"encoding/json"
	"sort"
	"sync"
)

//go:embed r4patientcompartment.json
var patientCompartmentJSON []byte

// PatientCompartmentURL is the CompartmentDefinition the compartment search
// and Patient/$everything follow.
const PatientCompartmentURL = "http://hl7.org/fhir/CompartmentDefinition/patient"

// compartmentParam is the index parameter that records which patients'
// compartments a resource is in (computed at write time from the official
// Patient CompartmentDefinition).
const compartmentParam = "_compartment"

var (
	patientCompartment     map[string][]string
	patientCompartmentOnce sync.Once
)

func compartmentMembers() map[string][]string {
	patientCompartmentOnce.Do(func() {
		var def struct {
			Resources map[string][]string `json:"resources"`
		}
		if err := json.Unmarshal(patientCompartmentJSON, &def); err != nil {
			panic("search: embedded r4patientcompartment.json is corrupt: " + err.Error())
		}
		patientCompartment = def.Resources
	})
	return patientCompartment
}

// InPatientCompartment reports whether resources of typ can be in a
// patient's compartment.
func InPatientCompartment(typ string) bool {
	_, ok := compartmentMembers()[typ]
	return ok || typ == "Patient"
}

// PatientCompartmentTypes lists the types that can be in a patient's
// compartment, sorted.
func PatientCompartmentTypes() []string {
	var out []string
	for t := range compartmentMembers() {
		out = append(out, t)
	}
	if !contains(out, "Patient") {
		out = append(out, "Patient")
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compartmentRows adds, for every reference row that puts the resource in
// a patient's compartment, a row of the _compartment parameter.
func compartmentRows(typ string, rows []Row) []Row {
	params := compartmentMembers()[typ]
	var out []Row
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Sys != "Patient" || r.Raw == "#identifier" || !contains(params, r.Param) || seen[r.Val] {
			continue
		}
		seen[r.Val] = true
		out = append(out, Row{Param: compartmentParam, Sys: "Patient", Val: r.Val})
	}
	return out
}

// Compartment restricts a search to one patient's compartment.
type Compartment struct {
	PatientID string
}
