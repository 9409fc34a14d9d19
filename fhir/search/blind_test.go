package search

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/url"
	"strings"
	"testing"
)

type testHasher struct{ calls int }

func (h *testHasher) HMAC(_ context.Context, inputs [][]byte) ([][]byte, error) {
	h.calls++
	out := make([][]byte, len(inputs))
	for i, in := range inputs {
		m := hmac.New(sha256.New, []byte("test key"))
		m.Write(in)
		out[i] = m.Sum(nil)
	}
	return out, nil
}

const blindPatient = `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919","type":{"text":"NHS Number","coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"NH"}]}}],
"name":[{"family":"Featherstonehaugh","given":["Ada","Ada"]}],"telecom":[{"system":"phone","value":"07700 900123"},{"system":"email","value":"ada@example.org"}],
"gender":"female","birthDate":"1961-04-07","address":[{"line":["1 Acacia Avenue"],"city":"Leeds","postalCode":"LS1 4AP","country":"UK"}],
"generalPractitioner":[{"reference":"Organization/gp1"}]}`

// No identifying value survives in any index row of a protected type, and
// the parameters that identify nobody keep their readable values.
func TestBlindRowsHideIdentifyingValues(t *testing.T) {
	rows, errs := R4().Extract("Patient", []byte(blindPatient))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	h := &testHasher{}
	blind, err := BlindRows(context.Background(), h, "Patient", rows)
	if err != nil {
		t.Fatal(err)
	}
	if h.calls != 1 {
		t.Errorf("%d calls to the key holder; want one batch", h.calls)
	}
	secrets := []string{"9434765919", "featherstone", "ada", "07700", "example.org", "1961", "acacia", "leeds", "ls1"}
	readable := map[string]bool{}
	for _, r := range blind {
		for _, field := range []string{r.Sys, r.Val, r.Raw} {
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(field), s) {
					t.Errorf("row %+v holds %q", r, s)
				}
			}
		}
		if r.HasDate && r.Param == "birthdate" {
			t.Errorf("birthdate kept its date range: %+v", r)
		}
		readable[r.Param+"="+r.Val] = true
	}
	for _, want := range []string{"gender=female", "general-practitioner=gp1"} {
		if !readable[want] {
			t.Errorf("%s lost its readable index row", want)
		}
	}
}

// Equal values of different parameters, or of one parameter on different
// types, do not share a digest.
func TestBlindDomainsAreSeparate(t *testing.T) {
	h := &testHasher{}
	digest := func(typ, param, value string) string {
		rows, err := BlindRows(context.Background(), h, typ, []Row{{Param: param, Val: value, Raw: value}})
		if err != nil || len(rows) == 0 {
			t.Fatalf("%s.%s: %v", typ, param, err)
		}
		return rows[len(rows)-1].Val // the prefix row of the whole value
	}
	a, b, c := digest("Patient", "family", "ada"), digest("Patient", "given", "ada"), digest("RelatedPerson", "name", "ada")
	if a == b || a == c || digest("Patient", "family", "ada") != a {
		t.Errorf("digests family=%s given=%s related=%s", a, b, c)
	}
}

func TestBlindQueries(t *testing.T) {
	rows, _ := R4().Extract("Patient", []byte(blindPatient))
	h := &testHasher{}
	stored, err := BlindRows(context.Background(), h, "Patient", rows)
	if err != nil {
		t.Fatal(err)
	}
	has := func(param, field, v string) bool {
		for _, r := range stored {
			if r.Param == param && (field == "val" && r.Val == v || field == "raw" && r.Raw == v) {
				return true
			}
		}
		return false
	}
	tests := []struct {
		query string
		match bool
	}{
		{"family=feath", true},
		{"family=FEATHERSTONEHAUGH", true},   // 17 characters: the whole value
		{"family=featherstonehaug", true},    // 16 characters: a prefix
		{"family=featherstonehaughs", false}, // longer than 16 and not the whole value
		{"family:exact=Featherstonehaugh", true},
		{"family:exact=featherstonehaugh", false},
		{"given=ad", true},
		{"address-city=leeds", true},
		{"address-city=lee", false}, // address parts match whole values only
		{"address-postalcode=ls1 4ap", true},
		{"birthdate=1961", true},
		{"birthdate=1961-04", true},
		{"birthdate=1961-04-07", true},
		{"birthdate=1961-04-08", false},
		{"identifier=9434765919", true},
		{"identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", true},
		{"phone=07700 900123", true},
		{"email=ada@example.org", true},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			params, _ := url.ParseQuery(tc.query)
			q, err := R4().Parse("Patient", params, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Unblinded(); err == nil {
				t.Fatal("Unblinded = nil before Blind")
			}
			if err := q.Blind(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if err := q.Unblinded(); err != nil {
				t.Fatal(err)
			}
			c := q.Where[0]
			v := c.Values[0]
			var got bool
			switch {
			case c.Type == "token":
				got = has(c.Code, "val", v.Code)
			case c.Modifier == "exact":
				got = has(c.Code, "raw", v.Text)
			default:
				got = has(c.Code, "val", v.Text)
			}
			if got != tc.match {
				t.Errorf("match = %v; want %v", got, tc.match)
			}
		})
	}
}

type failingHasher struct{}

var errKeysDown = errors.New("key holder down")

func (failingHasher) HMAC(context.Context, [][]byte) ([][]byte, error) { return nil, errKeysDown }

// Without the key holder nothing is indexed in plaintext: the write fails.
func TestBlindFailsClosed(t *testing.T) {
	rows, _ := R4().Extract("Patient", []byte(blindPatient))
	if _, err := BlindRows(context.Background(), failingHasher{}, "Patient", rows); !errors.Is(err, errKeysDown) {
		t.Errorf("err = %v; want the key holder's error", err)
	}
	obs, _ := R4().Extract("Observation", []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`))
	if _, err := BlindRows(context.Background(), failingHasher{}, "Observation", obs); err != nil {
		t.Errorf("a type with nothing to protect needs no key holder: %v", err)
	}
}

// The CapabilityStatement's documentation of a protected parameter offers
// only what blind indexes answer.
func TestParamDocumentation(t *testing.T) {
	tests := []struct {
		typ, code, ptype string
		has, lacks       string
	}{
		{"Patient", "family", "string", "exact", "contains"},
		{"Patient", "birthdate", "date", "year, month or day", "prefixes"},
		{"Patient", "identifier", "token", "of-type", "not-in"},
		{"Practitioner", "family", "string", "contains", "blind"},
		{"Observation", "date", "date", "prefixes", "blind"},
	}
	for _, tc := range tests {
		doc := ParamDocumentation(tc.typ, tc.code, tc.ptype)
		if !strings.Contains(doc, tc.has) || strings.Contains(doc, tc.lacks) {
			t.Errorf("%s.%s: %q", tc.typ, tc.code, doc)
		}
	}
}

// Patient's name rows hold only the parts that family and given do not:
// the rule behind nameParts must follow the definitions' expressions.
func TestNamePartsFollowDefinitions(t *testing.T) {
	branch := func(typ, code string) string {
		p, ok := R4().Lookup(typ, code)
		if !ok {
			t.Fatalf("%s has no parameter %s", typ, code)
		}
		for _, b := range strings.Split(p.Expression, "|") {
			if b = strings.TrimSpace(b); strings.HasPrefix(b, typ+".") {
				return b
			}
		}
		return ""
	}
	for typ, parts := range nameParts {
		if got := branch(typ, "name"); got != typ+".name" {
			t.Errorf("%s.name is %q; nameParts assumes %s.name", typ, got, typ)
		}
		for _, part := range parts {
			if got, want := branch(typ, part), typ+".name."+part; got != want {
				t.Errorf("%s.%s is %q; nameParts assumes %s", typ, part, got, want)
			}
		}
	}
}

func TestNameRowsLeaveOutFamilyAndGiven(t *testing.T) {
	tests := []struct {
		typ, body string
		nameRows  int
	}{
		{"Patient", `{"resourceType":"Patient","name":[{"family":"Smith","given":["Jane","Mary"]}]}`, 0},
		{"Patient", `{"resourceType":"Patient","name":[{"family":"Smith","given":["Jane"],"prefix":["Dr"]}]}`, 2},
		{"Patient", `{"resourceType":"Patient","name":[{"text":"Jane Smith","family":"Smith"}]}`, 10},
		// Person and RelatedPerson have no family or given parameters.
		{"RelatedPerson", `{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p"},"name":[{"family":"Smith","given":["Jane"]}]}`, 9},
	}
	for _, tc := range tests {
		rows, errs := R4().Extract(tc.typ, []byte(tc.body))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		blind, err := BlindRows(context.Background(), &testHasher{}, tc.typ, rows)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range blind {
			if r.Param == "name" {
				n++
			}
		}
		if n != tc.nameRows {
			t.Errorf("%s: %d name rows; want %d", tc.body, n, tc.nameRows)
		}
	}
}
