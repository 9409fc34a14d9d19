package ukcore

import (
	"encoding/json"
	"strconv"
	"strings"

	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/promsgateway/gateway/mapping"
)

// National identifier systems (UK Core; NHS England's FHIR identifier
// list).
const (
	NHSNumberSystem = "https://fhir.nhs.uk/Id/nhs-number"
	ODSSystem       = "https://fhir.nhs.uk/Id/ods-organization-code"
)

// registerSystems are the identifier systems of the professional registers
// UK Core names for Practitioner.identifier.
var registerSystems = map[string]string{
	"gmc":  "https://fhir.hl7.org.uk/Id/gmc-number",
	"gmp":  "https://fhir.hl7.org.uk/Id/gmp-number",
	"nmc":  "https://fhir.hl7.org.uk/Id/nmc-number",
	"hcpc": "https://fhir.hl7.org.uk/Id/hcpc-number",
}

// UK Core extensions the mapping uses.
const (
	extNHSNumberStatus = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
	extEthnicCategory  = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
	extBirthSex        = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-BirthSex"
	csNHSNumberStatus  = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
	csEthnicCategory   = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
	csV3Gender         = "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"
	csV3NullFlavor     = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
)

// birthSex maps the platform's sex at birth to UK Core's BirthSex value set
// (ValueSet-UKCore-BirthSex: v3 AdministrativeGender F, M, UN and
// NullFlavor UNK).
var birthSex = map[string]fhir.Coding{
	"female":   coding(csV3Gender, "F", "Female"),
	"male":     coding(csV3Gender, "M", "Male"),
	"intersex": coding(csV3Gender, "UN", "Undifferentiated"),
	"unknown":  coding(csV3NullFlavor, "UNK", "unknown"),
}

var genders = map[string]fhir.AdministrativeGender{
	"male": fhir.AdministrativeGenderMale, "female": fhir.AdministrativeGenderFemale,
	"other": fhir.AdministrativeGenderOther, "unknown": fhir.AdministrativeGenderUnknown,
}

func (b *builder) patientResource() error {
	p := &b.rec.Patient
	res := fhir.Patient{Meta: profile("UKCore-Patient")}
	// The site-specific codes the patient is registered under, as tags:
	// analysts' pseudonymised extracts select by them (Patient?_tag=...).
	for _, sc := range b.rec.Care.SiteCodes {
		res.Meta.Tag = append(res.Meta.Tag, b.siteCode(sc))
	}
	if p.NHSNumber != "" {
		id := fhir.Identifier{System: str(NHSNumberSystem), Value: str(mapping.NormaliseNHSNumber(p.NHSNumber))}
		if p.NHSNumberStatus != "" {
			id.Extension = []fhir.Extension{{Url: extNHSNumberStatus,
				ValueCodeableConcept: cc(coding(csNHSNumberStatus, p.NHSNumberStatus, mapping.NHSNumberStatus[p.NHSNumberStatus]))}}
		}
		res.Identifier = append(res.Identifier, id)
	}
	local := b.localID("patient", p.ID)
	res.Identifier = append(res.Identifier, local)
	name := fhir.HumanName{Use: ptr(fhir.NameUseOfficial), Family: str(p.Family), Given: p.Given}
	if p.Title != "" {
		name.Prefix = []string{p.Title}
	}
	res.Name = []fhir.HumanName{name}
	g := genders[p.Gender]
	res.Gender = &g
	res.BirthDate = str(p.BirthDate)
	if p.Deceased != "" {
		res.DeceasedDateTime = str(p.Deceased)
	}
	rank := 1
	addTelecom := func(system fhir.ContactPointSystem, use fhir.ContactPointUse, v string) {
		if v == "" {
			return
		}
		r := rank
		rank++
		res.Telecom = append(res.Telecom, fhir.ContactPoint{System: &system, Use: &use, Value: str(v), Rank: &r})
	}
	addTelecom(fhir.ContactPointSystemPhone, fhir.ContactPointUseMobile, p.Mobile)
	addTelecom(fhir.ContactPointSystemPhone, fhir.ContactPointUseHome, p.Phone)
	addTelecom(fhir.ContactPointSystemEmail, fhir.ContactPointUseHome, p.Email)
	if a := p.Address; a != nil {
		res.Address = []fhir.Address{{Use: ptr(fhir.AddressUseHome), Line: a.Lines, City: strOrNil(a.City),
			District: strOrNil(a.District), PostalCode: strOrNil(strings.ToUpper(a.Postcode)), Country: strOrNil(a.Country)}}
	}
	if p.Ethnicity != "" {
		res.Extension = append(res.Extension, fhir.Extension{Url: extEthnicCategory,
			ValueCodeableConcept: cc(coding(csEthnicCategory, p.Ethnicity, mapping.EthnicCategory[p.Ethnicity]))})
	}
	if p.SexAtBirth != "" {
		res.Extension = append(res.Extension, fhir.Extension{Url: extBirthSex, ValueCodeableConcept: cc(birthSex[p.SexAtBirth])})
	}
	if gp := b.rec.Care.GPPractice; gp != nil {
		ref, err := b.organisation(gp)
		if err != nil {
			return err
		}
		res.GeneralPractitioner = append(res.GeneralPractitioner, ref)
	}
	if gp := b.rec.Care.GP; gp != nil {
		ref, err := b.practitioner(gp)
		if err != nil {
			return err
		}
		res.GeneralPractitioner = append(res.GeneralPractitioner, ref)
	}
	ref, err := b.put("Patient", local, res)
	if err != nil {
		return err
	}
	b.patient = *ref.Reference
	return b.socialHistory()
}

// socialHistory records what the patient told the platform about their
// circumstances as social-history Observations (UK Core Observation).
func (b *builder) socialHistory() error {
	p := &b.rec.Patient
	facts := []struct {
		key, value string
		code       fhir.Coding
		answers    map[string]fhir.Coding
	}{
		{"living", p.Living, codeLivingArrangement, livingArrangements},
		{"disability", p.Disability, codeDisability, disabilityAnswers},
		{"occupation", p.Role, codeOccupation, nil},
	}
	for _, f := range facts {
		if f.value == "" {
			continue
		}
		obs := fhir.Observation{
			Meta:     profile("UKCore-Observation"),
			Status:   fhir.ObservationStatusFinal,
			Category: []fhir.CodeableConcept{*cc(coding(csObservationCategory, "social-history", "Social History"))},
			Code:     *cc(b.local(f.code, "social-history")),
			Subject:  b.patientRef(),
		}
		if f.answers != nil {
			obs.ValueCodeableConcept = cc(b.local(f.answers[f.value], "social-history-"+f.key))
		} else {
			obs.ValueString = str(f.value)
		}
		id := b.derivedID("observation", b.rec.Patient.ID, f.key)
		obs.Identifier = []fhir.Identifier{id}
		if _, err := b.put("Observation", id, obs); err != nil {
			return err
		}
	}
	return nil
}

// siteCode is the tag of a site-specific code.
func (b *builder) siteCode(code string) fhir.Coding {
	return coding(b.base+"/CodeSystem/site-code", code, "")
}

// local gives a coding without a system the platform's code system name.
func (b *builder) local(c fhir.Coding, name string) fhir.Coding {
	if c.System == nil {
		c.System = str(b.base + "/CodeSystem/" + name)
	}
	return c
}

func (b *builder) patientRef() *fhir.Reference { return &fhir.Reference{Reference: str(b.patient)} }

// organisation adds an Organization by ODS code (UK Core Organization).
func (b *builder) organisation(o *mapping.Organisation) (fhir.Reference, error) {
	id := fhir.Identifier{System: str(ODSSystem), Value: str(o.ODS)}
	res := fhir.Organization{Meta: profile("UKCore-Organization"), Identifier: []fhir.Identifier{id}, Active: ptr(true), Name: strOrNil(o.Name)}
	return b.put("Organization", id, res)
}

// practitioner adds a Practitioner by register number (UK Core
// Practitioner) and, when the professional's organisation is known, their
// PractitionerRole there; it returns the PractitionerRole when there is one
// (it says who and where), else the Practitioner.
func (b *builder) practitioner(p *mapping.Professional) (fhir.Reference, error) {
	id := fhir.Identifier{System: str(registerSystems[p.Register]), Value: str(p.Number)}
	res := fhir.Practitioner{Meta: profile("UKCore-Practitioner"), Identifier: []fhir.Identifier{id}, Active: ptr(true)}
	if p.Family != "" || len(p.Given) > 0 {
		n := fhir.HumanName{Use: ptr(fhir.NameUseOfficial), Family: strOrNil(p.Family), Given: p.Given}
		if p.Title != "" {
			n.Prefix = []string{p.Title}
		}
		res.Name = []fhir.HumanName{n}
	}
	pref, err := b.put("Practitioner", id, res)
	if err != nil || p.Organisation == nil {
		return pref, err
	}
	oref, err := b.organisation(p.Organisation)
	if err != nil {
		return oref, err
	}
	rid := b.derivedID("practitioner-role", p.Register, p.Number, p.Organisation.ODS, p.Role)
	role := fhir.PractitionerRole{
		Meta: profile("UKCore-PractitionerRole"), Identifier: []fhir.Identifier{rid}, Active: ptr(true),
		Practitioner: &pref, Organization: &oref,
		Code: []fhir.CodeableConcept{*ccText(roleText[p.Role])},
	}
	return b.put("PractitionerRole", rid, role)
}

// care adds the patient's care teams: the Responsible Care Providers and
// the Clinical Team Members they approved (UK Core CareTeam). Consent
// resources name these teams as the actors that may see identifiable data.
func (b *builder) care() error {
	teams := []struct {
		key, name string
		members   []mapping.Professional
	}{
		{"providers", "Responsible Care Providers", b.rec.Care.Providers},
		{"team", "Approved Clinical Team Members", b.rec.Care.Team},
	}
	for _, t := range teams {
		if len(t.members) == 0 {
			continue
		}
		id := b.derivedID("care-team", b.rec.Patient.ID, t.key)
		team := fhir.CareTeam{Meta: profile("UKCore-CareTeam"), Identifier: []fhir.Identifier{id},
			Status: ptr(fhir.CareTeamStatusActive), Name: str(t.name), Subject: b.patientRef()}
		for i := range t.members {
			ref, err := b.practitioner(&t.members[i])
			if err != nil {
				return err
			}
			team.Participant = append(team.Participant, fhir.CareTeamParticipant{
				Role:   []fhir.CodeableConcept{*ccText(roleText[t.members[i].Role])},
				Member: &ref,
			})
		}
		ref, err := b.put("CareTeam", id, team)
		if err != nil {
			return err
		}
		b.teams[t.key] = ref
	}
	return nil
}

// measurements adds height and weight as UK Core vital-signs Observations.
func (b *builder) measurements() error {
	for _, m := range b.rec.Measurements {
		v := m.Value
		code, prof, unit := codeBodyHeight, "UKCore-Observation-VitalSigns-BodyHeight", "cm"
		if m.Kind == "weight" {
			code, prof, unit = codeBodyWeight, "UKCore-Observation-VitalSigns-BodyWeight", "kg"
		}
		id := b.derivedID("observation", b.rec.Patient.ID, m.Kind, m.Date)
		q := quantity(v, unit)
		if unit == "kg" {
			q.Unit = str("kilogram") // fixed by UKCore-Observation-VitalSigns-BodyWeight
		}
		obs := vitalSign(prof, code, b.patientRef(), m.Date, q)
		obs.Identifier = []fhir.Identifier{id}
		if _, err := b.put("Observation", id, obs); err != nil {
			return err
		}
	}
	return nil
}

func vitalSign(prof string, code []fhir.Coding, subject *fhir.Reference, when string, q *fhir.Quantity) fhir.Observation {
	return fhir.Observation{
		Meta:              profile(prof),
		Status:            fhir.ObservationStatusFinal,
		Category:          []fhir.CodeableConcept{*cc(coding(csObservationCategory, "vital-signs", "Vital Signs"))},
		Code:              *cc(code...),
		Subject:           subject,
		EffectiveDateTime: dateTime(when),
		ValueQuantity:     q,
	}
}

// quantity is a UCUM quantity; the unit is its own UCUM code.
func quantity(v float64, unit string) *fhir.Quantity {
	n := json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	return &fhir.Quantity{Value: &n, Unit: str(unit), System: str("http://unitsofmeasure.org"), Code: str(unit)}
}

// children adds the patient's children born after treatment as
// RelatedPersons (UK Core RelatedPerson), relationship CHILD.
func (b *builder) children() error {
	for _, c := range b.rec.Children {
		id := b.localID("related-person", c.ID)
		rp := fhir.RelatedPerson{Meta: profile("UKCore-RelatedPerson"), Identifier: []fhir.Identifier{id}, Active: ptr(true),
			Patient:      *b.patientRef(),
			Relationship: []fhir.CodeableConcept{*cc(coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "CHILD", "child"))},
			BirthDate:    str(c.BirthDate),
		}
		if c.Family != "" || len(c.Given) > 0 {
			rp.Name = []fhir.HumanName{{Use: ptr(fhir.NameUseOfficial), Family: strOrNil(c.Family), Given: c.Given}}
		}
		if c.Gender != "" {
			g := genders[c.Gender]
			rp.Gender = &g
		}
		if _, err := b.put("RelatedPerson", id, rp); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
