package rest

import (
	"context"
	"net/http"

	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/spec"
	"github.com/promsgateway/gateway/fhir/store"
)

type capabilityStatement struct {
	ResourceType   string           `json:"resourceType"`
	Status         string           `json:"status"`
	Date           string           `json:"date"`
	Publisher      string           `json:"publisher"`
	Kind           string           `json:"kind"`
	Software       map[string]any   `json:"software"`
	Implementation map[string]any   `json:"implementation"`
	FHIRVersion    string           `json:"fhirVersion"`
	Format         []string         `json:"format"`
	PatchFormat    []string         `json:"patchFormat"`
	Rest           []capabilityRest `json:"rest"`
}

type capabilityRest struct {
	Mode        string               `json:"mode"`
	Resource    []capabilityResource `json:"resource"`
	Interaction []code               `json:"interaction"`
	Compartment []string             `json:"compartment,omitempty"`
	Operation   []capabilityOp       `json:"operation,omitempty"`
}

type capabilityResource struct {
	Type              string            `json:"type"`
	Interaction       []code            `json:"interaction"`
	SearchInclude     []string          `json:"searchInclude,omitempty"`
	SearchRevInclude  []string          `json:"searchRevInclude,omitempty"`
	SearchParam       []capabilityParam `json:"searchParam,omitempty"`
	Operation         []capabilityOp    `json:"operation,omitempty"`
	Versioning        string            `json:"versioning,omitempty"`
	ReadHistory       bool              `json:"readHistory"`
	UpdateCreate      bool              `json:"updateCreate"`
	ConditionalCreate bool              `json:"conditionalCreate"`
	ConditionalRead   string            `json:"conditionalRead,omitempty"`
	ConditionalUpdate bool              `json:"conditionalUpdate"`
	ConditionalDelete string            `json:"conditionalDelete,omitempty"`
}

type capabilityOp struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

type capabilityParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

type code struct {
	Code string `json:"code"`
}

// capabilities: GET [base]/metadata (R4 3.1.0.13). The statement is derived
// from the route table, so it claims exactly what the server does.
func (s *Server) capabilities(ctx context.Context, _ store.Reader, r *Request) (*Response, error) {
	return &Response{Status: http.StatusOK, Body: marshal(s.capabilityStatement(r.Base))}, nil
}

func (s *Server) capabilityStatement(base string) capabilityStatement {
	var typeCodes, systemCodes []code
	has := map[string]bool{}
	for _, rt := range s.routes {
		key := rt.interaction
		if rt.conditional {
			key = "conditional-" + key
		}
		if has[key] {
			continue
		}
		has[key] = true
		switch {
		case rt.bundle:
			systemCodes = append(systemCodes, code{"transaction"}, code{"batch"})
		case rt.interaction == "search-compartment", rt.interaction == "operation":
			// declared as rest.compartment and resource.operation below
		case rt.interaction == "capabilities":
			// implied by the statement itself; not an interaction code
		case rt.level == systemLevel:
			systemCodes = append(systemCodes, code{rt.interaction})
		case !rt.conditional:
			typeCodes = append(typeCodes, code{rt.interaction})
		}
	}
	template := capabilityResource{
		Interaction:       typeCodes,
		ReadHistory:       has["vread"] && has["history-instance"],
		UpdateCreate:      has["update"] && s.cfg.UpdateCreate,
		ConditionalCreate: has["create"], // create evaluates If-None-Exist
		ConditionalUpdate: has["conditional-update"],
	}
	if has["update"] {
		template.Versioning = "versioned-update" // update honours If-Match
	}
	if has["read"] {
		template.ConditionalRead = "full-support" // If-None-Match and If-Modified-Since
	}
	if has["conditional-delete"] {
		template.ConditionalDelete = "single"
		if s.cfg.ConditionalDeleteMultiple {
			template.ConditionalDelete = "multiple"
		}
	}
	rest := capabilityRest{Mode: "server", Interaction: systemCodes}
	if has["operation"] {
		for _, r := range s.routes {
			if r.operation == "reidentify" {
				rest.Operation = append(rest.Operation, capabilityOp{Name: "reidentify", Definition: ReidentifyDefinition})
			}
		}
	}
	if has["search-compartment"] {
		rest.Compartment = []string{search.PatientCompartmentURL}
	}
	revIncludes := map[string][]string{}
	if has["search-type"] {
		for _, t := range spec.ResourceTypes() {
			for _, p := range s.registry.ForType(t) {
				if p.Type != "reference" || !p.Indexed() {
					continue
				}
				for _, target := range p.Target {
					revIncludes[target] = append(revIncludes[target], t+":"+p.Code)
				}
			}
		}
	}
	for _, t := range spec.ResourceTypes() {
		rc := template
		rc.Type = t
		if has["search-type"] {
			// Exactly the parameters the index serves, with the modifiers
			// and prefixes search.Parse accepts (see fhir/search).
			for _, p := range s.registry.ForType(t) {
				if !p.Indexed() && p.Code != "_lastUpdated" {
					continue
				}
				rc.SearchParam = append(rc.SearchParam, capabilityParam{Name: p.Code, Definition: p.URL, Type: p.Type, Documentation: search.ParamDocumentation(t, p.Code, p.Type)})
				if p.Type == "reference" {
					rc.SearchInclude = append(rc.SearchInclude, t+":"+p.Code)
				}
			}
			if len(rc.SearchInclude) > 0 {
				rc.SearchInclude = append(rc.SearchInclude, "*")
			}
			rc.SearchRevInclude = revIncludes[t]
		}
		for _, r := range s.routes {
			if r.operation == "everything" && t == "Patient" {
				rc.Operation = append(rc.Operation, capabilityOp{Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything"})
			}
		}
		rest.Resource = append(rest.Resource, rc)
	}
	return capabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           resource.Instant(s.started),
		Publisher:      "PROMs FHIR gateway",
		Kind:           "instance",
		Software:       map[string]any{"name": "PROMs FHIR gateway", "version": s.cfg.SoftwareVersion},
		Implementation: map[string]any{"description": "FHIR R4 gateway for PROMs data", "url": base},
		FHIRVersion:    spec.Version,
		Format:         []string{"application/fhir+json", "json"},
		PatchFormat:    []string{"application/json-patch+json"},
		Rest:           []capabilityRest{rest},
	}
}
