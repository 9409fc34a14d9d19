package ukcore

import (
	"sort"
	"strconv"
	"time"

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
		subID := b.derivedID("research-subject", b.rec.Patient.ID, s.ID)
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

// consentPurpose is the purpose of use each consent kind governs (v3
// ActReason, the PurposeOfUse codes).
var consentPurpose = map[string]fhir.Coding{
	"care-sharing":   actReason("TREAT", "treatment"),
	"team-sharing":   actReason("TREAT", "treatment"),
	"site-code":      actReason("HOUTCOMS", "health outcome measure"),
	"study":          actReason("HRESCH", "healthcare research"),
	"njr":            actReason("HOUTCOMS", "health outcome measure"),
	"hes":            actReason("HOUTCOMS", "health outcome measure"),
	"phin":           actReason("HOUTCOMS", "health outcome measure"),
	"marketing":      actReason("HMARKT", "healthcare marketing"),
	"communications": actReason("PATADMIN", "patient administration"),
}

func actReason(code, display string) fhir.Coding {
	return coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", code, display)
}

// consentRegime is the policy each kind of consent works under (R4
// Consent.policyRule): opt-in, where nothing is shared unless the patient
// agrees, for all but HES linkage, which the National Data Opt-out governs
// as opt-out. The patient's decision is the provision, never the rule.
func consentRegime(kind string) fhir.Coding {
	if kind == "hes" {
		return coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTOUT", "opt-out")
	}
	return coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in")
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
// active and the earlier ones inactive, their provision ending when the next
// decision was made, so the record shows what the patient decided and
// when. Each provision is limited to its purpose and, where the record
// names them, its recipients. Then each ResearchSubject is added, naming
// the study consent in force.
func (b *builder) consents() error {
	topic := func(k mapping.Consent) string { return k.Kind + "|" + k.Study + "|" + k.SiteCode }
	byTopic := map[string][]consentDecision{}
	for _, k := range b.rec.Consents {
		when, _ := mapping.ParseDate(k.Date) // mapping.Check proved it a date
		byTopic[topic(k)] = append(byTopic[topic(k)], consentDecision{k, when})
	}
	studyConsent := map[string]fhir.Reference{}
	for _, t := range sortedKeys(byTopic) {
		ds := byTopic[t]
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].when.Before(ds[j].when) })
		for i, d := range ds {
			var next *consentDecision
			if i+1 < len(ds) {
				next = &ds[i+1]
			}
			ref, err := b.consent(d.k, i, next)
			if err != nil {
				return err
			}
			if d.k.Kind == "study" && next == nil {
				studyConsent[d.k.Study] = ref
			}
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

// consentDecision is one consent decision and its moment.
type consentDecision struct {
	k    mapping.Consent
	when time.Time
}

// consent maps the n-th decision (in time order) on one topic; next is the
// decision that superseded it, if any.
func (b *builder) consent(k mapping.Consent, n int, next *consentDecision) (fhir.Reference, error) {
	key := k.Kind
	if k.Study != "" {
		key += "|" + k.Study
	}
	if k.SiteCode != "" {
		key += "|" + k.SiteCode
	}
	cid := b.derivedID("consent", b.rec.Patient.ID, key, strconv.Itoa(n))
	status := fhir.ConsentStateActive
	period := &fhir.Period{Start: str(k.Date)}
	if next != nil {
		status = fhir.ConsentStateInactive
		period.End = str(next.k.Date)
	}
	ptype := fhir.ConsentProvisionTypePermit
	if k.Decision == "deny" {
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
		Performer:  []fhir.Reference{*b.patientRef()},
		Policy:     []fhir.ConsentPolicy{{Uri: str(b.base + "/privacy-notice")}},
		PolicyRule: cc(consentRegime(k.Kind)),
		Provision:  &fhir.ConsentProvision{Type: &ptype, Period: period, Purpose: []fhir.Coding{consentPurpose[k.Kind]}},
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
	case "site-code":
		c.Provision.Code = []fhir.CodeableConcept{*ccText("Site-specific code "+k.SiteCode, b.siteCode(k.SiteCode))}
	case "communications":
		// Nested provisions are exceptions to their parent: a permit for
		// some channels is a deny of all with a permit per channel.
		if ptype == fhir.ConsentProvisionTypePermit && len(k.Channels) > 0 {
			deny, permit := fhir.ConsentProvisionTypeDeny, fhir.ConsentProvisionTypePermit
			c.Provision.Type = &deny
			channels := append([]string(nil), k.Channels...)
			sort.Strings(channels)
			for _, ch := range channels {
				c.Provision.Provision = append(c.Provision.Provision, fhir.ConsentProvision{
					Type: &permit,
					Code: []fhir.CodeableConcept{*cc(coding(b.base+"/CodeSystem/contact-channel", ch, channelText[ch]))},
				})
			}
		}
	}
	return b.put("Consent", cid, c)
}

var channelText = map[string]string{"email": "Email", "sms": "Text message", "post": "Post", "phone": "Telephone"}
