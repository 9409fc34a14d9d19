package mapping

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/promsgateway/gateway/mapping/proms"
)

// Problem is one reason a record is refused: the field, in the record's own
// JSON names (episodes[0].procedures[1].side), and why.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problems is every reason a record is refused. A refused record stores
// nothing.
type Problems []Problem

func (p Problems) Error() string {
	var s []string
	for _, pr := range p {
		s = append(s, pr.Field+": "+pr.Reason)
	}
	return strings.Join(s, "; ")
}

type checker struct {
	now      time.Time
	problems Problems
}

func (c *checker) fail(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Check verifies a record before it is mapped: required fields, code lists,
// NHS number check digit, real calendar dates not in the future (now is the
// present, for the test), a procedure on a side its episode has, responses
// to questionnaire versions the gateway holds with answers they allow. It
// returns nil or Problems listing everything wrong.
func Check(r *Record, now time.Time) error {
	c := &checker{now: now}
	c.source(r.Source)
	c.patient(&r.Patient)
	c.care(&r.Care)
	ids := map[string]string{}
	for i := range r.Episodes {
		c.episode(fmt.Sprintf("episodes[%d]", i), &r.Episodes[i], r.Patient.BirthDate, ids)
	}
	studies := map[string]bool{}
	for i, p := range r.Studies {
		at := fmt.Sprintf("studies[%d]", i)
		c.required(at+".study.id", p.Study.ID)
		c.required(at+".study.title", p.Study.Title)
		c.oneOf(at+".status", p.Status, true, "candidate", "on-study", "withdrawn", "off-study")
		c.date(at+".joined", p.Joined, false)
		c.date(at+".left", p.Left, false)
		c.date(at+".study.start", p.Study.Start, false)
		c.date(at+".study.completed", p.Study.Completed, false)
		if p.Study.Lead != nil {
			c.professional(at+".study.lead", p.Study.Lead)
		}
		c.unique(ids, at+".study.id", "study", p.Study.ID)
		studies[p.Study.ID] = true
	}
	for i, k := range r.Consents {
		at := fmt.Sprintf("consents[%d]", i)
		c.oneOf(at+".kind", k.Kind, true, ConsentKinds...)
		c.oneOf(at+".decision", k.Decision, true, "permit", "deny")
		c.date(at+".date", k.Date, true)
		switch k.Kind {
		case "study":
			if !studies[k.Study] {
				c.fail(at+".study", "consent names study %q, which is not among the record's studies", k.Study)
			}
		case "site-code":
			c.required(at+".siteCode", k.SiteCode)
		case "communications":
			for j, ch := range k.Channels {
				c.oneOf(fmt.Sprintf("%s.channels[%d]", at, j), ch, true, "email", "sms", "post", "phone")
			}
		}
	}
	for i, m := range r.Measurements {
		at := fmt.Sprintf("measurements[%d]", i)
		c.oneOf(at+".kind", m.Kind, true, "height", "weight")
		c.date(at+".date", m.Date, true)
		switch {
		case m.Kind == "height" && (m.Value < 30 || m.Value > 260):
			c.fail(at+".value", "a height of %g cm is not plausible (30–260)", m.Value)
		case m.Kind == "weight" && (m.Value < 1 || m.Value > 400):
			c.fail(at+".value", "a weight of %g kg is not plausible (1–400)", m.Value)
		}
	}
	for i, ch := range r.Children {
		at := fmt.Sprintf("children[%d]", i)
		c.ident(ids, at+".id", "child", ch.ID)
		c.day(at+".birthDate", ch.BirthDate, true)
		c.oneOf(at+".gender", ch.Gender, false, "male", "female", "other", "unknown")
	}
	if len(c.problems) > 0 {
		return c.problems
	}
	return nil
}

// ConsentKinds are the kinds of consent a record may carry (see Consent).
var ConsentKinds = []string{"care-sharing", "team-sharing", "site-code", "study", "njr", "hes", "phin", "marketing", "communications"}

func (c *checker) source(s Source) {
	u, err := url.Parse(s.System)
	if s.System == "" || err != nil || !u.IsAbs() {
		c.fail("source.system", "must be an absolute URI naming the sending system, not %q", s.System)
	}
	c.required("source.record", s.Record)
	c.date("source.updated", s.Updated, true)
}

func (c *checker) patient(p *Patient) {
	c.required("patient.id", p.ID)
	c.id("patient.id", p.ID)
	if p.NHSNumber != "" {
		if err := CheckNHSNumber(p.NHSNumber); err != nil {
			c.fail("patient.nhsNumber", "%v", err)
		}
	}
	c.oneOf("patient.nhsNumberStatus", p.NHSNumberStatus, false, sortedCodes(NHSNumberStatus)...)
	c.required("patient.family", p.Family)
	c.day("patient.birthDate", p.BirthDate, true)
	c.oneOf("patient.gender", p.Gender, true, "male", "female", "other", "unknown")
	c.oneOf("patient.sexAtBirth", p.SexAtBirth, false, "male", "female", "intersex", "unknown")
	c.oneOf("patient.ethnicity", p.Ethnicity, false, EthnicCategories()...)
	c.oneOf("patient.living", p.Living, false, "alone", "partner", "family", "carer", "care-home", "other")
	c.oneOf("patient.disability", p.Disability, false, "yes", "no", "not-stated")
	c.day("patient.deceased", p.Deceased, false)
	if p.Email != "" && !emailRE.MatchString(p.Email) {
		c.fail("patient.email", "%q is not an email address", p.Email)
	}
	for field, v := range map[string]string{"patient.mobile": p.Mobile, "patient.phone": p.Phone} {
		if v != "" && !phoneRE.MatchString(v) {
			c.fail(field, "%q is not a telephone number", v)
		}
	}
	if p.Address != nil && p.Address.Postcode != "" && !postcodeRE.MatchString(strings.ToUpper(p.Address.Postcode)) {
		c.fail("patient.address.postcode", "%q is not a UK postcode", p.Address.Postcode)
	}
}

func (c *checker) care(k *Care) {
	if k.GPPractice != nil {
		c.organisation("care.gpPractice", k.GPPractice)
	}
	if k.GP != nil {
		c.professional("care.gp", k.GP)
	}
	for i := range k.Providers {
		c.professional(fmt.Sprintf("care.providers[%d]", i), &k.Providers[i])
	}
	for i := range k.Team {
		c.professional(fmt.Sprintf("care.team[%d]", i), &k.Team[i])
	}
	for i, s := range k.SiteCodes {
		c.required(fmt.Sprintf("care.siteCodes[%d]", i), s)
	}
}

func (c *checker) organisation(at string, o *Organisation) {
	if !odsRE.MatchString(o.ODS) {
		c.fail(at+".ods", "%q is not an ODS code (3 to 10 letters and digits)", o.ODS)
	}
}

func (c *checker) professional(at string, p *Professional) {
	c.oneOf(at+".role", p.Role, true, "consultant", "surgeon", "gp", "nurse", "physiotherapist", "anaesthetist")
	c.oneOf(at+".register", p.Register, true, "gmc", "gmp", "nmc", "hcpc")
	if re, ok := registerNumber[p.Register]; ok && !re.MatchString(p.Number) {
		c.fail(at+".number", "%q is not a %s number (%s)", p.Number, strings.ToUpper(p.Register), registerHint[p.Register])
	}
	if p.Organisation != nil {
		c.organisation(at+".organisation", p.Organisation)
	}
}

// The register numbers' published formats: GMC reference numbers are 7
// digits; GMP (GP prescriber) codes G + 7 digits; NMC PINs two digits, a
// letter, four digits and a letter (e.g. 12A3456E); HCPC registration
// numbers a profession prefix (PH for physiotherapists) and digits.
var (
	registerNumber = map[string]*regexp.Regexp{
		"gmc":  regexp.MustCompile(`^\d{7}$`),
		"gmp":  regexp.MustCompile(`^G\d{7}$`),
		"nmc":  regexp.MustCompile(`^\d{2}[A-Z]\d{4}[A-Z]$`),
		"hcpc": regexp.MustCompile(`^[A-Z]{2}\d{1,6}$`),
	}
	registerHint = map[string]string{"gmc": "7 digits", "gmp": "G and 7 digits", "nmc": "e.g. 12A3456E", "hcpc": "e.g. PH123456"}
)

func (c *checker) episode(at string, e *Episode, birth string, ids map[string]string) {
	c.ident(ids, at+".id", "episode", e.ID)
	c.oneOf(at+".joint", e.Joint, true, "hip", "knee", "shoulder")
	c.oneOf(at+".side", e.Side, true, "left", "right", "bilateral")
	c.oneOf(at+".condition.type", e.Condition.Type, true, ConditionTypes...)
	c.partialDate(at+".condition.onset", e.Condition.Onset)
	c.date(at+".condition.recorded", e.Condition.Recorded, false)
	if m := e.Condition.SymptomMonths; m != nil && (*m < 0 || *m > 1200) {
		c.fail(at+".condition.symptomMonths", "%d months is not plausible", *m)
	}
	if e.Hospital != nil {
		c.organisation(at+".hospital", e.Hospital)
	}
	c.date(at+".start", e.Start, true)
	c.date(at+".end", e.End, false)
	if e.End != "" && e.Start != "" && e.End < e.Start {
		c.fail(at+".end", "the episode ends (%s) before it starts (%s)", e.End, e.Start)
	}
	for i := range e.Procedures {
		p := &e.Procedures[i]
		pa := fmt.Sprintf("%s.procedures[%d]", at, i)
		c.ident(ids, pa+".id", "procedure", p.ID)
		c.oneOf(pa+".kind", p.Kind, true, "primary", "revision")
		types := []string{"total", "hemi", "resurfacing", "unicompartmental"}
		if e.Joint == "shoulder" {
			types = append(types, "reverse")
		}
		c.oneOf(pa+".type", p.Type, true, types...)
		c.oneOf(pa+".side", p.Side, true, "left", "right", "bilateral")
		if p.Side != "" && e.Side != "" && p.Side != e.Side && e.Side != "bilateral" {
			c.fail(pa+".side", "the procedure is on the %s side but the episode's %s condition is on the %s side", p.Side, e.Joint, e.Side)
		}
		c.date(pa+".date", p.Date, true)
		if birth != "" && p.Date != "" && p.Date < birth {
			c.fail(pa+".date", "the procedure (%s) is before the patient's birth (%s)", p.Date, birth)
		}
		if p.Surgeon != nil {
			c.professional(pa+".surgeon", p.Surgeon)
		}
		if p.Hospital != nil {
			c.organisation(pa+".hospital", p.Hospital)
		}
		for j, a := range p.Anaesthetic {
			c.oneOf(fmt.Sprintf("%s.anaesthetic[%d]", pa, j), a, true, "general", "spinal", "epidural", "regional-block", "local", "sedation")
		}
		if p.ASA != 0 && (p.ASA < 1 || p.ASA > 6) {
			c.fail(pa+".asa", "ASA grade %d is not 1–6", p.ASA)
		}
		if p.BMI != nil && (*p.BMI < 10 || *p.BMI > 90) {
			c.fail(pa+".bmi", "a BMI of %g is not plausible (10–90)", *p.BMI)
		}
		for j, im := range p.Implants {
			ia := fmt.Sprintf("%s.implants[%d]", pa, j)
			c.required(ia+".component", im.Component)
			c.required(ia+".manufacturer", im.Manufacturer)
			c.required(ia+".catalogue", im.Catalogue)
			c.required(ia+".lot", im.Lot)
		}
	}
	for i, a := range e.Appointments {
		aa := fmt.Sprintf("%s.appointments[%d]", at, i)
		c.ident(ids, aa+".id", "appointment", a.ID)
		c.oneOf(aa+".service", a.Service, true, serviceKinds...)
		c.oneOf(aa+".status", a.Status, true, "booked", "fulfilled", "cancelled", "noshow")
		if _, err := time.Parse(time.RFC3339, a.Start); err != nil {
			c.fail(aa+".start", "%q is not an RFC 3339 date and time", a.Start)
		}
		switch {
		case a.Minutes < 0 || a.Minutes > 24*60:
			c.fail(aa+".minutes", "%d minutes is not plausible", a.Minutes)
		case a.Minutes == 0 && a.Status != "cancelled":
			// R4 app-3: only a cancelled (or proposed) appointment may lack an end.
			c.fail(aa+".minutes", "is required for a %s appointment (its end is its start plus minutes)", a.Status)
		}
		if a.With != nil {
			c.professional(aa+".with", a.With)
		}
	}
	for i, v := range e.Services {
		va := fmt.Sprintf("%s.services[%d]", at, i)
		c.ident(ids, va+".id", "service", v.ID)
		c.oneOf(va+".kind", v.Kind, true, serviceKinds...)
		c.oneOf(va+".setting", v.Setting, true, "inpatient", "outpatient", "virtual", "home")
		c.date(va+".start", v.Start, true)
		c.date(va+".end", v.End, false)
		if v.End != "" && v.Start != "" && v.End < v.Start {
			c.fail(va+".end", "the service ends (%s) before it starts (%s)", v.End, v.Start)
		}
		if v.Provider != nil {
			c.organisation(va+".provider", v.Provider)
		}
	}
	for i, r := range e.Referrals {
		ra := fmt.Sprintf("%s.referrals[%d]", at, i)
		c.ident(ids, ra+".id", "referral", r.ID)
		c.oneOf(ra+".service", r.Service, true, "orthopaedics", "physiotherapy", "pain-clinic", "other")
		c.oneOf(ra+".status", r.Status, true, "active", "completed", "revoked")
		c.date(ra+".date", r.Date, true)
		if r.From != nil {
			c.professional(ra+".from", r.From)
		}
		if r.To != nil {
			c.organisation(ra+".to", r.To)
		}
	}
	for i := range e.Responses {
		r := &e.Responses[i]
		ra := fmt.Sprintf("%s.responses[%d]", at, i)
		c.ident(ids, ra+".id", "response", r.ID)
		c.oneOf(ra+".timepoint", r.Timepoint, true, "pre-op", "post-op-6m", "post-op-12m", "other")
		c.date(ra+".completed", r.Completed, true)
		in, err := proms.Lookup(r.Instrument, r.Version)
		if err != nil {
			c.fail(ra+".instrument", "%v", err)
			continue
		}
		if ok := joints[r.Instrument]; ok != "" && ok != e.Joint {
			c.fail(ra+".instrument", "%s is a %s questionnaire, but the episode is for a %s", r.Instrument, ok, e.Joint)
		}
		if err := in.Check(r.Answers); err != nil {
			c.fail(ra+".answers", "%v", err)
		}
	}
	for i, a := range e.Aspirations {
		aa := fmt.Sprintf("%s.aspirations[%d]", at, i)
		c.ident(ids, aa+".id", "aspiration", a.ID)
		c.required(aa+".text", a.Text)
		c.day(aa+".set", a.Set, true)
		for j, p := range a.Progress {
			pa := fmt.Sprintf("%s.progress[%d]", aa, j)
			c.day(pa+".date", p.Date, true)
			c.oneOf(pa+".status", p.Status, true, "achieved", "partly", "not-yet", "abandoned")
		}
	}
}

// joints names the joint each joint-specific instrument is for.
var joints = map[string]string{"oxford-hip": "hip", "oxford-knee": "knee", "oxford-shoulder": "shoulder"}

// ConditionTypes are the diagnoses an episode may be for.
var ConditionTypes = []string{"osteoarthritis", "rheumatoid-arthritis", "avascular-necrosis", "fracture", "cuff-tear-arthropathy", "failed-replacement", "other"}

// ident checks one of the record's own ids: present, usable as an
// identifier value, and not used twice for the same kind.
func (c *checker) ident(seen map[string]string, field, kind, id string) {
	c.required(field, id)
	c.id(field, id)
	c.unique(seen, field, kind, id)
}

func (c *checker) required(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "is required")
	}
}

// id checks a platform id can be part of an identifier value and a FHIR id
// (1–64 of A–Z a–z 0–9 - .).
func (c *checker) id(field, v string) {
	if v != "" && !idRE.MatchString(v) {
		c.fail(field, "%q is not a usable id (1–64 letters, digits, '-' and '.')", v)
	}
}

func (c *checker) unique(seen map[string]string, field, kind, id string) {
	if id == "" {
		return
	}
	key := kind + "/" + id
	if prev, ok := seen[key]; ok {
		c.fail(field, "%s id %q is used twice (also at %s)", kind, id, prev)
		return
	}
	seen[key] = field
}

// serviceKinds are the kinds of an appointment's service and of a service
// accessed.
var serviceKinds = []string{"pre-assessment", "surgery", "follow-up", "physiotherapy", "other"}

func (c *checker) oneOf(field, v string, required bool, allowed ...string) {
	if v == "" {
		if required {
			c.fail(field, "is required (one of %s)", strings.Join(allowed, ", "))
		}
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.fail(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

// day checks a calendar date (YYYY-MM-DD) alone, for fields FHIR keeps as
// a date (birth dates, a goal's dates).
func (c *checker) day(field, v string, required bool) {
	if v != "" && len(v) != 10 {
		c.fail(field, "%q is not a date (YYYY-MM-DD)", v)
		return
	}
	c.date(field, v, required)
}

// date checks a calendar date (YYYY-MM-DD) or an RFC 3339 instant: a real
// day of the calendar (no 30 February), not in the future.
func (c *checker) date(field, v string, required bool) {
	if v == "" {
		if required {
			c.fail(field, "is required (YYYY-MM-DD)")
		}
		return
	}
	t, err := ParseDate(v)
	if err != nil {
		c.fail(field, "%v", err)
		return
	}
	if t.After(c.now.Add(24 * time.Hour)) {
		c.fail(field, "%s is in the future", v)
	}
}

// partialDate allows YYYY, YYYY-MM or a full date.
func (c *checker) partialDate(field, v string) {
	switch {
	case v == "":
	case len(v) == 4 || len(v) == 7:
		layout := map[int]string{4: "2006", 7: "2006-01"}[len(v)]
		if _, err := time.Parse(layout, v); err != nil {
			c.fail(field, "%q is not a year or year-month", v)
		}
	default:
		c.date(field, v, false)
	}
}

// ParseDate reads YYYY-MM-DD or an RFC 3339 instant.
func ParseDate(v string) (time.Time, error) {
	if len(v) == 10 {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return t, fmt.Errorf("%q is not a real date (YYYY-MM-DD)", v)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 date and time", v)
	}
	return t, nil
}

var (
	idRE       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	odsRE      = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
	emailRE    = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	phoneRE    = regexp.MustCompile(`^\+?[0-9 ()\-]{6,20}$`)
	postcodeRE = regexp.MustCompile(`^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$`)
)

// CheckNHSNumber verifies a 10-digit NHS number's Modulus 11 check digit
// (NHS Data Dictionary, "NHS Number"): multiply the first nine digits by 10
// down to 2, sum, take the remainder of dividing by 11 and subtract it from
// 11; 11 means a check digit of 0, and 10 means the number is invalid.
// Spaces are allowed between digits.
func CheckNHSNumber(n string) error {
	digits := strings.ReplaceAll(n, " ", "")
	if len(digits) != 10 {
		return fmt.Errorf("NHS number %q does not have 10 digits", n)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		d := digits[i]
		if d < '0' || d > '9' {
			return fmt.Errorf("NHS number %q has a character that is not a digit", n)
		}
		if i < 9 {
			sum += int(d-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return fmt.Errorf("NHS number %q is not valid: its first nine digits have no check digit", n)
	}
	if int(digits[9]-'0') != check {
		return fmt.Errorf("NHS number %q fails the Modulus 11 check (check digit should be %d)", n, check)
	}
	return nil
}

// NormaliseNHSNumber removes spaces.
func NormaliseNHSNumber(n string) string { return strings.ReplaceAll(n, " ", "") }

// EthnicCategory is the NHS Data Dictionary ethnic category (England), code
// to display, as UK Core's CodeSystem UKCore-EthnicCategoryEngland carries
// it.
var EthnicCategory = map[string]string{
	"A": "White - British", "B": "White - Irish", "C": "White - Any other White background",
	"D": "Mixed - White and Black Caribbean", "E": "Mixed - White and Black African", "F": "Mixed - White and Asian",
	"G": "Mixed - Any other mixed background", "H": "Asian or Asian British - Indian", "J": "Asian or Asian British - Pakistani",
	"K": "Asian or Asian British - Bangladeshi", "L": "Asian or Asian British - Any other Asian background",
	"M": "Black or Black British - Caribbean", "N": "Black or Black British - African",
	"P": "Black or Black British - Any other Black background", "R": "Other Ethnic Groups - Chinese",
	"S": "Other Ethnic Groups - Any other ethnic group", "Z": "Not stated", "99": "Not known",
}

// EthnicCategories lists EthnicCategory's codes in order.
func EthnicCategories() []string { return sortedCodes(EthnicCategory) }

func sortedCodes(m map[string]string) []string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return codes
}

// NHSNumberStatus is the NHS number status indicator (England), code to
// display, as UK Core's CodeSystem UKCore-NHSNumberVerificationStatusEngland
// carries it.
var NHSNumberStatus = map[string]string{
	"01": "Number present and verified", "02": "Number present but not traced", "03": "Trace required",
	"04": "Trace attempted - No match or multiple match found",
	"05": "Trace needs to be resolved - (NHS number or patient detail conflict)", "06": "Trace in progress",
	"07": "Number not present and trace not required", "08": "Trace postponed (baby under six weeks old)",
}
