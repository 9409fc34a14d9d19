package ukcore

import (
	"fmt"
	"strconv"
	"time"

	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/promsgateway/gateway/mapping"
)

// episodes maps each joint pathway: an EpisodeOfCare, the Condition behind
// it with a BodyStructure for the joint and side, its Procedures (with the
// implanted Devices, the ASA grade and the BMI at operation), Appointments,
// ServiceRequests, QuestionnaireResponses with their scores, and Goals.
func (b *builder) episodes() error {
	for i := range b.rec.Episodes {
		if err := b.episode(&b.rec.Episodes[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) episode(e *mapping.Episode) error {
	site, err := b.bodyStructure("episode|"+e.ID, e.Joint, e.Side)
	if err != nil {
		return err
	}
	cid := b.localID("condition", e.ID)
	cond := fhir.Condition{
		Meta:               profile("UKCore-Condition"),
		Identifier:         []fhir.Identifier{cid},
		ClinicalStatus:     cc(coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")),
		VerificationStatus: cc(coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")),
		Category:           []fhir.CodeableConcept{*cc(coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item"))},
		Code:               conditionCode(e.Condition.Type, e.Joint),
		BodySite:           []fhir.CodeableConcept{jointSite(e.Joint, e.Side)},
		Subject:            *b.patientRef(),
		RecordedDate:       strOrNil(e.Condition.Recorded),
		Extension:          []fhir.Extension{{Url: extConditionBodyStructure, ValueReference: &site}},
	}
	switch {
	case e.Condition.Onset != "":
		cond.OnsetDateTime = str(e.Condition.Onset)
	case e.Condition.SymptomMonths != nil:
		// A duration before the episode's start is an onset at month
		// precision (a FHIR dateTime may be YYYY-MM).
		if start, err := mapping.ParseDate(e.Start); err == nil {
			cond.OnsetDateTime = str(start.AddDate(0, -*e.Condition.SymptomMonths, 0).Format("2006-01"))
		}
	}
	if ps := e.Condition.PreviousSurgery; ps != nil {
		text := "No previous surgery on this joint."
		if *ps {
			text = "Previous surgery on this joint."
		}
		cond.Note = append(cond.Note, fhir.Annotation{Text: text})
	}
	if e.End != "" {
		// The pathway is over: the joint was treated (con-4 allows an
		// abatement only with an inactive, resolved or remission status).
		cond.ClinicalStatus = cc(coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved", "Resolved"))
		cond.AbatementDateTime = str(e.End)
	}
	condRef, err := b.put("Condition", cid, cond)
	if err != nil {
		return err
	}
	eid := b.localID("episode", e.ID)
	eoc := fhir.EpisodeOfCare{
		Meta:       profile("UKCore-EpisodeOfCare"),
		Identifier: []fhir.Identifier{eid},
		Status:     fhir.EpisodeOfCareStatusActive,
		Type:       []fhir.CodeableConcept{*ccText(jointText[e.Joint] + " replacement pathway")},
		Diagnosis:  []fhir.EpisodeOfCareDiagnosis{{Condition: condRef}},
		Patient:    *b.patientRef(),
		Period:     &fhir.Period{Start: str(e.Start), End: strOrNil(e.End)},
	}
	if e.End != "" {
		eoc.Status = fhir.EpisodeOfCareStatusFinished
	}
	if e.SiteCode != "" {
		eoc.Meta.Tag = []fhir.Coding{b.siteCode(e.SiteCode)}
	}
	if e.Hospital != nil {
		ref, err := b.organisation(e.Hospital)
		if err != nil {
			return err
		}
		eoc.ManagingOrganization = &ref
	}
	if t, ok := b.teams["providers"]; ok {
		eoc.Team = []fhir.Reference{t}
	}
	eocRef, err := b.put("EpisodeOfCare", eid, eoc)
	if err != nil {
		return err
	}
	ctx := &episodeContext{e: e, condition: condRef, episode: eocRef, site: site}
	for i := range e.Procedures {
		if err := b.procedure(ctx, &e.Procedures[i]); err != nil {
			return err
		}
	}
	for i := range e.Appointments {
		if err := b.appointment(ctx, &e.Appointments[i]); err != nil {
			return err
		}
	}
	for i := range e.Referrals {
		if err := b.referral(ctx, &e.Referrals[i]); err != nil {
			return err
		}
	}
	for i := range e.Services {
		if err := b.service(ctx, &e.Services[i]); err != nil {
			return err
		}
	}
	if err := b.responses(ctx); err != nil {
		return err
	}
	for i := range e.Aspirations {
		if err := b.aspiration(ctx, &e.Aspirations[i]); err != nil {
			return err
		}
	}
	return nil
}

// episodeContext carries what an episode's resources refer to.
type episodeContext struct {
	e         *mapping.Episode
	condition fhir.Reference
	episode   fhir.Reference
	site      fhir.Reference
	// scores are the score Observations per timepoint and score kind, for
	// change scores.
	scores map[string]map[string]scored
}

// bodyStructure is the joint and side (UK Core BodyStructure: location
// and locationQualifier), one per episode or procedure that names it.
func (b *builder) bodyStructure(owner, joint, side string) (fhir.Reference, error) {
	id := b.derivedID("body-structure", owner)
	bs := fhir.BodyStructure{
		Meta:              profile("UKCore-BodyStructure"),
		Identifier:        []fhir.Identifier{id},
		Active:            ptr(true),
		Location:          cc(jointCodes[joint]),
		LocationQualifier: []fhir.CodeableConcept{*cc(lateralityCodes[side])},
		Description:       str(sideText[side] + " " + joint),
		Patient:           *b.patientRef(),
	}
	return b.put("BodyStructure", id, bs)
}

// jointSite is a bodySite CodeableConcept: the joint's code, with the side
// in its text (the side's code is on the linked BodyStructure).
func jointSite(joint, side string) fhir.CodeableConcept {
	return *ccText(sideText[side]+" "+joint, jointCodes[joint])
}

func (b *builder) procedure(ctx *episodeContext, p *mapping.Procedure) error {
	site := ctx.site
	if p.Side != ctx.e.Side {
		var err error
		if site, err = b.bodyStructure("procedure|"+p.ID, ctx.e.Joint, p.Side); err != nil {
			return err
		}
	}
	pid := b.localID("procedure", p.ID)
	proc := fhir.Procedure{
		Meta:              profile("UKCore-Procedure"),
		Identifier:        []fhir.Identifier{pid},
		Status:            fhir.EventStatusCompleted,
		Category:          ccText("Surgical procedure", procedureCategory),
		Code:              procedureCode(ctx.e.Joint, p.Kind, p.Type),
		Subject:           *b.patientRef(),
		PerformedDateTime: str(p.Date),
		ReasonReference:   []fhir.Reference{ctx.condition},
		BodySite:          []fhir.CodeableConcept{jointSite(ctx.e.Joint, p.Side)},
		Extension:         []fhir.Extension{{Url: extProcedureBodyStructure, ValueReference: &site}},
	}
	hospital := p.Hospital
	if hospital == nil {
		hospital = ctx.e.Hospital
	}
	if hospital != nil {
		ref, err := b.organisation(hospital)
		if err != nil {
			return err
		}
		proc.Performer = append(proc.Performer, fhir.ProcedurePerformer{Actor: ref})
	}
	if p.Surgeon != nil {
		ref, err := b.practitioner(p.Surgeon)
		if err != nil {
			return err
		}
		proc.Performer = append(proc.Performer, fhir.ProcedurePerformer{Actor: ref, Function: ccText("Surgeon")})
	}
	for _, a := range p.Anaesthetic {
		proc.Note = append(proc.Note, fhir.Annotation{Text: "Anaesthetic: " + anaestheticText[a]})
	}
	var devices []fhir.ProcedureFocalDevice
	for i, im := range p.Implants {
		did := b.derivedID("device", p.ID, strconv.Itoa(i+1))
		dev := fhir.Device{
			Meta:         profile("UKCore-Device"),
			Identifier:   []fhir.Identifier{did},
			Status:       ptr(fhir.FHIRDeviceStatusActive),
			Manufacturer: str(im.Manufacturer),
			LotNumber:    str(im.Lot),
			ModelNumber:  str(im.Catalogue),
			DeviceName:   []fhir.DeviceDeviceName{{Name: im.Component, Type: fhir.DeviceNameTypeUserFriendlyName}},
			Type:         ccText(im.Component),
			Patient:      b.patientRef(),
		}
		ref, err := b.put("Device", did, dev)
		if err != nil {
			return err
		}
		devices = append(devices, fhir.ProcedureFocalDevice{Action: cc(codeImplanted), Manipulated: ref})
	}
	proc.FocalDevice = devices
	procRef, err := b.put("Procedure", pid, proc)
	if err != nil {
		return err
	}
	if p.ASA != 0 {
		oid := b.derivedID("observation", p.ID, "asa")
		obs := fhir.Observation{
			Meta: profile("UKCore-Observation"), Identifier: []fhir.Identifier{oid},
			Status: fhir.ObservationStatusFinal, Code: codeASA,
			Category:             []fhir.CodeableConcept{*cc(coding(csObservationCategory, "exam", "Exam"))},
			Subject:              b.patientRef(),
			EffectiveDateTime:    str(p.Date),
			ValueCodeableConcept: cc(asaCodes[p.ASA-1]),
			PartOf:               []fhir.Reference{procRef},
		}
		if _, err := b.put("Observation", oid, obs); err != nil {
			return err
		}
	}
	if p.BMI != nil {
		oid := b.derivedID("observation", p.ID, "bmi")
		obs := vitalSign("UKCore-Observation-VitalSigns-BMI", codeBMI, b.patientRef(), p.Date, quantity(*p.BMI, "kg/m2"))
		obs.Identifier = []fhir.Identifier{oid}
		obs.PartOf = []fhir.Reference{procRef}
		if _, err := b.put("Observation", oid, obs); err != nil {
			return err
		}
	}
	return nil
}

// addMinutes is start (RFC 3339, checked by mapping.Check) plus n minutes.
func addMinutes(start string, n int) string {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return start
	}
	return t.Add(time.Duration(n) * time.Minute).Format(time.RFC3339)
}

var appointmentStatus = map[string]fhir.AppointmentStatus{
	"booked": fhir.AppointmentStatusBooked, "fulfilled": fhir.AppointmentStatusFulfilled,
	"cancelled": fhir.AppointmentStatusCancelled, "noshow": fhir.AppointmentStatusNoshow,
}

func (b *builder) appointment(ctx *episodeContext, a *mapping.Appointment) error {
	aid := b.localID("appointment", a.ID)
	appt := fhir.Appointment{
		Meta:            profile("UKCore-Appointment"),
		Identifier:      []fhir.Identifier{aid},
		Status:          appointmentStatus[a.Status],
		ServiceType:     []fhir.CodeableConcept{*ccText(serviceText[a.Service])},
		ReasonReference: []fhir.Reference{ctx.condition},
		Participant: []fhir.AppointmentParticipant{{Actor: b.patientRef(),
			Status: fhir.ParticipationStatusAccepted}},
	}
	if a.Minutes > 0 {
		appt.Start = str(a.Start)
		appt.MinutesDuration = ptr(a.Minutes)
		appt.End = str(addMinutes(a.Start, a.Minutes))
	} else {
		// A cancelled appointment of unknown length: start and end come in
		// pairs (app-2), so the time it was for is the requested period.
		appt.RequestedPeriod = []fhir.Period{{Start: str(a.Start)}}
	}
	if a.With != nil {
		ref, err := b.practitioner(a.With)
		if err != nil {
			return err
		}
		appt.Participant = append(appt.Participant, fhir.AppointmentParticipant{Actor: &ref, Status: fhir.ParticipationStatusAccepted})
	}
	if a.Status == "cancelled" {
		appt.CancelationReason = ccText("Cancelled (recorded by the PROMs platform)")
	}
	_, err := b.put("Appointment", aid, appt)
	return err
}

// encounterClass is the v3 ActCode class of each setting (R4 Encounter.class,
// extensible binding to v3 ActEncounterCode).
var encounterClass = map[string]fhir.Coding{
	"inpatient":  coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP", "inpatient encounter"),
	"outpatient": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
	"virtual":    coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "VR", "virtual"),
	"home":       coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HH", "home health"),
}

// service is a service the patient accessed, as an Encounter (UK Core
// Encounter) of the episode.
func (b *builder) service(ctx *episodeContext, v *mapping.Service) error {
	id := b.localID("encounter", v.ID)
	enc := fhir.Encounter{
		Meta:            profile("UKCore-Encounter"),
		Identifier:      []fhir.Identifier{id},
		Status:          fhir.EncounterStatusFinished,
		Class:           encounterClass[v.Setting],
		ServiceType:     ccText(serviceText[v.Kind]),
		Subject:         b.patientRef(),
		EpisodeOfCare:   []fhir.Reference{ctx.episode},
		Period:          &fhir.Period{Start: str(v.Start), End: strOrNil(v.End)},
		ReasonReference: []fhir.Reference{ctx.condition},
	}
	if v.End == "" {
		enc.Status = fhir.EncounterStatusInProgress
	}
	if v.Provider != nil {
		ref, err := b.organisation(v.Provider)
		if err != nil {
			return err
		}
		enc.ServiceProvider = &ref
	}
	_, err := b.put("Encounter", id, enc)
	return err
}

var referralStatus = map[string]fhir.RequestStatus{
	"active": fhir.RequestStatusActive, "completed": fhir.RequestStatusCompleted, "revoked": fhir.RequestStatusRevoked,
}

func (b *builder) referral(ctx *episodeContext, r *mapping.Referral) error {
	rid := b.localID("service-request", r.ID)
	sr := fhir.ServiceRequest{
		Meta:            profile("UKCore-ServiceRequest"),
		Identifier:      []fhir.Identifier{rid},
		Status:          referralStatus[r.Status],
		Intent:          fhir.RequestIntentOrder,
		Category:        []fhir.CodeableConcept{*cc(codeReferral)},
		Code:            ccText(serviceText[r.Service]),
		Subject:         *b.patientRef(),
		AuthoredOn:      str(r.Date),
		ReasonReference: []fhir.Reference{ctx.condition},
	}
	if r.From != nil {
		ref, err := b.practitioner(r.From)
		if err != nil {
			return err
		}
		sr.Requester = &ref
	}
	if r.To != nil {
		ref, err := b.organisation(r.To)
		if err != nil {
			return err
		}
		sr.Performer = []fhir.Reference{ref}
	}
	_, err := b.put("ServiceRequest", rid, sr)
	return err
}

// goalStatus maps an aspiration's latest progress to Goal.achievementStatus
// (http://terminology.hl7.org/CodeSystem/goal-achievement).
var goalStatus = map[string]fhir.Coding{
	"achieved":  coding("http://terminology.hl7.org/CodeSystem/goal-achievement", "achieved", "Achieved"),
	"partly":    coding("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving", "Improving"),
	"not-yet":   coding("http://terminology.hl7.org/CodeSystem/goal-achievement", "in-progress", "In Progress"),
	"abandoned": coding("http://terminology.hl7.org/CodeSystem/goal-achievement", "not-achieved", "Not Achieved"),
}

// aspiration is a Goal in the patient's words; its progress is the Goal's
// achievementStatus and notes, so "did the patient meet their aspiration"
// is Goal?achievement-status=achieved.
func (b *builder) aspiration(ctx *episodeContext, a *mapping.Aspiration) error {
	gid := b.localID("goal", a.ID)
	g := fhir.Goal{
		Identifier:      []fhir.Identifier{gid},
		LifecycleStatus: fhir.GoalLifecycleStatusActive,
		Category:        []fhir.CodeableConcept{*ccText("Personal aspiration")},
		Description:     *ccText(a.Text),
		Subject:         *b.patientRef(),
		StartDate:       str(a.Set),
		StatusDate:      str(a.Set),
		ExpressedBy:     b.patientRef(),
		Addresses:       []fhir.Reference{ctx.condition},
	}
	if n := len(a.Progress); n > 0 {
		last := a.Progress[n-1]
		g.AchievementStatus = cc(goalStatus[last.Status])
		g.StatusDate = str(last.Date)
		switch last.Status {
		case "achieved":
			g.LifecycleStatus = fhir.GoalLifecycleStatusCompleted
		case "abandoned":
			g.LifecycleStatus = fhir.GoalLifecycleStatusCancelled
		}
		for _, p := range a.Progress {
			text := fmt.Sprintf("%s: %s", p.Date, progressText[p.Status])
			if p.Note != "" {
				text += ". " + p.Note
			}
			g.Note = append(g.Note, fhir.Annotation{Time: str(p.Date), Text: text})
		}
	}
	_, err := b.put("Goal", gid, g)
	return err
}
