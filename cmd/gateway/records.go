package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/mapping/ukcore"
)

// maxRecords bounds one POST /internal/v1/records.
const maxRecords = 1000

// committer stores mapped records through the FHIR API's transaction. A
// 4xx is the record's fault (a rejection the client can act on); anything
// else is the gateway's, and the client sees only what the FHIR API would
// show (the cause goes to the log).
func committer(api *rest.Server, log *slog.Logger) ingest.Committer {
	return func(ctx context.Context, bundle []byte) ([]ingest.Stored, error) {
		// A record replaces what its earlier versions made: resources
		// those made and this one does not are marked entered-in-error, or
		// deleted where their type cannot say so (shared reference data
		// excepted).
		done, err := api.Commit(ctx, bundle, rest.CommitOptions{Supersede: true, Keep: ukcore.Shared, Retract: ukcore.Retract})
		if err != nil {
			oe := outcome.As(err)
			if s := outcome.Status(oe); s >= 400 && s < 500 {
				var ps mapping.Problems
				for _, is := range oe.Issues {
					ps = append(ps, mapping.Problem{Field: strings.Join(is.Expression, ", "), Reason: is.Diagnostics})
				}
				return nil, &ingest.Rejection{Problems: ps}
			}
			log.ErrorContext(ctx, "storing a record failed", "error", err)
			var msgs []string
			for _, is := range oe.Issues {
				msgs = append(msgs, is.Diagnostics)
			}
			return nil, errors.New(strings.Join(msgs, "; "))
		}
		out := make([]ingest.Stored, len(done))
		for i, c := range done {
			status := ingest.Updated
			switch {
			case c.Deleted:
				status = ingest.Deleted
			case c.Retracted:
				status = ingest.Retracted
			case c.Unchanged:
				status = ingest.Unchanged
			case c.Status == http.StatusCreated:
				status = ingest.Created
			}
			out[i] = ingest.Stored{Type: c.Type, ID: c.ID, Version: c.Version, Status: status}
		}
		return out, nil
	}
}

// recordsRequest is the body of POST /internal/v1/records.
type recordsRequest struct {
	Records []json.RawMessage `json:"records"`
}

// recordsResponse lists each record's outcome, in the request's order.
type recordsResponse struct {
	Summary  map[string]int   `json:"summary"`
	Outcomes []ingest.Outcome `json:"outcomes"`
}

// recordsHandler serves POST /internal/v1/records: a batch of the
// platform's records, each mapped and stored in its own transaction
// (docs/internal-model.md). The answer is 200 with one outcome per record
// whenever the batch could be read, whatever became of each record; a
// batch that cannot be read is an OperationOutcome (400, 413, 415).
func recordsHandler(in *ingest.Ingester, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(err *outcome.Error) {
			w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
			w.WriteHeader(outcome.Status(err))
			w.Write(outcome.Resource(err))
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/json" {
			fail(outcome.New(outcome.UnsupportedMedia, "send the records as application/json, not %q", mt))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(outcome.New(outcome.TooLarge, "the batch exceeds %d bytes; send fewer records at a time", maxBody))
				return
			}
			fail(outcome.Wrap(outcome.Invalid, err, "could not read the request body"))
			return
		}
		var req recordsRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(outcome.New(outcome.Invalid, `the body must be {"records": [record, ...]}: %v`, err))
			return
		}
		if len(req.Records) == 0 {
			fail(outcome.At(outcome.Invalid, "required", "records", "the batch has no records"))
			return
		}
		if len(req.Records) > maxRecords {
			fail(outcome.New(outcome.TooLarge, "the batch has %d records; the limit is %d", len(req.Records), maxRecords))
			return
		}
		outcomes := in.Batch(r.Context(), req.Records)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(recordsResponse{Summary: ingest.Summary(outcomes), Outcomes: outcomes})
	})
}
