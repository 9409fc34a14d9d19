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
