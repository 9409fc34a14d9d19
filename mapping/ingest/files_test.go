package ingest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/mapping"
)

func testRecords(t *testing.T) []*mapping.Record {
	t.Helper()
	files, _ := filepath.Glob("../ukcore/testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no test records")
	}
	var out []*mapping.Record
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, r)
	}
	return out
}

// dropBlank removes empty answer lists, which CSV cannot tell from absent.
func dropBlank(r *mapping.Record) {
	for i := range r.Episodes {
		for j := range r.Episodes[i].Responses {
			for k, v := range r.Episodes[i].Responses[j].Answers {
				if len(v) == 0 {
					delete(r.Episodes[i].Responses[j].Answers, k)
				}
			}
		}
	}
	if len(r.Children) == 0 {
		r.Children = nil
	}
}

// Records written as CSV read back as the same records.
func TestCSVRoundTrip(t *testing.T) {
	records := testRecords(t)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, records); err != nil {
		t.Fatal(err)
	}
	var got []Line
	if err := ReadCSV(&buf, func(l Line) error { got = append(got, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(records) {
		t.Fatalf("%d rows for %d records", len(got), len(records))
	}
	for i, l := range got {
		if l.Problems != nil || l.Number != i+2 {
			t.Fatalf("row %d: line %d %v", i, l.Number, l.Problems)
		}
		back, err := Decode(l.Record)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		want := records[i]
		dropBlank(want)
		dropBlank(back)
		if !reflect.DeepEqual(back, want) {
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(back)
			t.Errorf("row %d differs:\nwant %s\ngot  %s", i, a, b)
		}
	}
}

// Cells that do not fit the model are problems naming the column and line.
func TestCSVProblems(t *testing.T) {
	in := "patient.id,patient.family,measurements[0].value,episodes[0].condition.previousSurgery,patient.shoeSize\n" +
		"p1,Jones,tall,perhaps,9\n" +
		"p2,Smith\n"
	var got []Line
	if err := ReadCSV(strings.NewReader(in), func(l Line) error { got = append(got, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d lines", len(got))
	}
	fields := map[string]bool{}
	for _, p := range got[0].Problems {
		fields[p.Field] = true
	}
	for _, f := range []string{"measurements[0].value", "episodes[0].condition.previousSurgery", "patient.shoeSize"} {
		if !fields[f] {
			t.Errorf("no problem for %s: %v", f, got[0].Problems)
		}
	}
	if got[1].Number != 3 || len(got[1].Problems) != 1 || !strings.Contains(got[1].Problems[0].Reason, "cells") {
		t.Errorf("short row: %+v", got[1])
	}
	if err := ReadCSV(strings.NewReader("patient..id\n"), func(Line) error { return nil }); err == nil {
		t.Error("a bad header was accepted")
	}
}

func TestNDJSON(t *testing.T) {
	in := "{\"a\":1}\n\n  {\"b\":2}\n"
	var got []Line
	if err := ReadNDJSON(strings.NewReader(in), func(l Line) error { got = append(got, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Number != 1 || got[1].Number != 3 || string(got[1].Record) != `{"b":2}` {
		t.Errorf("%+v", got)
	}
}

// A record's line is where it starts, after cells that span lines; an
// unclosed quote stops the file with an error; a column given twice is
// refused.
func TestCSVLinesAndErrors(t *testing.T) {
	in := "patient.id,patient.family\np1,\"Jones\nof Leeds\"\np2,Smith\n"
	var lines []int
	if err := ReadCSV(strings.NewReader(in), func(l Line) error { lines = append(lines, l.Number); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0] != 2 || lines[1] != 4 {
		t.Errorf("lines %v; want [2 4]", lines)
	}
	if err := ReadCSV(strings.NewReader("patient.id\np1\n\"p2\np3\n"), func(Line) error { return nil }); err == nil {
		t.Error("an unclosed quote was read to the end without an error")
	}
	if err := ReadCSV(strings.NewReader("patient.id,patient.id\np1,p2\n"), func(Line) error { return nil }); err == nil {
		t.Error("a column given twice was accepted")
	}
}
