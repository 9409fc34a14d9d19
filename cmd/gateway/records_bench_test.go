package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/mapping/synthetic"
)

// BenchmarkIngest measures map + validate + store of synthetic records
// (mapping/synthetic, about 45 resources each) through the records
// pipeline, 4 records at a time, on both databases, with encryption at rest: records/s and FHIR
// resources/s written (a shared Organization or Practitioner an earlier
// record already stored is not counted), with the gateway's GC setting.
func BenchmarkIngest(b *testing.B) {
	// As the gateway runs (main sets it when GOGC is not set).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "gw.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(b)
			}
			api := newAPI(b, dsn)
			in := ingest.New(committer(api, discardLog))
			if w, err := strconv.Atoi(os.Getenv("BENCH_WORKERS")); err == nil {
				in.Workers = w
			}
			g := synthetic.New(synthetic.Options{Seed: 42, Now: time.Now().UTC()})
			// An iteration is 200 records (several seconds), so one is a
			// fair sample; a first batch, untimed, stores the questionnaire
			// definitions and warms the connections.
			const batch = 50
			for _, o := range in.Batch(context.Background(), synthRecords(g, 20)) {
				if o.Status != ingest.Created {
					b.Fatalf("warm-up record %s: %s %v %s", o.Record, o.Status, o.Problems, o.Error)
				}
			}
			records, resources := 0, 0
			for b.Loop() {
				for _, o := range in.Batch(context.Background(), synthRecords(g, batch)) {
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

// synthRecords makes n synthetic records as JSON.
func synthRecords(g *synthetic.Generator, n int) []json.RawMessage {
	raws := make([]json.RawMessage, n)
	for i := range raws {
		raws[i], _ = json.Marshal(g.Next())
	}
	return raws
}
