// Package synthetic makes realistic but invented platform records for
// demonstrations, tests and benchmarks: hip, knee and shoulder pathways in
// roughly the proportions the National Joint Registry reports (knees and
// hips about equal, shoulders a few per cent), pre-operative Oxford scores
// in the high teens that improve by around 17 points after surgery, EQ-5D
// that moves with them, consents, studies and aspirations. NHS numbers come
// from the 999 range NHS England keeps for testing, so no generated number
// is a real person's. The same seed makes the same records.
package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/proms"
)

// Options steer the generator.
type Options struct {
	Seed uint64
	// Invalid is the share of records (0–1) given one of the mistakes the
	// gateway must refuse (see Mistakes).
	Invalid float64
	// System is the source system of every record.
	System string
	// Now is the present: every date falls before it.
	Now time.Time
}

// Mistakes are the ways an invalid record is wrong, in the order they are
// used.
var Mistakes = []string{"nhs-check-digit", "impossible-date", "unknown-answer", "unknown-version", "wrong-side"}

// Generator makes records one at a time.
type Generator struct {
	opt Options
	rnd *rand.Rand
	n   int
}

// New returns a generator.
func New(opt Options) *Generator {
	if opt.System == "" {
		opt.System = "https://proms.example.org"
	}
	if opt.Now.IsZero() {
		opt.Now = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	}
	return &Generator{opt: opt, rnd: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))}
}

var (
	givenF   = []string{"Ann", "Margaret", "Susan", "Patricia", "Linda", "Helen", "Carol", "Jean", "Aisha", "Priya", "Fatima", "Mary", "Joan", "Sandra", "Janet"}
	givenM   = []string{"John", "David", "Michael", "Peter", "Robert", "Stephen", "Paul", "Brian", "Mohammed", "Raj", "Kevin", "Alan", "Tom", "Graham", "Ian"}
	families = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "Khan", "Hughes", "Green", "Hall", "Wood", "Clarke"}
	towns    = []struct{ city, district, area string }{
		{"Leeds", "West Yorkshire", "LS"}, {"Bristol", "Avon", "BS"}, {"Manchester", "Greater Manchester", "M"},
		{"Norwich", "Norfolk", "NR"}, {"Exeter", "Devon", "EX"}, {"Nottingham", "Nottinghamshire", "NG"}, {"Leicester", "Leicestershire", "LE"},
	}
	streets   = []string{"Church Lane", "High Street", "Station Road", "Mill Lane", "Victoria Road", "Park Avenue", "The Green", "Kings Road"}
	hospitals = []mapping.Organisation{{ODS: "RX1", Name: "Example Teaching Hospitals NHS Trust"}, {ODS: "RX2", Name: "Example County Hospital NHS Foundation Trust"},
		{ODS: "NX3", Name: "Example Independent Orthopaedic Hospital"}}
	manufacturers = []string{"Example Orthopaedics Ltd", "Sample Joints plc", "Model Implants GmbH"}
	components    = map[string][]string{"hip": {"Femoral stem", "Femoral head", "Acetabular cup", "Acetabular liner"},
		"knee": {"Femoral component", "Tibial tray", "Tibial insert", "Patellar button"}, "shoulder": {"Humeral stem", "Humeral head", "Glenoid component"}}
	aspirations = []string{"Walk the dog to the park and back", "Play a round of golf", "Get back to gardening", "Climb the stairs without stopping",
		"Go dancing again", "Pick up my grandchildren", "Swim twice a week", "Walk to the shops"}
	ethnicities = []string{"A", "A", "A", "A", "A", "B", "C", "D", "H", "J", "K", "M", "N", "R", "S", "Z"}
)

func (g *Generator) pick(list []string) string { return list[g.rnd.IntN(len(list))] }

// nhsNumber makes a valid NHS number in the test range 999 000 0000 onwards.
func (g *Generator) nhsNumber() string {
	for {
		d := "999" + fmt.Sprintf("%06d", g.rnd.IntN(1000000))
		sum := 0
		for i := 0; i < 9; i++ {
			sum += int(d[i]-'0') * (10 - i)
		}
		check := 11 - sum%11
		if check == 10 {
			continue
		}
		if check == 11 {
			check = 0
		}
		return d + strconv.Itoa(check)
	}
}

func date(t time.Time) string { return t.Format("2006-01-02") }

// clampRound is a normal draw rounded and held within [lo, hi].
func (g *Generator) normal(mean, sd, lo, hi float64) int {
	return int(math.Max(lo, math.Min(hi, math.Round(mean+sd*g.rnd.NormFloat64()))))
}

// Next makes the next record.
func (g *Generator) Next() *mapping.Record {
	g.n++
	n := g.n
	female := g.rnd.IntN(100) < 58 // most joint replacement patients are women
	gender, given := "male", g.pick(givenM)
	if female {
		gender, given = "female", g.pick(givenF)
	}
	family := g.pick(families)
	age := g.normal(69, 9, 40, 95)
	birth := g.opt.Now.AddDate(-age, -g.rnd.IntN(12), -g.rnd.IntN(28))
	town := towns[g.rnd.IntN(len(towns))]
	pid := fmt.Sprintf("p-%07d", n)
	r := &mapping.Record{
		Source: mapping.Source{System: g.opt.System, Record: fmt.Sprintf("rec-%07d", n), Updated: g.opt.Now.Add(-time.Duration(g.rnd.IntN(86400)) * time.Second).Format(time.RFC3339)},
		Patient: mapping.Patient{
			ID: pid, NHSNumber: g.nhsNumber(), NHSNumberStatus: "01", Given: []string{given}, Family: family,
			BirthDate: date(birth), Gender: gender, SexAtBirth: gender,
			Address: &mapping.Address{Lines: []string{fmt.Sprintf("%d %s", 1+g.rnd.IntN(200), g.pick(streets))}, City: town.city, District: town.district,
				Postcode: fmt.Sprintf("%s%d %d%c%c", town.area, 1+g.rnd.IntN(20), g.rnd.IntN(10), 'A'+rune(g.rnd.IntN(26)), 'A'+rune(g.rnd.IntN(26)))},
			Email:     fmt.Sprintf("%s.%s%d@example.org", given, family, n),
			Mobile:    fmt.Sprintf("07700 9%05d", g.rnd.IntN(100000)),
			Ethnicity: g.pick(ethnicities), Living: g.pick([]string{"alone", "partner", "partner", "family"}),
			Disability: g.pick([]string{"no", "no", "yes", "not-stated"}),
		},
	}
	hospital := hospitals[g.rnd.IntN(len(hospitals))]
	surgeon := mapping.Professional{Role: "consultant", Register: "gmc", Number: fmt.Sprintf("7%06d", g.rnd.IntN(1000000)),
		Title: "Mr", Given: []string{g.pick(givenM)}, Family: g.pick(families), Organisation: &hospital}
	r.Care = mapping.Care{
		GPPractice: &mapping.Organisation{ODS: fmt.Sprintf("B%05d", g.rnd.IntN(100000))},
		Providers:  []mapping.Professional{surgeon},
		SiteCodes:  []string{hospital.ODS + "-PROMS"},
	}
	joint := "knee"
	switch x := g.rnd.IntN(100); {
	case x < 45:
		joint = "hip"
	case x < 95:
		joint = "knee"
	default:
		joint = "shoulder"
	}
	side := g.pick([]string{"left", "right"})
	start := g.opt.Now.AddDate(0, -14-g.rnd.IntN(10), 0)
	op := start.AddDate(0, 2+g.rnd.IntN(3), g.rnd.IntN(28))
	eid := fmt.Sprintf("e-%07d", n)
	bmi := math.Round((22+8*g.rnd.Float64()+g.rnd.NormFloat64())*10) / 10
	proc := mapping.Procedure{ID: fmt.Sprintf("op-%07d", n), Kind: "primary", Type: "total", Side: side, Date: date(op),
		Surgeon: &surgeon, Anaesthetic: []string{g.pick([]string{"general", "spinal", "spinal"})}, ASA: 1 + g.rnd.IntN(3), BMI: &bmi}
	if joint == "shoulder" && g.rnd.IntN(2) == 0 {
		proc.Type = "reverse"
	}
	if g.rnd.IntN(100) < 8 {
		proc.Kind = "revision"
	}
	for _, c := range components[joint] {
		proc.Implants = append(proc.Implants, mapping.Implant{Component: c, Manufacturer: g.pick(manufacturers),
			Catalogue: fmt.Sprintf("%s-%04d", c[:2], g.rnd.IntN(10000)), Lot: fmt.Sprintf("L%07d", g.rnd.IntN(10000000))})
	}
	months := g.normal(30, 18, 3, 240)
	ep := mapping.Episode{ID: eid, Joint: joint, Side: side, Start: date(start), Hospital: &hospital, SiteCode: hospital.ODS + "-PROMS",
		Condition:  mapping.Condition{Type: g.pick([]string{"osteoarthritis", "osteoarthritis", "osteoarthritis", "rheumatoid-arthritis", "avascular-necrosis"}), SymptomMonths: &months, PreviousSurgery: ptr(g.rnd.IntN(10) == 0), Recorded: date(start)},
		Procedures: []mapping.Procedure{proc},
		Services: []mapping.Service{{ID: fmt.Sprintf("svc-%07d", n), Kind: "surgery", Setting: "inpatient",
			Start: date(op), End: date(op.AddDate(0, 0, 1+g.rnd.IntN(4))), Provider: &hospital}},
	}
	if joint == "shoulder" && ep.Condition.Type == "avascular-necrosis" {
		ep.Condition.Type = "cuff-tear-arthropathy"
	}
	pre := op.AddDate(0, 0, -14-g.rnd.IntN(30))
	post := op.AddDate(0, 6, g.rnd.IntN(20))
	oxford := "oxford-" + joint
	preMean := 18.0
	gain := 20.0
	if joint == "knee" {
		preMean, gain = 19, 17
	}
	preScore := g.normal(preMean, 7, 0, 48)
	postScore := g.normal(float64(preScore)+gain, 9, 0, 48)
	ep.Responses = append(ep.Responses,
		g.oxfordResponse(fmt.Sprintf("r-%07d-1", n), oxford, "pre-op", pre, preScore),
		g.eq5dResponse(fmt.Sprintf("r-%07d-2", n), "pre-op", pre, 3),
		g.comorbidityResponse(fmt.Sprintf("r-%07d-3", n), pre),
	)
	if post.Before(g.opt.Now) {
		ep.Responses = append(ep.Responses,
			g.oxfordResponse(fmt.Sprintf("r-%07d-4", n), oxford, "post-op-6m", post, postScore),
			g.eq5dResponse(fmt.Sprintf("r-%07d-5", n), "post-op-6m", post, 1),
		)
	}
	asp := mapping.Aspiration{ID: fmt.Sprintf("asp-%07d", n), Text: g.pick(aspirations), Set: date(pre)}
	if post.Before(g.opt.Now) {
		status := "achieved"
		if postScore < 30 {
			status = g.pick([]string{"partly", "not-yet"})
		}
		asp.Progress = []mapping.Progress{{Date: date(post), Status: status}}
	}
	ep.Aspirations = []mapping.Aspiration{asp}
	r.Episodes = []mapping.Episode{ep}
	r.Consents = []mapping.Consent{
		{Kind: "care-sharing", Decision: "permit", Date: date(start)},
		{Kind: "site-code", Decision: "permit", Date: date(start), SiteCode: hospital.ODS + "-PROMS"},
		{Kind: "njr", Decision: g.pick([]string{"permit", "permit", "permit", "deny"}), Date: date(op)},
		{Kind: "marketing", Decision: g.pick([]string{"deny", "deny", "permit"}), Date: date(start)},
	}
	r.Measurements = []mapping.Measurement{
		{Kind: "height", Value: float64(g.normal(map[string]float64{"female": 162, "male": 176}[gender], 7, 140, 200)), Date: date(start)},
	}
	r.Measurements = append(r.Measurements, mapping.Measurement{Kind: "weight", Value: math.Round(bmi*math.Pow(r.Measurements[0].Value/100, 2)*10) / 10, Date: date(start)})
	if g.opt.Invalid > 0 && g.rnd.Float64() < g.opt.Invalid {
		g.spoil(r)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// oxfordResponse answers an Oxford questionnaire so that it totals about
// target, now and then with an item left blank or two boxes ticked.
func (g *Generator) oxfordResponse(id, instrument, timepoint string, when time.Time, target int) mapping.Response {
	answers := map[string][]string{}
	left := target
	for i := 1; i <= proms.OxfordItems; i++ {
		remaining := proms.OxfordItems - i + 1
		v := int(math.Round(float64(left) / float64(remaining)))
		v = max(0, min(4, v+g.rnd.IntN(3)-1))
		if i == proms.OxfordItems {
			v = max(0, min(4, left))
		}
		left -= v
		answers[strconv.Itoa(i)] = []string{strconv.Itoa(v)}
	}
	switch x := g.rnd.IntN(100); {
	case x < 4:
		answers[strconv.Itoa(1+g.rnd.IntN(12))] = []string{}
	case x < 6:
		item := strconv.Itoa(1 + g.rnd.IntN(12))
		v, _ := strconv.Atoi(answers[item][0])
		answers[item] = append(answers[item], strconv.Itoa(max(0, v-1)))
	}
	return mapping.Response{ID: id, Instrument: instrument, Version: "1", Timepoint: timepoint, Completed: date(when), Answers: answers}
}

// eq5dResponse answers EQ-5D-5L around a typical level.
func (g *Generator) eq5dResponse(id, timepoint string, when time.Time, level int) mapping.Response {
	answers := map[string][]string{}
	worst := 0
	for _, d := range proms.EQ5DDimensions {
		l := max(1, min(5, level+g.rnd.IntN(3)-1))
		worst = max(worst, l)
		answers[d] = []string{strconv.Itoa(l)}
	}
	answers[proms.EQVAS] = []string{strconv.Itoa(g.normal(95-12*float64(worst), 10, 0, 100))}
	return mapping.Response{ID: id, Instrument: "eq5d-5l", Version: "1", Timepoint: timepoint, Completed: date(when), Answers: answers}
}

func (g *Generator) comorbidityResponse(id string, when time.Time) mapping.Response {
	answers := map[string][]string{}
	for _, c := range proms.Comorbidities {
		a := "no"
		if g.rnd.IntN(100) < 15 {
			a = "yes"
		}
		answers[c.Code] = []string{a}
	}
	return mapping.Response{ID: id, Instrument: "comorbidities", Version: "1", Timepoint: "pre-op", Completed: date(when), Answers: answers}
}

// spoil gives r one of the Mistakes, in turn.
func (g *Generator) spoil(r *mapping.Record) {
	e := &r.Episodes[0]
	switch Mistakes[g.n%len(Mistakes)] {
	case "nhs-check-digit":
		d := r.Patient.NHSNumber
		r.Patient.NHSNumber = d[:9] + strconv.Itoa((int(d[9]-'0')+1)%10)
	case "impossible-date":
		e.Procedures[0].Date = e.Procedures[0].Date[:5] + "02-30"
	case "unknown-answer":
		e.Responses[0].Answers["1"] = []string{"7"}
	case "unknown-version":
		e.Responses[0].Version = "9"
	case "wrong-side":
		e.Procedures[0].Side = map[string]string{"left": "right", "right": "left"}[e.Side]
	}
}
