package mapping

// Record is one unit the PROMs platform sends: a patient and everything the
// platform knows of their care (episodes, procedures, questionnaire
// responses, consents, studies, aspirations). The gateway maps a record as a
// whole, in one transaction: either every resource it yields is stored or
// none is. Re-sending a record updates the same resources; nothing is
// duplicated, because every resource carries an identifier made from the
// platform's own ids (see Source).
//
// A record is the platform's view, in the platform's words. It says nothing
// of FHIR: package ukcore decides how each field becomes R4 UK Core.
type Record struct {
	// Source names the sending system and this record's id there.
	Source Source `json:"source"`
	// Patient is who the record is about.
	Patient Patient `json:"patient"`
	// Care is who looks after the patient and who may see their data.
	Care Care `json:"care,omitzero"`
	// Episodes are the patient's joint pathways: one per affected joint and
	// side (a hip on the left, a knee on the right, ...).
	Episodes []Episode `json:"episodes,omitempty"`
	// Consents are the patient's consent decisions and preferences, newest
	// decision per kind (and study or site code) winning.
	Consents []Consent `json:"consents,omitempty"`
	// Studies are the research studies the patient takes part in.
	Studies []Participation `json:"studies,omitempty"`
	// Measurements are height and weight readings.
	Measurements []Measurement `json:"measurements,omitempty"`
	// Children are children born to the patient after treatment.
	Children []Child `json:"children,omitempty"`
}

// Source identifies where a record comes from. System is an absolute URI that
// names the platform instance (https://proms.example.org); the gateway
// builds every identifier system from it (System + "/Id/patient", ...), so
// two platforms never collide.
type Source struct {
	System string `json:"system"`
	// Record is the platform's id for this record (for Provenance).
	Record string `json:"record"`
	// Updated is when the platform last changed the record (RFC 3339). It is
	// the Provenance's recorded time, so re-sending an unchanged record
	// changes nothing.
	Updated string `json:"updated"`
}

// Patient is the person the record is about.
type Patient struct {
	// ID is the platform's patient id.
	ID string `json:"id"`
	// NHSNumber is the 10-digit NHS number (Modulus 11 check digit), spaces
	// allowed; empty when not known (e.g. a private patient from abroad).
	NHSNumber string `json:"nhsNumber,omitempty"`
	// NHSNumberStatus is the NHS Data Dictionary's NHS number status
	// indicator code (01 number present and verified ... 08 trace
	// postponed); empty when unknown.
	NHSNumberStatus string `json:"nhsNumberStatus,omitempty"`
	Title           string `json:"title,omitempty"`
	// Given names in order; Family is the surname.
	Given  []string `json:"given,omitempty"`
	Family string   `json:"family"`
	// BirthDate is YYYY-MM-DD.
	BirthDate string `json:"birthDate"`
	// Gender is the administrative gender: male, female, other, unknown.
	Gender string `json:"gender"`
	// SexAtBirth is the sex assigned at birth, when the patient gave it:
	// male, female, intersex (other), unknown.
	SexAtBirth string   `json:"sexAtBirth,omitempty"`
	Address    *Address `json:"address,omitempty"`
	Email      string   `json:"email,omitempty"`
	// Phone numbers; Mobile is used for reminders when consented.
	Mobile string `json:"mobile,omitempty"`
	Phone  string `json:"phone,omitempty"`
	// Ethnicity is the NHS Data Dictionary ethnic category code (A ... Z).
	Ethnicity string `json:"ethnicity,omitempty"`
	// Living is the living arrangement: alone, partner, family, carer,
	// care-home, other.
	Living string `json:"living,omitempty"`
	// Disability is whether the patient considers themselves disabled: yes,
	// no, not-stated.
	Disability string `json:"disability,omitempty"`
	// Role is the patient's occupation or role where the platform records it
	// (e.g. "retired", "manual worker").
	Role string `json:"role,omitempty"`
	// Deceased is the date of death, if known (YYYY-MM-DD).
	Deceased string `json:"deceased,omitempty"`
}

// Address is a UK postal address.
type Address struct {
	Lines    []string `json:"lines,omitempty"`
	City     string   `json:"city,omitempty"`
	District string   `json:"district,omitempty"`
	Postcode string   `json:"postcode,omitempty"`
	Country  string   `json:"country,omitempty"`
}

// Care says who looks after the patient. Organisations are named by ODS
// code; professionals by their register number.
type Care struct {
	// GPPractice is the registered GP practice.
	GPPractice *Organisation `json:"gpPractice,omitempty"`
	// GP is the patient's usual GP.
	GP *Professional `json:"gp,omitempty"`
	// Providers are the patient's Responsible Care Providers: the
	// professionals (and their organisations) that treat them and so may
	// see identifiable data.
	Providers []Professional `json:"providers,omitempty"`
	// Team are the further Clinical Team Members the patient approved.
	Team []Professional `json:"team,omitempty"`
	// SiteCodes are the site-specific codes the patient is registered under
	// (analysts see pseudonymised data per site code).
	SiteCodes []string `json:"siteCodes,omitempty"`
}

// Organisation is a hospital, trust or GP practice, by ODS code.
type Organisation struct {
	ODS  string `json:"ods"`
	Name string `json:"name,omitempty"`
}

// Professional is a clinician: a consultant (GMC number), GP (GMC, and GMP
// if known), nurse (NMC PIN) or physiotherapist (HCPC number).
type Professional struct {
	// Role is consultant, surgeon, gp, nurse, physiotherapist or
	// anaesthetist.
	Role string `json:"role"`
	// Register is gmc, gmp, nmc or hcpc; Number is the register number.
	Register string   `json:"register"`
	Number   string   `json:"number"`
	Title    string   `json:"title,omitempty"`
	Given    []string `json:"given,omitempty"`
	Family   string   `json:"family,omitempty"`
	// Organisation is where they practise in this role (ODS code).
	Organisation *Organisation `json:"organisation,omitempty"`
}

// Episode is one joint's pathway: the condition, its procedures, the
// appointments and referrals around them, and the questionnaires before and
// after.
type Episode struct {
	ID string `json:"id"`
	// Joint is hip, knee or shoulder; Side is left, right or bilateral.
	Joint string `json:"joint"`
	Side  string `json:"side"`
	// Condition is why the joint is treated.
	Condition Condition `json:"condition"`
	// Hospital is the treating organisation (ODS code).
	Hospital *Organisation `json:"hospital,omitempty"`
	// Start and End bound the episode (YYYY-MM-DD); End empty while open.
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
	// SiteCode is the site-specific code this episode is collected under.
	SiteCode     string        `json:"siteCode,omitempty"`
	Procedures   []Procedure   `json:"procedures,omitempty"`
	Appointments []Appointment `json:"appointments,omitempty"`
	Referrals    []Referral    `json:"referrals,omitempty"`
	Services     []Service     `json:"services,omitempty"`
	Responses    []Response    `json:"responses,omitempty"`
	Aspirations  []Aspiration  `json:"aspirations,omitempty"`
}

// Condition is the diagnosis behind an episode.
type Condition struct {
	// Type is osteoarthritis, rheumatoid-arthritis, avascular-necrosis,
	// fracture, cuff-tear-arthropathy, failed-replacement or other.
	Type string `json:"type"`
	// Onset is when symptoms began (YYYY or YYYY-MM or YYYY-MM-DD); the
	// symptom duration is counted from it.
	Onset string `json:"onset,omitempty"`
	// SymptomMonths is the symptom duration in months when the platform has
	// that instead of an onset date.
	SymptomMonths *int `json:"symptomMonths,omitempty"`
	// PreviousSurgery says whether the joint was operated on before.
	PreviousSurgery *bool `json:"previousSurgery,omitempty"`
	// Recorded is when the diagnosis was recorded (YYYY-MM-DD).
	Recorded string `json:"recorded,omitempty"`
}

// Procedure is an operation on the episode's joint.
type Procedure struct {
	ID string `json:"id"`
	// Kind is primary or revision.
	Kind string `json:"kind"`
	// Type is total, hemi, resurfacing, unicompartmental or reverse
	// (shoulder).
	Type string `json:"type"`
	// Side is left, right or bilateral; it must be a side of the episode.
	Side string `json:"side"`
	// Date is YYYY-MM-DD.
	Date string `json:"date"`
	// Surgeon is the operating surgeon.
	Surgeon *Professional `json:"surgeon,omitempty"`
	// Hospital is where it was done (ODS code); the episode's when empty.
	Hospital *Organisation `json:"hospital,omitempty"`
	// Anaesthetic is general, spinal, epidural, regional-block, local or
	// sedation; several may be combined.
	Anaesthetic []string `json:"anaesthetic,omitempty"`
	// ASA is the ASA physical status grade, 1–6.
	ASA int `json:"asa,omitempty"`
	// BMI at operation, kg/m².
	BMI      *float64  `json:"bmi,omitempty"`
	Implants []Implant `json:"implants,omitempty"`
}

// Implant is one implanted component, as the National Joint Registry
// records it.
type Implant struct {
	// Component is what the part is: e.g. femoral stem, acetabular cup,
	// tibial tray, humeral head.
	Component    string `json:"component"`
	Manufacturer string `json:"manufacturer"`
	Catalogue    string `json:"catalogue"`
	Lot          string `json:"lot"`
}

// Appointment is a booked contact (pre-assessment, follow-up, physio).
type Appointment struct {
	ID string `json:"id"`
	// Service is pre-assessment, surgery, follow-up, physiotherapy, other.
	Service string `json:"service"`
	// Start is an RFC 3339 instant; Minutes its planned length.
	Start   string `json:"start"`
	Minutes int    `json:"minutes,omitempty"`
	// Status is booked, fulfilled, cancelled or noshow.
	Status string `json:"status"`
	// With is the professional the appointment is with.
	With *Professional `json:"with,omitempty"`
}

// Service is a service the patient accessed: a hospital stay, a clinic
// visit, a course of physiotherapy, a remote consultation.
type Service struct {
	ID string `json:"id"`
	// Kind is pre-assessment, surgery, follow-up, physiotherapy or other.
	Kind string `json:"kind"`
	// Setting is inpatient, outpatient, virtual or home.
	Setting string `json:"setting"`
	// Start and End bound it (YYYY-MM-DD or RFC 3339); End empty while it
	// goes on.
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
	// Provider is the organisation that gave it (ODS code).
	Provider *Organisation `json:"provider,omitempty"`
}

// Referral is a request for a service (to an orthopaedic team,
// physiotherapy, ...).
type Referral struct {
	ID string `json:"id"`
	// Service is orthopaedics, physiotherapy, pain-clinic, other.
	Service string `json:"service"`
	// Date is when the referral was made (YYYY-MM-DD).
	Date string `json:"date"`
	// Status is active, completed or revoked.
	Status string        `json:"status"`
	From   *Professional `json:"from,omitempty"`
	To     *Organisation `json:"to,omitempty"`
}

// Response is one completed (or partly completed) questionnaire.
type Response struct {
	ID string `json:"id"`
	// Instrument names the questionnaire (see proms.Instruments) and Version
	// its version; both must name a definition the gateway holds.
	Instrument string `json:"instrument"`
	Version    string `json:"version"`
	// Timepoint is pre-op, post-op-6m, post-op-12m or other.
	Timepoint string `json:"timepoint"`
	// Completed is when the patient finished it (RFC 3339 or YYYY-MM-DD).
	Completed string `json:"completed"`
	// Answers maps each item's code to the answer codes the patient gave:
	// none for an item left blank, several for more than one box ticked; a
	// free-text or number item has one value.
	Answers map[string][]string `json:"answers"`
}

// Aspiration is something the patient hopes to do again after treatment,
// and how far they got.
type Aspiration struct {
	ID string `json:"id"`
	// Text is the patient's own words ("walk the dog to the park").
	Text string `json:"text"`
	// Set is when it was recorded (YYYY-MM-DD).
	Set string `json:"set"`
	// Progress is the patient's later assessments, oldest first.
	Progress []Progress `json:"progress,omitempty"`
}

// Progress is one assessment of an aspiration.
type Progress struct {
	Date string `json:"date"`
	// Status is achieved, partly, not-yet or abandoned.
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Consent is one consent decision or preference.
type Consent struct {
	// Kind is what is consented to:
	//   - care-sharing: sharing identifiable data with the Responsible Care
	//     Providers;
	//   - team-sharing: sharing with the approved Clinical Team Members;
	//   - site-code: pseudonymised analysis under SiteCode;
	//   - study: taking part in Study (withdrawal: Decision deny);
	//   - njr: submission to the National Joint Registry;
	//   - hes: linkage with Hospital Episode Statistics via NHS Digital;
	//   - phin: submission to PHIN (private care);
	//   - marketing: marketing messages (opt-in only);
	//   - communications: reminders and news through Channels.
	Kind string `json:"kind"`
	// Decision is permit or deny.
	Decision string `json:"decision"`
	// Date is when the patient decided (YYYY-MM-DD or RFC 3339).
	Date     string `json:"date"`
	Study    string `json:"study,omitempty"`
	SiteCode string `json:"siteCode,omitempty"`
	// Channels, for communications: email, sms, post, phone.
	Channels []string `json:"channels,omitempty"`
}

// Participation is the patient's part in a research study.
type Participation struct {
	Study Study `json:"study"`
	// Status is candidate, on-study, withdrawn or off-study.
	Status string `json:"status"`
	// Joined and Left bound the participation (YYYY-MM-DD).
	Joined string `json:"joined,omitempty"`
	Left   string `json:"left,omitempty"`
}

// Study is a research study. Data collected for it is kept 20 years after
// Completed (the privacy notice).
type Study struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Lead is the study's Lead Investigator, one of the few who may
	// re-identify its pseudonyms.
	Lead      *Professional `json:"lead,omitempty"`
	Start     string        `json:"start,omitempty"`
	Completed string        `json:"completed,omitempty"`
}

// Measurement is a height or weight reading.
type Measurement struct {
	// Kind is height (cm) or weight (kg).
	Kind  string  `json:"kind"`
	Value float64 `json:"value"`
	// Date is when measured (YYYY-MM-DD or RFC 3339).
	Date string `json:"date"`
}

// Child is a child born to the patient after their treatment.
type Child struct {
	ID        string   `json:"id"`
	Given     []string `json:"given,omitempty"`
	Family    string   `json:"family,omitempty"`
	BirthDate string   `json:"birthDate"`
	Gender    string   `json:"gender,omitempty"`
}
