package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
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
			in := ingest.New(committer(api))

			ctx, stop := context.WithCancel(context.Background())
			_, err := in.ImportFiles(ctx, file, func(p ingest.Progress) {
				if p.Done >= 15 {
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
