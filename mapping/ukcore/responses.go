package ukcore

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/proms"
)

// questionnaire adds the canonical definition of an instrument version
// (UK Core Questionnaire): one resource per instrument and version, with
// item codes as linkIds and answer options as codings whose ordinalValue is
// what they score. Its url is the platform's (the platform runs the
// instruments): System + "/Questionnaire/" + instrument.
func (b *builder) questionnaire(in *proms.Instrument) (string, error) {
	canonical := b.base + "/Questionnaire/" + in.ID
	id := b.localID("questionnaire", in.ID+"-"+in.Version)
	key := canonical + "|" + in.Version
	raw, ok := definitions.Load(key)
	if !ok {
		built, err := b.buildQuestionnaire(in, canonical, id)
		if err != nil {
			return "", err
		}
		raw, _ = definitions.LoadOrStore(key, built)
	}
	if _, err := b.put("Questionnaire", id, raw.(json.RawMessage)); err != nil {
		return "", err
	}
	return key, nil
}

// definitions memoises each Questionnaire's JSON by canonical URL and
// version: an instrument version's definition never changes (package
// proms), and every record with responses names one, so building it again
// for each was a thirtieth of the records pipeline's CPU.
var definitions sync.Map

func (b *builder) buildQuestionnaire(in *proms.Instrument, canonical string, id fhir.Identifier) (json.RawMessage, error) {
	q := fhir.Questionnaire{
		Meta:        profile("UKCore-Questionnaire"),
		Url:         str(canonical),
		Identifier:  []fhir.Identifier{id},
		Version:     str(in.Version),
		Name:        str(computableName(in.Title)),
		Title:       str(in.Title),
		Status:      fhir.PublicationStatusActive,
		SubjectType: []fhir.ResourceType{fhir.ResourceTypePatient},
		Copyright:   strOrNil(in.Copyright),
	}
	items := make([]questionnaireItem, 0, len(in.Items))
	for _, it := range in.Items {
		qi := questionnaireItem{LinkID: it.Code, Text: it.Text}
		switch it.Type {
		case proms.Choice:
			qi.Type = "choice"
			for _, o := range it.Options {
				c := coding(b.answerSystem(in), o.Code, o.Display)
				n := json.Number(strconv.Itoa(o.Value))
				c.Extension = []fhir.Extension{{Url: extOrdinalValue, ValueDecimal: &n}}
				qi.AnswerOption = append(qi.AnswerOption, answerOption{ValueCoding: c})
			}
		case proms.Integer:
			qi.Type = "integer"
			qi.Extension = []fhir.Extension{
				{Url: extMinValue, ValueInteger: ptr(it.Min)},
				{Url: extMaxValue, ValueInteger: ptr(it.Max)},
			}
		}
		items = append(items, qi)
	}
	return withItems(q, items)
}

// timepoint codes when a response was given (pre-op, post-op-6m, ...):
// a tag on the QuestionnaireResponse and a category of its score
// Observations, so Observation?category=...|pre-op finds them.
func (b *builder) timepoint(tp string) fhir.Coding {
	return coding(b.base+"/CodeSystem/proms-timepoint", tp, timepointText[tp])
}

var timepointText = map[string]string{"pre-op": "Pre-operative", "post-op-6m": "Six months after the operation",
	"post-op-12m": "Twelve months after the operation", "other": "Other"}

// questionnaireItem and answerOption stand in for the samply structs of
// Questionnaire.item: golang-fhir-models v0.3.2 declares answerOption's
// value[x] as plain fields, so it would write every value type at once
// (valueInteger: 0, valueDate: "", ...), which is invalid FHIR.
type questionnaireItem struct {
	Extension    []fhir.Extension `json:"extension,omitempty"`
	LinkID       string           `json:"linkId"`
	Text         string           `json:"text,omitempty"`
	Type         string           `json:"type"`
	AnswerOption []answerOption   `json:"answerOption,omitempty"`
}

type answerOption struct {
	ValueCoding fhir.Coding `json:"valueCoding"`
}

// withItems marshals q with items as its item element, keeping the
// element order of the samply struct (items come last, after copyright and
// the other definitional elements).
func withItems(q fhir.Questionnaire, items []questionnaireItem) (json.RawMessage, error) {
	head, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	tail, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	out := append(head[:len(head)-1:len(head)-1], []byte(`,"item":`)...)
	out = append(out, tail...)
	return append(out, '}'), nil
}

// computableName is a title as a Questionnaire.name (que-0: a capital and
// letters, digits or _): "Post-operative outcome" -> "PostOperativeOutcome".
func computableName(title string) string {
	var b strings.Builder
	upper := true
	for _, r := range title {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			if upper && r >= 'a' && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			upper = false
		default:
			upper = true
		}
	}
	return b.String()
}

// answerSystem is the code system of an instrument's answer codes.
func (b *builder) answerSystem(in *proms.Instrument) string {
	return b.base + "/CodeSystem/" + in.ID + "-answers"
}

// episodeExtensions tie a score to its episode (the R4 workflow extension
// for the EpisodeOfCare) and its joint (the R5 Observation.bodyStructure
// UK Core adopts), where Observation.focus would wrongly say the score is
// about the condition rather than the patient.
func (b *builder) episodeExtensions(ctx *episodeContext) []fhir.Extension {
	return []fhir.Extension{
		{Url: extWorkflowEpisode, ValueReference: ptr(ctx.episode)},
		{Url: extObservationBodyStructure, ValueReference: ptr(ctx.site)},
	}
}

// scored is a score Observation, kept for change scores.
type scored struct {
	ref   fhir.Reference
	score proms.Score
	when  string
}

// responses adds each QuestionnaireResponse (UK Core QuestionnaireResponse)
// and the Observations of its scores (derivedFrom the response), then the
// change scores between the pre-operative and the latest post-operative
// response of each instrument.
func (b *builder) responses(ctx *episodeContext) error {
	ctx.scores = map[string]map[string]scored{}
	for i := range ctx.e.Responses {
		r := &ctx.e.Responses[i]
		in, err := proms.Lookup(r.Instrument, r.Version)
		if err != nil {
			return err
		}
		canonical, err := b.questionnaire(in)
		if err != nil {
			return err
		}
		qid := b.localID("questionnaire-response", r.ID)
		meta := profile("UKCore-QuestionnaireResponse")
		meta.Tag = []fhir.Coding{b.timepoint(r.Timepoint)}
		qr := fhir.QuestionnaireResponse{
			Meta:          meta,
			Extension:     []fhir.Extension{{Url: extWorkflowEpisode, ValueReference: ptr(ctx.episode)}},
			Identifier:    &qid,
			Questionnaire: str(canonical),
			Status:        fhir.QuestionnaireResponseStatusCompleted,
			Subject:       b.patientRef(),
			Authored:      str(r.Completed),
			Author:        b.patientRef(),
			Source:        b.patientRef(),
		}
		var notes []string
		for _, it := range in.Items {
			values := r.Answers[it.Code]
			if len(values) == 0 {
				continue
			}
			item := fhir.QuestionnaireResponseItem{LinkId: it.Code, Text: str(it.Text)}
			switch it.Type {
			case proms.Integer:
				n, _ := strconv.Atoi(values[0]) // mapping.Check proved it a number
				item.Answer = []fhir.QuestionnaireResponseItemAnswer{{ValueInteger: &n}}
			case proms.Choice:
				// A paper form may come back with two boxes ticked. The
				// response carries the answer that is scored (the worst,
				// proms.ScoreOxford; none for an ambiguous EQ-5D
				// dimension) and the score's note says what was ticked.
				o, note := chosen(in, &it, values)
				if note != "" {
					notes = append(notes, note)
				}
				if o == nil {
					continue
				}
				c := coding(b.answerSystem(in), o.Code, o.Display)
				item.Answer = []fhir.QuestionnaireResponseItemAnswer{{ValueCoding: &c}}
			}
			qr.Item = append(qr.Item, item)
		}
		qrRef, err := b.put("QuestionnaireResponse", qid, qr)
		if err != nil {
			return err
		}
		result, err := proms.ScoreResponse(in, r.Answers)
		if err != nil {
			return err
		}
		if err := b.scores(ctx, r, in, qrRef, result, notes); err != nil {
			return err
		}
	}
	return b.changeScores(ctx)
}

// chosen is the option of a choice item that counts, and a note when more
// than one box was ticked.
func chosen(in *proms.Instrument, it *proms.Item, values []string) (*proms.Option, string) {
	if len(values) == 1 {
		return it.Option(values[0]), ""
	}
	distinct := map[string]bool{}
	for _, v := range values {
		distinct[v] = true
	}
	if len(distinct) == 1 {
		return it.Option(values[0]), ""
	}
	ticked := sortedKeys(distinct)
	if strings.HasPrefix(in.ID, "eq5d") {
		return nil, fmt.Sprintf("%s: levels %s ticked; treated as missing (9), as the EQ-5D user guides direct", it.Code, strings.Join(ticked, " and "))
	}
	worst := it.Option(values[0])
	for _, v := range values {
		if o := it.Option(v); o.Value < worst.Value {
			worst = o
		}
	}
	return worst, fmt.Sprintf("item %s: answers %s ticked; the worst (%s) is scored", it.Code, strings.Join(ticked, " and "), worst.Code)
}

// scoreKinds names each score an instrument yields: its key (for change
// scores) and its Observation code.
func (b *builder) scores(ctx *episodeContext, r *mapping.Response, in *proms.Instrument, qr fhir.Reference, res proms.Result, notes []string) error {
	type one struct {
		kind  string
		score proms.Score
		value func(*fhir.Observation)
	}
	var list []one
	switch {
	case res.Oxford != nil:
		s := *res.Oxford
		list = append(list, one{in.ID + "-score", s, func(o *fhir.Observation) { o.ValueInteger = ptr(int(s.Value)) }})
	case res.EQ5D != nil:
		e := res.EQ5D
		list = append(list,
			one{in.ID + "-profile", proms.Score{Valid: true}, func(o *fhir.Observation) { o.ValueString = str(e.Profile) }},
			one{in.ID + "-index", e.Index, func(o *fhir.Observation) { o.ValueQuantity = score(e.Index.Value) }},
			one{"eq-vas", e.VAS, func(o *fhir.Observation) { o.ValueInteger = ptr(int(e.VAS.Value)) }},
		)
		if in.ID == "eq5d-5l" {
			list = append(list, one{"eq5d-5l-mapped-3l-index", e.Mapped3L, func(o *fhir.Observation) { o.ValueQuantity = score(e.Mapped3L.Value) }})
		}
	}
	for _, s := range list {
		oid := b.derivedID("observation", r.ID, s.kind)
		obs := fhir.Observation{
			Meta:              profile("UKCore-Observation"),
			Identifier:        []fhir.Identifier{oid},
			Status:            fhir.ObservationStatusFinal,
			Category:          []fhir.CodeableConcept{*cc(coding(csObservationCategory, "survey", "Survey"))},
			Code:              scoreCode(b.base, s.kind),
			Subject:           b.patientRef(),
			EffectiveDateTime: str(r.Completed),
			DerivedFrom:       []fhir.Reference{qr},
			BodySite:          ptr(jointSite(ctx.e.Joint, ctx.e.Side)),
			Extension:         b.episodeExtensions(ctx),
		}
		obs.Category = append(obs.Category, *cc(b.timepoint(r.Timepoint)))
		if s.score.Valid {
			s.value(&obs)
		} else {
			obs.DataAbsentReason = ccText(s.score.Reason, coding("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown", "Unknown"))
		}
		text := notes
		if s.score.Valid && s.score.Imputed > 0 {
			text = append(append([]string{}, notes...), s.score.Reason)
		}
		for _, n := range text {
			obs.Note = append(obs.Note, fhir.Annotation{Text: n})
		}
		ref, err := b.put("Observation", oid, obs)
		if err != nil {
			return err
		}
		if s.kind == in.ID+"-profile" {
			continue
		}
		if ctx.scores[r.Timepoint] == nil {
			ctx.scores[r.Timepoint] = map[string]scored{}
		}
		if prev, ok := ctx.scores[r.Timepoint][s.kind]; !ok || prev.when < r.Completed {
			ctx.scores[r.Timepoint][s.kind] = scored{ref: ref, score: s.score, when: r.Completed}
		}
	}
	return nil
}

// changeScores adds, per score kind, the change from the pre-operative
// score to the latest post-operative one (post minus pre: positive is
// better for every score here), derivedFrom both.
func (b *builder) changeScores(ctx *episodeContext) error {
	pre := ctx.scores["pre-op"]
	var post map[string]scored
	for _, tp := range []string{"post-op-6m", "post-op-12m"} {
		for kind, s := range ctx.scores[tp] {
			if post == nil {
				post = map[string]scored{}
			}
			if prev, ok := post[kind]; !ok || prev.when < s.when {
				post[kind] = s
			}
		}
	}
	kinds := sortedKeys(pre)
	sort.Strings(kinds)
	for _, kind := range kinds {
		after, ok := post[kind]
		if !ok {
			continue
		}
		before := pre[kind]
		change := proms.Change(before.score, after.score)
		oid := b.derivedID("observation", ctx.e.ID, kind, "change")
		obs := fhir.Observation{
			Meta:            profile("UKCore-Observation"),
			Identifier:      []fhir.Identifier{oid},
			Status:          fhir.ObservationStatusFinal,
			Category:        []fhir.CodeableConcept{*cc(coding(csObservationCategory, "survey", "Survey"))},
			Code:            scoreCode(b.base, kind+"-change"),
			Subject:         b.patientRef(),
			EffectivePeriod: &fhir.Period{Start: str(before.when), End: str(after.when)},
			DerivedFrom:     []fhir.Reference{before.ref, after.ref},
			Focus:           []fhir.Reference{ctx.condition},
			BodySite:        ptr(jointSite(ctx.e.Joint, ctx.e.Side)),
		}
		if change.Valid {
			obs.ValueQuantity = score(change.Value)
		} else {
			obs.DataAbsentReason = ccText(change.Reason, coding("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown", "Unknown"))
		}
		if _, err := b.put("Observation", oid, obs); err != nil {
			return err
		}
	}
	return nil
}

// score is a unitless Quantity (UCUM "1").
func score(v float64) *fhir.Quantity {
	n := json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	return &fhir.Quantity{Value: &n, System: str("http://unitsofmeasure.org"), Code: str("1")}
}

// comorbidities adds a Condition (UK Core ConditionCategory co-morbidity)
// for each condition of the comorbidity list the patient's latest answer in
// any episode says they have: an unconfirmed (patient-reported) condition
// with the response as evidence. A "no" makes no Condition: it says a
// doctor never told the patient, not that the condition was ruled out;
// but a "no" after a "yes" marks the Condition the "yes" made as entered
// in error, so a corrected answer does not leave a false one standing.
func (b *builder) comorbidities() error {
	type answer struct {
		yes  bool
		when string
		qr   string
	}
	latest := map[string]answer{}
	everYes := map[string]bool{}
	for _, e := range b.rec.Episodes {
		for _, r := range e.Responses {
			if r.Instrument != "comorbidities" {
				continue
			}
			qr := b.seen["QuestionnaireResponse|"+b.system("questionnaire-response")+"|"+r.ID]
			for item, values := range r.Answers {
				if len(values) != 1 {
					continue // blank, or both boxes ticked: no answer to record
				}
				everYes[item] = everYes[item] || values[0] == "yes"
				if prev, ok := latest[item]; !ok || prev.when < r.Completed {
					latest[item] = answer{yes: values[0] == "yes", when: r.Completed, qr: qr}
				}
			}
		}
	}
	for _, item := range sortedKeys(latest) {
		a := latest[item]
		if !a.yes && !everYes[item] {
			continue
		}
		ver := coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "unconfirmed", "Unconfirmed")
		if !a.yes {
			// The patient said yes before and no now: the earlier statement
			// was a mistake, and the Condition it made says so (con-5: no
			// clinical status then).
			ver = coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "entered-in-error", "Entered in Error")
		}
		id := b.derivedID("condition", b.rec.Patient.ID, "comorbidity", item)
		c := fhir.Condition{
			Meta:               profile("UKCore-Condition"),
			Identifier:         []fhir.Identifier{id},
			VerificationStatus: cc(ver),
			Category:           []fhir.CodeableConcept{*cc(coding(csConditionCategory, "co-morbidity", "Co-morbidity"))},
			Code:               ccText(comorbidityText(item), comorbiditySCT[item]),
			Subject:            *b.patientRef(),
			RecordedDate:       str(a.when),
			Asserter:           b.patientRef(),
			Evidence:           []fhir.ConditionEvidence{{Detail: []fhir.Reference{{Reference: str(a.qr)}}}},
		}
		if a.yes {
			c.ClinicalStatus = cc(coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"))
		}
		if _, err := b.put("Condition", id, c); err != nil {
			return err
		}
	}
	return nil
}

func comorbidityText(code string) string {
	for _, c := range proms.Comorbidities {
		if c.Code == code {
			return c.Text
		}
	}
	return code
}
