package ingest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/ukcore"
)

// Whatever the platform sends, decoding, checking and mapping a record
// never panic: a record either maps or is refused with problems. (The
// records API answers every record with an outcome; a panic here would be
// a 500.)
func FuzzRecord(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "ukcore", "testdata", "*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"source":{},"patient":{},"episodes":[{}],"consents":[{}],"studies":[{}],"children":[{}]}`))
	f.Add([]byte(`{"episodes":[{"procedures":[{"implants":[{}]}],"responses":[{"answers":{"1":[]}}]}]}`))
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Decode(raw)
		if err != nil {
			if _, ok := err.(mapping.Problems); !ok {
				t.Fatalf("Decode error is not Problems: %T %v", err, err)
			}
			return
		}
		if err := mapping.Check(r, now); err != nil {
			return
		}
		if _, err := ukcore.Map(r); err != nil {
			t.Fatalf("a record that passed Check does not map: %v", err)
		}
	})
}

// FuzzRecordFields varies the fields the mapping branches on, inside an
// otherwise valid record, so the fuzzer reaches the mapping rather than
// the JSON decoder.
func FuzzRecordFields(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("..", "ukcore", "testdata", "hip.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("hip", "left", "left", "oxford-hip", "1", "2", 2, "2026-01-14", "njr", "permit", "inpatient", "booked", 20)
	f.Add("shoulder", "bilateral", "right", "eq5d-3l", "1", "3", 6, "2025-02-28", "communications", "deny", "virtual", "cancelled", 0)
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, joint, side, procSide, instrument, version, answer string, asa int, date, consent, decision, setting, apptStatus string, minutes int) {
		r, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		e := &r.Episodes[0]
		e.Joint, e.Side = joint, side
		e.Procedures[0].Side, e.Procedures[0].ASA, e.Procedures[0].Date = procSide, asa, date
		e.Responses[0].Instrument, e.Responses[0].Version = instrument, version
		e.Responses[0].Answers = map[string][]string{"1": {answer}, "mobility": {answer, answer}, "vas": {answer}}
		e.Services[0].Setting = setting
		e.Appointments[0].Status, e.Appointments[0].Minutes = apptStatus, minutes
		r.Consents[0].Kind, r.Consents[0].Decision, r.Consents[0].Date = consent, decision, date
		if err := mapping.Check(r, now); err != nil {
			return
		}
		if _, err := ukcore.Map(r); err != nil {
			t.Fatalf("a record that passed Check does not map: %v", err)
		}
	})
}
