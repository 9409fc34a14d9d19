package ukcore

import (
	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// The terminology the mapping emits. SNOMED CT concept ids are used only
// where a national or HL7 source confirms them (docs/internal-model.md,
// "Codes"); where none does (the Oxford score totals, shoulder
// replacements, revisions) the concept is coded in the platform's own code
// system (System + "/CodeSystem/...") with a text, which UK Core allows:
// those elements have preferred, not required, bindings.
const (
	csSNOMED              = "http://snomed.info/sct"
	csLOINC               = "http://loinc.org"
	csObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
	csConditionCategory   = "https://fhir.hl7.org.uk/CodeSystem/UKCore-ConditionCategory"

	extOrdinalValue           = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
	extMinValue               = "http://hl7.org/fhir/StructureDefinition/minValue"
	extMaxValue               = "http://hl7.org/fhir/StructureDefinition/maxValue"
	extConditionBodyStructure = "http://hl7.org/fhir/6.0/StructureDefinition/extension-Condition.bodyStructure"
	extProcedureBodyStructure = "http://hl7.org/fhir/StructureDefinition/procedure-targetBodyStructure"
	// extObservationBodyStructure is UK Core's Extension-UKCore-ObservationBodyStructure
	// (the R5 element as a backport extension).
	extObservationBodyStructure = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.bodyStructure"
	extWorkflowEpisode          = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"
)

func sct(code, display string) fhir.Coding { return coding(csSNOMED, code, display) }

// Vital signs: UK Core's vital-signs profiles require a LOINC and a SNOMED
// coding (invariant ukcore-obs-vs-001 and the snomedCT slice); the SNOMED
// codes are the ones in UK Core's BodyHeightMeasurements, BodyWeight-
// Measurements and BMI value sets.
var (
	codeBodyHeight = []fhir.Coding{coding(csLOINC, "8302-2", "Body height"), sct("50373000", "Body height measure")}
	codeBodyWeight = []fhir.Coding{coding(csLOINC, "29463-7", "Body weight"), sct("27113001", "Body weight")}
	codeBMI        = []fhir.Coding{coding(csLOINC, "39156-5", "Body mass index (BMI) [Ratio]"), sct("60621009", "Body mass index")}
)

// jointCodes are the joints' SNOMED body structures.
var jointCodes = map[string]fhir.Coding{
	"hip":      sct("24136001", "Hip joint structure"),
	"knee":     sct("49076000", "Knee joint structure"),
	"shoulder": sct("31398001", "Joint structure of shoulder region"),
}

// lateralityCodes are SNOMED's laterality qualifiers.
var lateralityCodes = map[string]fhir.Coding{
	"left":      sct("7771000", "Left"),
	"right":     sct("24028007", "Right"),
	"bilateral": sct("51440002", "Right and left"),
}

var sideText = map[string]string{"left": "Left", "right": "Right", "bilateral": "Left and right"}

var jointText = map[string]string{"hip": "Hip", "knee": "Knee", "shoulder": "Shoulder"}

// conditionSCT codes a diagnosis per joint where SNOMED has a confirmed
// joint-specific concept, else the general disorder.
var conditionSCT = map[string]map[string]fhir.Coding{
	"osteoarthritis": {
		"hip":      sct("239872002", "Osteoarthritis of hip"),
		"knee":     sct("239873007", "Osteoarthritis of knee"),
		"shoulder": sct("67315001", "Osteoarthritis of shoulder region"),
		"":         sct("396275006", "Osteoarthritis"),
	},
	"rheumatoid-arthritis": {"": sct("69896004", "Rheumatoid arthritis")},
}

var conditionText = map[string]string{
	"osteoarthritis": "Osteoarthritis", "rheumatoid-arthritis": "Rheumatoid arthritis",
	"avascular-necrosis": "Avascular necrosis", "fracture": "Fracture", "cuff-tear-arthropathy": "Cuff tear arthropathy",
	"failed-replacement": "Failed joint replacement", "other": "Other condition",
}

// conditionCode is the episode's diagnosis.
func conditionCode(typ, joint string) *fhir.CodeableConcept {
	text := conditionText[typ] + " of " + joint
	if by, ok := conditionSCT[typ]; ok {
		if c, ok := by[joint]; ok {
			return ccText(text, c)
		}
		return ccText(text, by[""])
	}
	return ccText(text)
}

// procedureSCT are the replacements SNOMED codes confirm, by joint, kind
// and type; revisionSCT the revisions by joint, whatever was revised. The
// revisions' source is the NLM Value Set Authority Center's value sets
// "Hip Replacement Surgery" (OID 2.16.840.1.113883.3.117.1.7.1.259) and
// "Knee Replacement Surgery" (2.16.840.1.113883.3.117.1.7.1.261), expansion
// of 2024-05-02 over SNOMED CT 2023-09, which pair these ids with these
// terms; they are international concepts, so in the UK edition too. No
// source confirmed codes for shoulder replacements or revisions, or for
// partial and resurfacing replacements as a whole: those are text and the
// platform's code.
var procedureSCT = map[string]fhir.Coding{
	"hip-primary-total":   sct("52734007", "Total replacement of hip"),
	"knee-primary-total":  sct("609588000", "Total knee replacement"),
	"hip-revision-total":  sct("62402000", "Revision of total hip replacement"),
	"knee-revision-total": sct("29712008", "Revision of knee replacement"),
}

var revisionSCT = map[string]fhir.Coding{
	"hip":  sct("112727005", "Revision of hip replacement"),
	"knee": sct("29712008", "Revision of knee replacement"),
}

var procedureTypeText = map[string]string{
	"total": "total", "hemi": "hemiarthroplasty", "resurfacing": "resurfacing", "unicompartmental": "unicompartmental", "reverse": "reverse total",
}

// procedureCode is a joint replacement's code.
func procedureCode(joint, kind, typ string) *fhir.CodeableConcept {
	key := joint + "-" + kind + "-" + typ
	text := jointText[joint] + " replacement (" + procedureTypeText[typ] + ")"
	if kind == "revision" {
		text = "Revision of " + joint + " replacement (" + procedureTypeText[typ] + ")"
	}
	if c, ok := procedureSCT[key]; ok {
		return ccText(text, c)
	}
	if c, ok := revisionSCT[joint]; ok && kind == "revision" {
		return ccText(text, c)
	}
	return ccText(text)
}

var procedureCategory = sct("387713003", "Surgical procedure")

// asaCodes are the ASA physical status classes 1–6.
var asaCodes = [6]fhir.Coding{
	sct("413495001", "ASA physical status class 1"), sct("413496000", "ASA physical status class 2"),
	sct("413497009", "ASA physical status class 3"), sct("413498004", "ASA physical status class 4"),
	sct("413499007", "ASA physical status class 5"), sct("413500003", "ASA physical status class 6"),
}

var codeASA = fhir.CodeableConcept{Text: str("ASA physical status grade")}

var anaestheticText = map[string]string{
	"general": "general", "spinal": "spinal", "epidural": "epidural", "regional-block": "regional nerve block",
	"local": "local", "sedation": "sedation",
}

// codeImplanted is Procedure.focalDevice.action (R4 binds it to SNOMED
// procedure device action codes).
var codeImplanted = sct("129336009", "Implantation - action")

var codeReferral = sct("3457005", "Patient referral")

var serviceText = map[string]string{
	"pre-assessment": "Pre-operative assessment", "surgery": "Surgery", "follow-up": "Follow-up", "physiotherapy": "Physiotherapy",
	"orthopaedics": "Trauma and orthopaedics", "pain-clinic": "Pain clinic", "other": "Other",
}

var roleText = map[string]string{
	"consultant": "Consultant", "surgeon": "Surgeon", "gp": "General practitioner", "nurse": "Nurse",
	"physiotherapist": "Physiotherapist", "anaesthetist": "Anaesthetist",
}

var progressText = map[string]string{"achieved": "achieved", "partly": "partly achieved", "not-yet": "not yet achieved", "abandoned": "abandoned"}

// comorbiditySCT codes the comorbidity list's conditions (UK Core
// ConditionCategory co-morbidity).
var comorbiditySCT = map[string]fhir.Coding{
	"heart-disease":       sct("56265001", "Heart disease"),
	"high-blood-pressure": sct("38341003", "Hypertensive disorder, systemic arterial"),
	"stroke":              sct("230690007", "Cerebrovascular accident"),
	"circulation":         sct("400047006", "Peripheral vascular disease"),
	"lung-disease":        sct("19829001", "Disorder of lung"),
	"diabetes":            sct("73211009", "Diabetes mellitus"),
	"kidney-disease":      sct("90708001", "Kidney disease"),
	"nervous-system":      sct("118940003", "Disorder of nervous system"),
	"liver-disease":       sct("235856003", "Disorder of liver"),
	"cancer":              sct("363346000", "Malignant neoplastic disease"),
	"depression":          sct("35489007", "Depressive disorder"),
	"arthritis":           sct("3723001", "Arthritis"),
}

// EQ-5D observables (SNOMED); the Oxford totals have none, so they and
// the change scores are coded in the platform's score code system.
var eq5dSCT = map[string]fhir.Coding{
	"eq5d-5l-index": sct("736534008", "EuroQol five dimension five level index value"),
	"eq5d-3l-index": sct("1144655003", "EuroQol five dimension three level index value"),
	"eq-vas":        sct("736535009", "EuroQol visual analogue score"),
}

var scoreText = map[string]string{
	"oxford-hip-score": "Oxford Hip Score", "oxford-knee-score": "Oxford Knee Score", "oxford-shoulder-score": "Oxford Shoulder Score",
	"eq5d-3l-profile": "EQ-5D-3L health profile", "eq5d-5l-profile": "EQ-5D-5L health profile",
	"eq5d-3l-index": "EQ-5D-3L index value (UK tariff, Dolan 1997)", "eq5d-5l-index": "EQ-5D-5L index value (England value set, Devlin et al. 2018)",
	"eq-vas": "EQ VAS",
	// No SNOMED concept names a crosswalk value: the 3L index concept
	// would claim the patient answered the 3L questionnaire.
	"eq5d-5l-mapped-3l-index": "EQ-5D-5L mapped to the EQ-5D-3L UK index (van Hout et al. 2012 crosswalk)",
}

// scoreCode codes a score kind: the platform's code always, SNOMED's where
// it has one. A change score's kind ends in "-change".
func scoreCode(base, kind string) fhir.CodeableConcept {
	local := coding(base+"/CodeSystem/proms-score", kind, "")
	text := scoreText[kind]
	if k, ok := trimChange(kind); ok {
		text = "Change in " + scoreText[k] + " (post-operative minus pre-operative)"
	}
	local.Display = str(text)
	codings := []fhir.Coding{local}
	if c, ok := eq5dSCT[kind]; ok {
		codings = append(codings, c)
	}
	return fhir.CodeableConcept{Coding: codings, Text: str(text)}
}

func trimChange(kind string) (string, bool) {
	const suffix = "-change"
	if len(kind) > len(suffix) && kind[len(kind)-len(suffix):] == suffix {
		return kind[:len(kind)-len(suffix)], true
	}
	return kind, false
}

// Social history the patient reports, in the platform's code system: no
// confirmed national code exists for these answers.
var (
	codeLivingArrangement = fhir.Coding{Code: str("living-arrangement"), Display: str("Living arrangement")}
	codeDisability        = fhir.Coding{Code: str("disability"), Display: str("Considers themselves disabled")}
	codeOccupation        = coding(csLOINC, "11341-5", "History of Occupation")
)

var livingArrangements = map[string]fhir.Coding{
	"alone": {Code: str("alone"), Display: str("Lives alone")}, "partner": {Code: str("partner"), Display: str("Lives with partner")},
	"family": {Code: str("family"), Display: str("Lives with family")}, "carer": {Code: str("carer"), Display: str("Lives with a carer")},
	"care-home": {Code: str("care-home"), Display: str("Lives in a care home")}, "other": {Code: str("other"), Display: str("Other arrangement")},
}

var disabilityAnswers = map[string]fhir.Coding{
	"yes": {Code: str("yes"), Display: str("Yes")}, "no": {Code: str("no"), Display: str("No")}, "not-stated": {Code: str("not-stated"), Display: str("Not stated")},
}
