package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

// valid is a small record that passes Check; each bad-input case breaks
// one thing in a copy of it.
func valid() *Record {
	return &Record{
		Source:  Source{System: "https://proms.example.org", Record: "rec-1", Updated: "2026-06-01T10:00:00Z"},
		Patient: Patient{ID: "p-1", NHSNumber: "9434765919", Family: "Jones", BirthDate: "1950-02-03", Gender: "female"},
		Episodes: []Episode{{
			ID: "e-1", Joint: "hip", Side: "left", Start: "2025-10-01",
			Condition:  Condition{Type: "osteoarthritis"},
			Procedures: []Procedure{{ID: "op-1", Kind: "primary", Type: "total", Side: "left", Date: "2026-01-10"}},
			Responses: []Response{{ID: "r-1", Instrument: "oxford-hip", Version: "1", Timepoint: "pre-op", Completed: "2025-12-01",
				Answers: map[string][]string{"1": {"2"}}}},
		}},
	}
}

func TestCheck(t *testing.T) {
	if err := Check(valid(), now); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	cases := []struct {
		name  string
		spoil func(r *Record)
		field string
		says  string
	}{
		{"NHS number check digit", func(r *Record) { r.Patient.NHSNumber = "9434765918" }, "patient.nhsNumber", "Modulus 11"},
		{"NHS number without check digit", func(r *Record) { r.Patient.NHSNumber = "1000000010" }, "patient.nhsNumber", "no check digit"},
		{"NHS number too short", func(r *Record) { r.Patient.NHSNumber = "943476591" }, "patient.nhsNumber", "10 digits"},
		{"impossible date", func(r *Record) { r.Patient.BirthDate = "1950-02-30" }, "patient.birthDate", "not a real date"},
		{"birth date with a time", func(r *Record) { r.Patient.BirthDate = "1950-02-03T00:00:00Z" }, "patient.birthDate", "not a date"},
		{"future date", func(r *Record) { r.Episodes[0].Procedures[0].Date = "2027-01-01" }, "episodes[0].procedures[0].date", "future"},
		{"procedure before birth", func(r *Record) { r.Patient.BirthDate = "2026-02-01" }, "episodes[0].procedures[0].date", "before the patient's birth"},
		{"unknown answer code", func(r *Record) { r.Episodes[0].Responses[0].Answers["1"] = []string{"5"} }, "episodes[0].responses[0].answers", `"5" is not one of its answers`},
		{"unknown item", func(r *Record) { r.Episodes[0].Responses[0].Answers["13"] = []string{"1"} }, "episodes[0].responses[0].answers", `no item "13"`},
		{"unknown questionnaire version", func(r *Record) { r.Episodes[0].Responses[0].Version = "2" }, "episodes[0].responses[0].instrument", `no version "2"`},
		{"unknown questionnaire", func(r *Record) { r.Episodes[0].Responses[0].Instrument = "womac" }, "episodes[0].responses[0].instrument", "unknown questionnaire"},
		{"knee score for a hip", func(r *Record) { r.Episodes[0].Responses[0].Instrument = "oxford-knee" }, "episodes[0].responses[0].instrument", "knee questionnaire"},
		{"procedure on the other side", func(r *Record) { r.Episodes[0].Procedures[0].Side = "right" }, "episodes[0].procedures[0].side", "on the left side"},
		{"reverse replacement of a hip", func(r *Record) { r.Episodes[0].Procedures[0].Type = "reverse" }, "episodes[0].procedures[0].type", "not one of"},
		{"unknown gender", func(r *Record) { r.Patient.Gender = "f" }, "patient.gender", "not one of"},
		{"relative source", func(r *Record) { r.Source.System = "proms" }, "source.system", "absolute URI"},
		{"duplicate ids", func(r *Record) { r.Episodes = append(r.Episodes, r.Episodes[0]) }, "episodes[1].id", "used twice"},
		{"consent for an unknown study", func(r *Record) {
			r.Consents = []Consent{{Kind: "study", Decision: "permit", Date: "2025-01-01", Study: "S1"}}
		}, "consents[0].study", "not among the record's studies"},
		{"bad GMC number", func(r *Record) {
			r.Care.Providers = []Professional{{Role: "consultant", Register: "gmc", Number: "12"}}
		}, "care.providers[0].number", "7 digits"},
		{"booked appointment without a length", func(r *Record) {
			r.Episodes[0].Appointments = []Appointment{{ID: "a1", Service: "follow-up", Start: "2026-05-01T10:00:00Z", Status: "booked"}}
		}, "episodes[0].appointments[0].minutes", "is required for a booked"},
		{"bad postcode", func(r *Record) { r.Patient.Address = &Address{Postcode: "12345"} }, "patient.address.postcode", "UK postcode"},
		{"EQ-VAS out of range", func(r *Record) {
			r.Episodes[0].Responses[0].Instrument, r.Episodes[0].Responses[0].Answers = "eq5d-5l", map[string][]string{"vas": {"101"}}
		}, "episodes[0].responses[0].answers", "whole number 0–100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.spoil(r)
			err := Check(r, now)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Check = %v, want Problems", err)
			}
			for _, p := range ps {
				if p.Field == c.field && strings.Contains(p.Reason, c.says) {
					return
				}
			}
			t.Errorf("no problem at %s saying %q; got %v", c.field, c.says, ps)
		})
	}
}

func TestCheckNHSNumber(t *testing.T) {
	for _, n := range []string{"9434765919", "9000000009", "943 476 5870", "4010232137"} {
		if err := CheckNHSNumber(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, n := range []string{"1234567890", "9434765910", "94347659a9", ""} {
		if err := CheckNHSNumber(n); err == nil {
			t.Errorf("%s accepted", n)
		}
	}
}
