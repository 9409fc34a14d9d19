package ukcore

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/conformance/strict"
	"github.com/promsgateway/gateway/mapping"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// now is the present the test records are checked against.
var now = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

func load(t *testing.T, path string) *mapping.Record {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r mapping.Record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// Each test record maps to the golden Bundle, every entry of which is a
// valid R4 resource.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no test records")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := load(t, f)
			if err := mapping.Check(r, now); err != nil {
				t.Fatalf("check: %v", err)
			}
			m, err := Map(r)
			if err != nil {
				t.Fatal(err)
			}
			if n := checkEntries(t, m.Bundle); n == 0 {
				t.Fatal("the Bundle has no entries")
			}
			if m.Definitions == nil {
				t.Fatal("no questionnaire definitions")
			}
			checkEntries(t, m.Definitions)
			again, err := Map(load(t, f))
			if err != nil || !bytes.Equal(again.Bundle, m.Bundle) || !bytes.Equal(again.Definitions, m.Definitions) {
				t.Error("mapping the same record twice gave different Bundles")
			}
			stem := strings.TrimSuffix(f, ".json")
			golden(t, stem+".golden", m.Bundle)
			golden(t, stem+".definitions.golden", m.Definitions)
		})
	}
}

// checkEntries checks every entry of a Bundle strictly and counts them.
func checkEntries(t *testing.T, bundle []byte) int {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource json.RawMessage      `json:"resource"`
			Request  struct{ URL string } `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	for i, e := range b.Entry {
		if err := strict.Check(e.Resource); err != nil {
			t.Errorf("entry %d (%s): %v", i, e.Request.URL, err)
		}
	}
	return len(b.Entry)
}

// golden compares got, indented, with the file, or rewrites it under
// -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs from the mapping; run go test -update and review the diff", path)
	}
}

// A comorbidity answered "yes" and later "no" leaves no active Condition:
// the Condition the "yes" made is marked entered in error.
func TestComorbidityCorrected(t *testing.T) {
	r := load(t, "testdata/hip.json")
	e := &r.Episodes[0]
	e.Responses = append(e.Responses, mappingResponse("r-9", "2026-06-29", map[string][]string{"high-blood-pressure": {"no"}}))
	m, err := Map(r)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(m.Bundle, &b); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range b.Entry {
		res := e.Resource
		code, _ := res["code"].(map[string]any)
		if res["resourceType"] != "Condition" || code["text"] != "High blood pressure" {
			continue
		}
		found = true
		ver := res["verificationStatus"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"]
		if _, active := res["clinicalStatus"]; ver != "entered-in-error" || active {
			t.Errorf("corrected comorbidity: %v", res)
		}
	}
	if !found {
		t.Error("no Condition for the corrected comorbidity")
	}
}

func mappingResponse(id, completed string, answers map[string][]string) mapping.Response {
	return mapping.Response{ID: id, Instrument: "comorbidities", Version: "1", Timepoint: "post-op-6m", Completed: completed, Answers: answers}
}
