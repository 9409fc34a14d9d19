package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

// An import interrupted part way resumes after its checkpoint: every valid
// record ends up stored once, every invalid one is in the error report
// once, for NDJSON and CSV alike.
func TestImportResumes(t *testing.T) {
	for _, format := range []string{"ndjson", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "export."+format)
			var out bytes.Buffer
			if err := run(context.Background(), []string{"generate", "-patients", "40", "-seed", "9", "-invalid", "0.2", "-format", format, "-out", file}, env(nil), &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			api := newAPI(t, filepath.Join(dir, "gw.db"))
			in := ingest.New(committer(api, discardLog))

			ctx, stop := context.WithCancel(context.Background())
			_, err := in.ImportFiles(ctx, file, func(p ingest.Progress) {
				if p.Done >= 15 && p.Checkpoint > 1 { // some records done, some not
					stop()
				}
			})
			if err == nil {
				t.Fatal("the interrupted import reported success")
			}
			cpRaw, _ := os.ReadFile(file + ".checkpoint")
			t.Logf("checkpoint after the interruption: %s (%v)", cpRaw, err)
			var last ingest.Progress
			counts, err := in.ImportFiles(context.Background(), file, func(p ingest.Progress) { last = p })
			if err != nil {
				t.Fatal(err)
			}
			if last.Skipped == 0 || !last.Finished || last.Skipped+last.Total != 40 {
				t.Errorf("resume: %+v", last)
			}
			valid := counts[ingest.Created] + counts[ingest.Unchanged] + counts[ingest.Updated]
			if valid+counts[ingest.Rejected] != 40 || counts[ingest.Rejected] == 0 {
				t.Errorf("counts %v", counts)
			}
			patients := total(t, startAPI(t, api), "Patient?_count=0")
			if int(patients) != valid {
				t.Errorf("%v patients stored for %d valid records", patients, valid)
			}
			report, err := os.ReadFile(file + ".errors.csv")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(bytes.NewReader(report)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, r := range rows[1:] {
				lines[r[0]] = true
			}
			if rows[0][0] != "line" || len(lines) != counts[ingest.Rejected] {
				t.Errorf("error report has %d records, %d rejected:\n%s", len(lines), counts[ingest.Rejected], report)
			}
			if !strings.Contains(string(report), "patient.nhsNumber") {
				t.Errorf("the report does not name the bad NHS number's field:\n%s", report)
			}
		})
	}
}

// newAPI is the FHIR API over a real store at dsn with a development
// keystore and encryption at rest, without HTTP, as gateway import uses it.
func newAPI(t testing.TB, dsn string) *rest.Server {
	t.Helper()
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "keys.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), dsn, vault.NewEnvelope(ks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return rest.NewServer(rest.DefaultConfig(), st, ks, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// startAPI serves api over HTTP on loopback for the test and returns its
// base URL (without /fhir).
func startAPI(t *testing.T, api *rest.Server) string {
	t.Helper()
	srv := httptest.NewServer(api.Handler(nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Records that share organisations, stored many at a time, neither
// deadlock nor duplicate what they share (PostgreSQL, where transactions
// run in parallel). Half the records name practice X and hospital Y, half
// the reverse, so their transactions meet the shared rows in opposite
// orders.
func TestIngestConcurrentSharedData(t *testing.T) {
	api := newAPI(t, storetest.PostgresDSN(t))
	in := ingest.New(committer(api, discardLog))
	in.Workers = 8
	var records []json.RawMessage
	for i := 0; i < 80; i++ {
		r := testRecord(t, "hip")
		x, y := "AAA01", "BBB02"
		if i%2 == 1 {
			x, y = y, x
		}
		r["source"].(map[string]any)["record"] = fmt.Sprintf("rec-%d", i)
		p := r["patient"].(map[string]any)
		p["id"] = fmt.Sprintf("p-%d", i)
		delete(p, "nhsNumber")
		delete(p, "nhsNumberStatus")
		r["care"].(map[string]any)["gpPractice"] = map[string]any{"ods": x}
		ep := r["episodes"].([]any)[0].(map[string]any)
		ep["id"] = fmt.Sprintf("e-%d", i)
		ep["hospital"] = map[string]any{"ods": y}
		for _, list := range []string{"procedures", "appointments", "referrals", "services", "responses", "aspirations"} {
			for j, item := range ep[list].([]any) {
				item.(map[string]any)["id"] = fmt.Sprintf("%s-%d-%d", list, i, j)
			}
		}
		raw, _ := json.Marshal(r)
		records = append(records, raw)
	}
	start := time.Now()
	for _, o := range in.Batch(context.Background(), records) {
		if o.Status != ingest.Created {
			t.Fatalf("record %s: %s %v %s", o.Record, o.Status, o.Problems, o.Error)
		}
	}
	t.Logf("80 records in %v", time.Since(start))
	gw := startAPI(t, api)
	for _, ods := range []string{"AAA01", "BBB02", "RR8"} {
		if n := total(t, gw, "Organization?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/ods-organization-code|"+ods)); n != 1 {
			t.Errorf("%v Organizations with ODS code %s", n, ods)
		}
	}
}

var discardLog = slog.New(slog.DiscardHandler)

// The search index an import writes is the one `gateway reindex` computes
// again from the stored bodies: the rows a transaction indexes before it
// knows its ids (placeholders, then the real ids) are the rows of what it
// stores.
func TestImportIndexEqualsReindex(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	vars := env(map[string]string{"GATEWAY_DB": filepath.Join(dir, "gw.db"), "GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json")})
	file := filepath.Join(dir, "export.ndjson")
	if err := run(ctx, []string{"generate", "-patients", "30", "-seed", "5", "-out", file}, vars, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"import", file}, vars, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	dump := func() []string {
		db, err := sql.Open("sqlite", filepath.Join(dir, "gw.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT res_type, res_id, param, sys, val, raw, COALESCE(dlow, 0), COALESCE(dhigh, 0), COALESCE(nlow, 0), COALESCE(nhigh, 0)
			FROM search_index ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var typ, id, param, sys, val, raw string
			var dlow, dhigh int64
			var nlow, nhigh float64
			if err := rows.Scan(&typ, &id, &param, &sys, &val, &raw, &dlow, &dhigh, &nlow, &nhigh); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(typ, id, param, sys, val, raw, dlow, dhigh, nlow, nhigh))
		}
		return out
	}
	imported := dump()
	if len(imported) < 1000 {
		t.Fatalf("only %d index rows after importing 30 patients", len(imported))
	}
	if err := run(ctx, []string{"reindex"}, vars, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	reindexed := dump()
	if len(imported) != len(reindexed) {
		t.Fatalf("%d index rows after the import, %d after reindex", len(imported), len(reindexed))
	}
	for i := range imported {
		if imported[i] != reindexed[i] {
			t.Fatalf("index row %d differs:\nimport  %s\nreindex %s", i, imported[i], reindexed[i])
		}
	}
}
