package ukcore

import (
	"sort"
	"strings"

	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/promsgateway/gateway/mapping"
)

// studies adds each study (ResearchStudy; UK Core has no profile for it)
// and the patient's part in it (ResearchSubject).
func (b *builder) studies() error {
	for _, p := range b.rec.Studies {
		s := p.Study
		sid := b.localID("study", s.ID)
		rs := fhir.ResearchStudy{
			Identifier: []fhir.Identifier{sid},
			Title:      str(s.Title),
			Status:     fhir.ResearchStudyStatusActive,
		}
		if s.Start != "" || s.Completed != "" {
			rs.Period = &fhir.Period{Start: strOrNil(s.Start), End: strOrNil(s.Completed)}
		}
		if s.Completed != "" {
			rs.Status = fhir.ResearchStudyStatusCompleted
		}
		if s.Lead != nil {
			ref, err := b.practitioner(s.Lead)
			if err != nil {
				return err
			}
			rs.PrincipalInvestigator = &ref
		}
		studyRef, err := b.put("ResearchStudy", sid, rs)
		if err != nil {
			return err
		}
		b.studyRefs[s.ID] = studyRef
		subID := b.localID("research-subject", b.rec.Patient.ID+"-"+s.ID)
		sub := fhir.ResearchSubject{
			Identifier: []fhir.Identifier{subID},
			Status:     subjectStatus[p.Status],
			Study:      studyRef,
			Individual: *b.patientRef(),
		}
		if p.Joined != "" || p.Left != "" {
			sub.Period = &fhir.Period{Start: strOrNil(p.Joined), End: strOrNil(p.Left)}
		}
		b.subjects[s.ID] = &sub
		b.subjectIDs[s.ID] = subID
	}
	return nil
}

var subjectStatus = map[string]fhir.ResearchSubjectStatus{
	"candidate": fhir.ResearchSubjectStatusCandidate, "on-study": fhir.ResearchSubjectStatusOnStudy,
	"withdrawn": fhir.ResearchSubjectStatusWithdrawn, "off-study": fhir.ResearchSubjectStatusOffStudy,
}

// consentScope is each consent kind's Consent.scope
// (http://terminology.hl7.org/CodeSystem/consentscope).
func consentScope(kind string) fhir.Coding {
	if kind == "study" {
		return coding("http://terminology.hl7.org/CodeSystem/consentscope", "research", "Research")
	}
	return coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent")
}

// consentPurpose is the purpose of use a consent kind controls (v3
// ActReason), where one fits.
var consentPurpose = map[string]fhir.Coding{
	"care-sharing": coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT", "treatment"),
	"team-sharing": coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT", "treatment"),
	"study":        coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HRESCH", "healthcare research"),
	"site-code":    coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HRESCH", "healthcare research"),
	"marketing":    coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HMARKT", "healthcare marketing"),
}

var consentText = map[string]string{
	"care-sharing":   "Share identifiable data with the Responsible Care Providers",
	"team-sharing":   "Share identifiable data with the approved Clinical Team Members",
	"site-code":      "Pseudonymised analysis under a site-specific code",
	"study":          "Take part in a research study",
	"njr":            "Submission to the National Joint Registry",
	"hes":            "Linkage with Hospital Episode Statistics (NHS Digital)",
	"phin":           "Submission to the Private Healthcare Information Network",
	"marketing":      "Marketing messages",
	"communications": "Reminders and news",
}

var registryNames = map[string]string{
	"njr": "National Joint Registry", "hes": "NHS Digital (Hospital Episode Statistics)", "phin": "Private Healthcare Information Network",
}

// consents adds every consent decision as a Consent. Decisions are kept,
// not overwritten: for each kind (and study or site code) the newest is
// active and the earlier ones inactive, so the record shows what the
// patient decided and when. Then each ResearchSubject is added, naming the
// study consent in force.
func (b *builder) consents() error {
	latest := map[string]string{} // topic -> newest date
	topic := func(k mapping.Consent) string { return k.Kind + "|" + k.Study + "|" + k.SiteCode }
	for _, k := range b.rec.Consents {
		if t := topic(k); k.Date > latest[t] {
			latest[t] = k.Date
		}
	}
	studyConsent := map[string]fhir.Reference{}
	for _, k := range b.rec.Consents {
		key := b.rec.Patient.ID + "-" + k.Kind
		if k.Study != "" {
			key += "-" + k.Study
		}
		if k.SiteCode != "" {
			key += "-" + k.SiteCode
		}
		cid := b.localID("consent", key+"-"+strings.NewReplacer(":", "", "+", "").Replace(k.Date))
		status := fhir.ConsentStateActive
		if k.Date < latest[topic(k)] {
			status = fhir.ConsentStateInactive
		}
		rule := coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in")
		ptype := fhir.ConsentProvisionTypePermit
		if k.Decision == "deny" {
			rule = coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTOUT", "opt-out")
			ptype = fhir.ConsentProvisionTypeDeny
		}
		c := fhir.Consent{
			Meta:       profile("UKCore-Consent"),
			Identifier: []fhir.Identifier{cid},
			Status:     status,
			Scope:      *cc(consentScope(k.Kind)),
			Category: []fhir.CodeableConcept{
				*cc(coding("http://loinc.org", "59284-0", "Patient Consent")),
				*ccText(consentText[k.Kind], coding(b.base+"/CodeSystem/consent-kind", k.Kind, consentText[k.Kind])),
			},
			Patient:    b.patientRef(),
			DateTime:   str(k.Date),
			Policy:     []fhir.ConsentPolicy{{Uri: str(b.base + "/privacy-notice")}},
			PolicyRule: cc(rule),
			Provision:  &fhir.ConsentProvision{Type: &ptype, Period: &fhir.Period{Start: str(k.Date)}},
		}
		if p, ok := consentPurpose[k.Kind]; ok {
			c.Provision.Purpose = []fhir.Coding{p}
		}
		recipient := func(ref fhir.Reference) {
			c.Provision.Actor = append(c.Provision.Actor, fhir.ConsentProvisionActor{
				Role:      *cc(coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")),
				Reference: ref,
			})
		}
		switch k.Kind {
		case "care-sharing":
			if t, ok := b.teams["providers"]; ok {
				recipient(t)
			}
		case "team-sharing":
			if t, ok := b.teams["team"]; ok {
				recipient(t)
			}
		case "njr", "hes", "phin":
			recipient(fhir.Reference{Display: str(registryNames[k.Kind])})
		case "study":
			if s, ok := b.studyRefs[k.Study]; ok {
				c.Provision.Data = []fhir.ConsentProvisionData{{Meaning: fhir.ConsentDataMeaningRelated, Reference: s}}
			}
		case "site-code":
			c.Provision.Code = []fhir.CodeableConcept{*ccText("Site-specific code "+k.SiteCode,
				coding(b.base+"/CodeSystem/site-code", k.SiteCode, ""))}
		case "communications":
			channels := append([]string(nil), k.Channels...)
			sort.Strings(channels)
			for _, ch := range channels {
				c.Provision.Provision = append(c.Provision.Provision, fhir.ConsentProvision{
					Type: &ptype,
					Code: []fhir.CodeableConcept{*cc(coding(b.base+"/CodeSystem/contact-channel", ch, channelText[ch]))},
				})
			}
		}
		ref, err := b.put("Consent", cid, c)
		if err != nil {
			return err
		}
		if k.Kind == "study" && status == fhir.ConsentStateActive {
			studyConsent[k.Study] = ref
		}
	}
	for _, p := range b.rec.Studies {
		sub := b.subjects[p.Study.ID]
		if ref, ok := studyConsent[p.Study.ID]; ok {
			sub.Consent = &ref
		}
		if _, err := b.put("ResearchSubject", b.subjectIDs[p.Study.ID], *sub); err != nil {
			return err
		}
	}
	return nil
}

var channelText = map[string]string{"email": "Email", "sms": "Text message", "post": "Post", "phone": "Telephone"}
