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
			var b struct {
				Entry []struct {
					Resource json.RawMessage      `json:"resource"`
					Request  struct{ URL string } `json:"request"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(m.Bundle, &b); err != nil {
				t.Fatal(err)
			}
			if len(b.Entry) != len(m.Entries) {
				t.Fatalf("%d entries, %d described", len(b.Entry), len(m.Entries))
			}
			for i, e := range b.Entry {
				if err := strict.Check(e.Resource); err != nil {
					t.Errorf("entry %d (%s): %v", i, e.Request.URL, err)
				}
			}
			again, err := Map(load(t, f))
			if err != nil || !bytes.Equal(again.Bundle, m.Bundle) {
				t.Error("mapping the same record twice gave different Bundles")
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, m.Bundle, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s differs from the mapping; run go test -update and review the diff", golden)
			}
		})
	}
}
