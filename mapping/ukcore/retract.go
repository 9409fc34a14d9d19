package ukcore

import (
	"bytes"
	"encoding/json"
)

// retractStatus is, per type the mapping makes, the element whose code
// entered-in-error says the resource should not have existed (R4 value
// sets of each status element).
var retractStatus = map[string]string{
	"Observation": "status", "QuestionnaireResponse": "status", "Procedure": "status",
	"Encounter": "status", "EpisodeOfCare": "status", "Consent": "status", "Appointment": "status",
	"ServiceRequest": "status", "Device": "status", "CareTeam": "status", "Goal": "lifecycleStatus",
}

// Retract marks a resource the mapping made, and a later version of its
// record no longer makes, as entered in error, so systems that copied it
// see the retraction, as they see a comorbidity the patient took back: a
// status of entered-in-error, and for a Condition that verification status
// without a clinical status or abatement (con-5, con-4). ok is false for
// the types that have no such status (RelatedPerson, BodyStructure,
// ResearchSubject, Patient): those are deleted instead. out is nil when
// the resource is marked so already. Numbers keep their written form.
func Retract(typ string, body []byte) (out []byte, ok bool) {
	field, known := retractStatus[typ]
	if !known && typ != "Condition" {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	if typ == "Condition" {
		if isEnteredInError(m["verificationStatus"]) {
			return nil, true
		}
		m["verificationStatus"] = map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error", "display": "Entered in Error"}}}
		delete(m, "clinicalStatus")
		for _, k := range []string{"abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange", "abatementString"} {
			delete(m, k)
		}
	} else {
		if m[field] == "entered-in-error" {
			return nil, true
		}
		m[field] = "entered-in-error"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), true
}

func isEnteredInError(cc any) bool {
	m, _ := cc.(map[string]any)
	codings, _ := m["coding"].([]any)
	for _, c := range codings {
		if cm, _ := c.(map[string]any); cm["code"] == "entered-in-error" {
			return true
		}
	}
	return false
}
