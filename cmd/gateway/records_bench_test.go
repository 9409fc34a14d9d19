package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/mapping/synthetic"
)

// BenchmarkIngest measures map + validate + store of synthetic records
// (mapping/synthetic, about 45 resources each) through the records
// pipeline on both databases, with encryption at rest: records/s and FHIR
// resources/s written (a shared Organization or Practitioner an earlier
// record already stored is not counted).
func BenchmarkIngest(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "gw.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(b)
			}
			api := newAPI(b, dsn)
			in := ingest.New(committer(api))
			if w, err := strconv.Atoi(os.Getenv("BENCH_WORKERS")); err == nil {
				in.Workers = w
			}
			g := synthetic.New(synthetic.Options{Seed: 42, Now: time.Now().UTC()})
			const batch = 50
			records, resources := 0, 0
			for b.Loop() {
				raws := make([]json.RawMessage, batch)
				for i := range raws {
					raws[i], _ = json.Marshal(g.Next())
				}
				for _, o := range in.Batch(context.Background(), raws) {
					if o.Status != ingest.Created {
						b.Fatalf("record %s: %s %v %s", o.Record, o.Status, o.Problems, o.Error)
					}
					records++
					for _, r := range o.Resources {
						if r.Status != ingest.Unchanged { // shared ones already stored do not count
							resources++
						}
					}
				}
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}
