package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/pseudonym"
)

// Reidentifier links a pseudonym back to its patient with a key holder's
// credential (vault/pseudonym.Service).
type Reidentifier interface {
	Reidentify(ctx context.Context, credential, domain, code string) (patient, holder string, err error)
}

// KeyHolderHeader carries the key holder's own credential (their Vault
// token) to $reidentify. It is used for that one call and never logged or
// stored.
const KeyHolderHeader = "X-Key-Holder-Token"

// ReidentifyDefinition is the canonical URL of the $reidentify operation.
const ReidentifyDefinition = "urn:promsgateway:OperationDefinition:reidentify"

// EnableReidentify offers POST [base]/$reidentify, backed by r. Call it
// before Handler; the CapabilityStatement then lists the operation.
func (s *Server) EnableReidentify(r Reidentifier) {
	s.reidentifier = r
	s.routes = s.routeTable()
}

// reidentify: POST [base]/$reidentify with a Parameters body (domain,
// pseudonym) and the key holder's credential in X-Key-Holder-Token. The key
// service decides whether that holder may open the domain's escrows; the
// gateway's own credential never can. Every call, allowed or not, is
// recorded as an AuditEvent, and no patient is returned unless its
// AuditEvent was stored.
func (s *Server) reidentify(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	if db != store.Reader(s.store) {
		return nil, outcome.New(outcome.Invalid, "$reidentify cannot run inside a Bundle: it records its own AuditEvent")
	}
	domain, code, perr := reidentifyParams(r.Body)
	var patient, holder string
	err := perr
	if err == nil {
		patient, holder, err = s.reidentifier.Reidentify(ctx, r.Header.Get(KeyHolderHeader), domain, code)
	}
	if holder == "" {
		holder = "unidentified caller"
	}
	auditID, aerr := s.audit(ctx, r, holder, domain, code, patient, err)
	if aerr != nil {
		return nil, outcome.Wrap(outcome.Unavailable, aerr, "the re-identification could not be recorded, so its result is withheld")
	}
	switch {
	case perr != nil:
		return nil, perr
	case errors.Is(err, vault.ErrDenied):
		return nil, outcome.New(outcome.Forbidden, "the key holder credential may not re-identify in domain %s (recorded as AuditEvent/%s)", domain, auditID)
	case errors.Is(err, pseudonym.ErrUnknown):
		return nil, outcome.New(outcome.NotFound, "no patient has pseudonym %s in domain %s (recorded as AuditEvent/%s)", code, domain, auditID)
	case errors.Is(err, pseudonym.ErrDomain), errors.Is(err, pseudonym.ErrCode):
		return nil, outcome.New(outcome.Invalid, "%v", err)
	case err != nil:
		return nil, storeError(err)
	}
	out := map[string]any{"resourceType": "Parameters", "parameter": []map[string]any{
		{"name": "patient", "valueReference": map[string]string{"reference": patient}},
		{"name": "audit", "valueReference": map[string]string{"reference": "AuditEvent/" + auditID}},
	}}
	return &Response{Status: http.StatusOK, Body: marshal(out)}, nil
}

// reidentifyParams reads domain and pseudonym from a Parameters body.
func reidentifyParams(body []byte) (domain, code string, err error) {
	var p struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name        string  `json:"name"`
			ValueString *string `json:"valueString"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ResourceType != "Parameters" {
		return "", "", outcome.New(outcome.Invalid, "$reidentify takes a Parameters resource with domain and pseudonym (valueString)")
	}
	for _, q := range p.Parameter {
		if q.ValueString == nil {
			continue
		}
		switch q.Name {
		case "domain":
			domain = *q.ValueString
		case "pseudonym":
			code = *q.ValueString
		}
	}
	if domain == "" || code == "" {
		return "", "", outcome.New(outcome.Invalid, "$reidentify needs the parameters domain and pseudonym (valueString)")
	}
	return domain, code, nil
}

// audit stores the AuditEvent of one $reidentify call and returns its id.
func (s *Server) audit(ctx context.Context, r *Request, holder, domain, code, patient string, result error) (string, error) {
	outcomeCode, desc := "0", "re-identified"
	switch {
	case errors.Is(result, vault.ErrDenied):
		outcomeCode, desc = "4", "refused by the key holder's policy"
	case result != nil:
		outcomeCode, desc = "4", result.Error()
	}
	entities := []map[string]any{}
	if domain != "" && code != "" {
		entities = append(entities, map[string]any{
			"what":        map[string]any{"identifier": map[string]string{"system": "urn:promsgateway:pseudonym:" + domain, "value": code}},
			"description": "pseudonym in domain " + domain,
		})
	}
	if patient != "" {
		entities = append(entities, map[string]any{
			"what": map[string]string{"reference": patient},
			"role": map[string]string{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
		})
	}
	event := map[string]any{
		"resourceType": "AuditEvent",
		"type":         map[string]string{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"},
		"subtype":      []map[string]string{{"system": "http://hl7.org/fhir/restful-interaction", "code": "operation", "display": "$reidentify"}},
		"action":       "E",
		"recorded":     resource.Instant(time.Now()),
		"outcome":      outcomeCode,
		"outcomeDesc":  desc,
		"purposeOfEvent": []map[string]any{{"coding": []map[string]string{
			{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH", "display": "healthcare research"}}}},
		"agent": []map[string]any{{
			"who":       map[string]string{"display": holder},
			"requestor": true,
		}},
		"source": map[string]any{"observer": map[string]string{"display": "PROMs FHIR gateway"}},
		"entity": entities,
	}
	if len(entities) == 0 {
		delete(event, "entity")
	}
	body, _, err := s.checkResource(marshal(event), "AuditEvent")
	if err != nil {
		return "", err
	}
	index, err := s.indexRows(ctx, "AuditEvent", body)
	if err != nil {
		return "", err
	}
	id := newID("AuditEvent")
	err = s.store.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "AuditEvent", ID: id, Body: body, Method: http.MethodPost, NewID: true, Index: index})
		return err
	})
	return id, err
}
