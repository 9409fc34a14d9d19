package proms

import (
	"fmt"
	"sort"
	"strconv"
)

// Instrument is one versioned questionnaire definition the platform uses.
// Items carry short descriptive labels, not the instruments' wording: the
// Oxford scores are licensed by Oxford University Innovation and EQ-5D by
// the EuroQol Research Foundation, and their text is theirs to publish.
type Instrument struct {
	// ID names the instrument (oxford-hip, eq5d-5l, ...); Version is its
	// definition's version. A response must name both.
	ID, Version string
	Title       string
	// Copyright is the instrument owner's notice.
	Copyright string
	Items     []Item
}

// ItemType is how an item is answered.
type ItemType string

// The item types, named as FHIR Questionnaire.item.type names them.
const (
	Choice  ItemType = "choice"
	Integer ItemType = "integer"
)

// Item is one question.
type Item struct {
	// Code is the item's linkId and the key of its answers in a Response.
	Code string
	Text string
	Type ItemType
	// Options are the answers a choice item allows.
	Options []Option
	// Min and Max bound an integer item.
	Min, Max int
}

// Option is one answer of a choice item. Value is what it scores (the
// Oxford item score 0–4, the EQ-5D level 1–5; 0 where it scores nothing).
type Option struct {
	Code    string
	Display string
	Value   int
}

// Instruments are every definition the gateway holds, by ID then Version.
var Instruments = map[string]map[string]*Instrument{}

func register(in *Instrument) {
	if Instruments[in.ID] == nil {
		Instruments[in.ID] = map[string]*Instrument{}
	}
	Instruments[in.ID][in.Version] = in
}

// Lookup returns the definition of an instrument version.
func Lookup(id, version string) (*Instrument, error) {
	versions, ok := Instruments[id]
	if !ok {
		return nil, fmt.Errorf("unknown questionnaire %q (known: %v)", id, known())
	}
	in, ok := versions[version]
	if !ok {
		var have []string
		for v := range versions {
			have = append(have, v)
		}
		sort.Strings(have)
		return nil, fmt.Errorf("questionnaire %s has no version %q (known: %v)", id, version, have)
	}
	return in, nil
}

func known() []string {
	var ids []string
	for id := range Instruments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Item returns the item with code, or nil.
func (in *Instrument) Item(code string) *Item {
	for i := range in.Items {
		if in.Items[i].Code == code {
			return &in.Items[i]
		}
	}
	return nil
}

// Option returns the option with code, or nil.
func (it *Item) Option(code string) *Option {
	for i := range it.Options {
		if it.Options[i].Code == code {
			return &it.Options[i]
		}
	}
	return nil
}

// Check verifies answers against the definition: every key an item, every
// value an option of its item (or an integer within bounds), at most one
// value for an integer item. Blank items are allowed; scoring decides what
// they mean.
func (in *Instrument) Check(answers map[string][]string) error {
	codes := make([]string, 0, len(answers))
	for code := range answers {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		it := in.Item(code)
		if it == nil {
			return fmt.Errorf("%s %s has no item %q", in.ID, in.Version, code)
		}
		values := answers[code]
		switch it.Type {
		case Choice:
			for _, v := range values {
				if it.Option(v) == nil {
					return fmt.Errorf("%s item %s: %q is not one of its answers %v", in.ID, code, v, it.codes())
				}
			}
		case Integer:
			if len(values) > 1 {
				return fmt.Errorf("%s item %s takes one number, not %d", in.ID, code, len(values))
			}
			for _, v := range values {
				n, err := strconv.Atoi(v)
				if err != nil || n < it.Min || n > it.Max {
					return fmt.Errorf("%s item %s: %q is not a whole number %d–%d", in.ID, code, v, it.Min, it.Max)
				}
			}
		}
	}
	return nil
}

func (it *Item) codes() []string {
	var c []string
	for _, o := range it.Options {
		c = append(c, o.Code)
	}
	return c
}

// oxfordOptions are an Oxford item's five answers, scored 4 (best) to 0
// (worst); the published wording of each answer differs per item, so the
// displays name the score's meaning only.
func oxfordOptions() []Option {
	return []Option{
		{"4", "4 (no difficulty or pain)", 4},
		{"3", "3", 3},
		{"2", "2", 2},
		{"1", "1", 1},
		{"0", "0 (most difficulty or pain)", 0},
	}
}

func oxford(id Oxford, title, copyright string, labels [OxfordItems]string) *Instrument {
	in := &Instrument{ID: string(id), Version: "1", Title: title, Copyright: copyright}
	for i, l := range labels {
		in.Items = append(in.Items, Item{Code: strconv.Itoa(i + 1), Text: l, Type: Choice, Options: oxfordOptions()})
	}
	return in
}

const oxfordCopyright = "The Oxford Hip, Knee and Shoulder Scores are © Oxford University Innovation Limited; used under licence. Item labels here are descriptive, not the licensed wording."

// The items of each Oxford score, in the published order, as short
// descriptions (Dawson et al. 1996, 1998; Dawson et al. 1996 for the
// shoulder).
var (
	oxfordHipItems = [OxfordItems]string{
		"Usual hip pain", "Washing and drying", "Getting in and out of a car or public transport",
		"Putting on socks or tights", "Household shopping alone", "How long walking before severe pain",
		"Climbing a flight of stairs", "Pain standing up from a chair", "Limping when walking",
		"Sudden severe pain from the hip", "Pain interfering with usual work", "Pain in bed at night",
	}
	oxfordKneeItems = [OxfordItems]string{
		"Usual knee pain", "Washing and drying", "Getting in and out of a car or public transport",
		"How long walking before severe pain", "Pain standing up from a chair", "Limping when walking",
		"Kneeling down and getting up", "Pain in bed at night", "Pain interfering with usual work",
		"Knee giving way", "Household shopping alone", "Walking down a flight of stairs",
	}
	oxfordShoulderItems = [OxfordItems]string{
		"Worst shoulder pain", "Dressing", "Getting in and out of a car or public transport",
		"Using a knife and fork together", "Household shopping alone", "Carrying a tray of food across a room",
		"Brushing or combing hair", "Usual shoulder pain", "Hanging clothes in a wardrobe",
		"Washing and drying under both arms", "Pain interfering with usual work", "Pain in bed at night",
	}
)

// EQ5DDimensions are the item codes of the five EQ-5D dimensions, in the
// descriptive system's order; EQVAS is the code of the visual analogue
// scale.
var EQ5DDimensions = [5]string{"mobility", "self-care", "usual-activities", "pain-discomfort", "anxiety-depression"}

// EQVAS is the item code of EQ-VAS.
const EQVAS = "vas"

func eq5d(version EQ5D) *Instrument {
	id := fmt.Sprintf("eq5d-%dl", version)
	in := &Instrument{ID: id, Version: "1", Title: fmt.Sprintf("EQ-5D-%dL", version),
		Copyright: "EQ-5D is a trade mark of the EuroQol Research Foundation; used under licence. Item labels here are descriptive, not the licensed wording."}
	labels := [5]string{"Mobility", "Self-care", "Usual activities", "Pain / discomfort", "Anxiety / depression"}
	for d, code := range EQ5DDimensions {
		it := Item{Code: code, Text: labels[d], Type: Choice}
		for l := 1; l <= int(version); l++ {
			disp := fmt.Sprintf("Level %d", l)
			switch l {
			case 1:
				disp += " (no problems)"
			case int(version):
				disp += " (extreme problems or unable)"
			}
			it.Options = append(it.Options, Option{strconv.Itoa(l), disp, l})
		}
		in.Items = append(in.Items, it)
	}
	in.Items = append(in.Items, Item{Code: EQVAS, Text: "Health today, 0 (worst imaginable) to 100 (best imaginable)", Type: Integer, Min: 0, Max: 100})
	return in
}

func yesNo(code, text string) Item {
	return Item{Code: code, Text: text, Type: Choice, Options: []Option{{"yes", "Yes", 1}, {"no", "No", 0}}}
}

// Comorbidities is the pre-operative comorbidity list of the NHS PROMs
// programme's questionnaires: has a doctor ever told the patient they have
// each condition.
var Comorbidities = []struct{ Code, Text string }{
	{"heart-disease", "Heart disease"},
	{"high-blood-pressure", "High blood pressure"},
	{"stroke", "Stroke"},
	{"circulation", "Poor circulation or leg pain when walking"},
	{"lung-disease", "Lung disease"},
	{"diabetes", "Diabetes"},
	{"kidney-disease", "Kidney disease"},
	{"nervous-system", "Disease of the nervous system"},
	{"liver-disease", "Liver disease"},
	{"cancer", "Cancer"},
	{"depression", "Depression"},
	{"arthritis", "Arthritis"},
}

// Complications are the post-operative problems the follow-up
// questionnaire asks about.
var Complications = []struct{ Code, Text string }{
	{"allergy", "Allergy or reaction to a drug"},
	{"bleeding", "Bleeding"},
	{"wound", "Wound problems"},
	{"urinary", "Urinary problems"},
	{"further-surgery", "Further surgery on the joint"},
	{"readmission", "Readmitted to hospital"},
}

func comorbidities() *Instrument {
	in := &Instrument{ID: "comorbidities", Version: "1", Title: "Comorbidities"}
	for _, c := range Comorbidities {
		in.Items = append(in.Items, yesNo(c.Code, c.Text))
	}
	return in
}

func postOp() *Instrument {
	in := &Instrument{ID: "post-op", Version: "1", Title: "Post-operative outcome"}
	in.Items = append(in.Items,
		Item{Code: "satisfaction", Text: "Satisfaction with the result of the operation", Type: Choice, Options: []Option{
			{"excellent", "Excellent", 5}, {"very-good", "Very good", 4}, {"good", "Good", 3}, {"fair", "Fair", 2}, {"poor", "Poor", 1}}},
		Item{Code: "success", Text: "Problems now compared with before the operation", Type: Choice, Options: []Option{
			{"much-better", "Much better", 5}, {"little-better", "A little better", 4}, {"same", "About the same", 3},
			{"little-worse", "A little worse", 2}, {"much-worse", "Much worse", 1}}},
	)
	for _, c := range Complications {
		in.Items = append(in.Items, yesNo(c.Code, c.Text))
	}
	return in
}

func init() {
	register(oxford(OxfordHip, "Oxford Hip Score", oxfordCopyright, oxfordHipItems))
	register(oxford(OxfordKnee, "Oxford Knee Score", oxfordCopyright, oxfordKneeItems))
	register(oxford(OxfordShoulder, "Oxford Shoulder Score", oxfordCopyright, oxfordShoulderItems))
	register(eq5d(EQ5D3L))
	register(eq5d(EQ5D5L))
	register(comorbidities())
	register(postOp())
}

// Result is what a response scores: the totals an instrument defines.
type Result struct {
	// Oxford is the Oxford total, for an Oxford instrument.
	Oxford *Score
	// EQ5D is the EQ-5D profile, index and VAS, for an EQ-5D instrument.
	EQ5D *EQ5DResult
}

// ScoreResponse checks answers against in and scores them. Instruments
// without a total (comorbidities, post-op) score nothing.
func ScoreResponse(in *Instrument, answers map[string][]string) (Result, error) {
	if err := in.Check(answers); err != nil {
		return Result{}, err
	}
	levels := func(code string) []int {
		var out []int
		for _, v := range answers[code] {
			out = append(out, in.Item(code).Option(v).Value)
		}
		return out
	}
	switch in.ID {
	case string(OxfordHip), string(OxfordKnee), string(OxfordShoulder):
		items := make([][]int, OxfordItems)
		for i := range items {
			items[i] = levels(strconv.Itoa(i + 1))
		}
		s, err := ScoreOxford(items)
		return Result{Oxford: &s}, err
	case "eq5d-3l", "eq5d-5l":
		var dims [5][]int
		for d, code := range EQ5DDimensions {
			dims[d] = levels(code)
		}
		var vas *int
		if v := answers[EQVAS]; len(v) == 1 {
			n, _ := strconv.Atoi(v[0]) // Check proved it a number
			vas = &n
		}
		version := EQ5D3L
		if in.ID == "eq5d-5l" {
			version = EQ5D5L
		}
		r, err := ScoreEQ5D(version, dims, vas)
		return Result{EQ5D: &r}, err
	}
	return Result{}, nil
}
