// Package ingest takes the platform's records in: it decodes each one
// strictly, checks it (mapping.Check), maps it to a transaction Bundle
// (package ukcore) and hands the Bundle to a Committer, which stores it
// atomically. Each record has its own outcome: created, updated, unchanged,
// rejected (the record is wrong; nothing of it was stored; the problems say
// what to fix) or failed (the gateway could not store it now, e.g. the key
// service was down; nothing of it was stored; send it again).
//
// The package talks to neither storage nor HTTP: the Committer is the
// gateway's FHIR transaction, wired in by cmd/gateway.
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/ukcore"
)

// Stored is what the Committer did to one resource of a record.
type Stored struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// Version is the resource's current version after the commit.
	Version int64 `json:"version"`
	// Status is created, updated, unchanged, retracted (marked
	// entered-in-error) or deleted: retracted and deleted resources were
	// made by an earlier version of the record and not by this one.
	Status string `json:"status"`
}

// Committer stores one record's transaction Bundle atomically and says
// what it did to each entry, in order. An error that the record's content
// caused must be a *Rejection; any other error means the record could not
// be stored now and may be sent again.
type Committer func(ctx context.Context, bundle []byte) ([]Stored, error)

// Rejection is a Committer's refusal of a record's content.
type Rejection struct {
	Problems mapping.Problems
}

func (r *Rejection) Error() string { return "rejected: " + r.Problems.Error() }

// The statuses of a record.
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged"
	// Retracted and Deleted are resource statuses only: the record no
	// longer makes it, and it is marked entered-in-error or, where its
	// type cannot say so, deleted.
	Retracted = "retracted"
	Deleted   = "deleted"
	Rejected  = "rejected"
	Failed    = "failed"
)

// Outcome is what became of one record.
type Outcome struct {
	// Record is the record's source.record, when it could be read.
	Record string `json:"record,omitempty"`
	// Status is created (its patient is new), updated (something
	// changed), unchanged, rejected or failed.
	Status string `json:"status"`
	// Problems say why a record was rejected, field by field; Error why it
	// failed.
	Problems mapping.Problems `json:"problems,omitempty"`
	Error    string           `json:"error,omitempty"`
	// Resources are the stored resources, for a record that was stored.
	Resources []Stored `json:"resources,omitempty"`
}

// Ingester maps and stores records.
type Ingester struct {
	commit Committer
	// defined holds the DefinitionsKey of every definitions Bundle stored
	// by this Ingester.
	defined sync.Map
	// now is the present dates are checked against.
	now func() time.Time
	// Workers is how many records are mapped and stored at once in Batch.
	Workers int
	// Log, if set, receives the gateway's faults.
	Log *slog.Logger
}

// New returns an Ingester storing through commit.
func New(commit Committer) *Ingester {
	return &Ingester{commit: commit, now: time.Now, Workers: 4}
}

// Decode reads one record strictly: unknown fields, trailing data and
// wrong JSON types are problems, reported with the field's name.
func Decode(raw []byte) (*mapping.Record, error) {
	var r mapping.Record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, decodeProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, mapping.Problems{{Field: "", Reason: "unexpected data after the record"}}
	}
	return &r, nil
}

func decodeProblem(err error) mapping.Problems {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return mapping.Problems{{Field: te.Field, Reason: fmt.Sprintf("must be a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)}}
	case errors.As(err, &se):
		return mapping.Problems{{Reason: fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)}}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return mapping.Problems{{Reason: "not valid JSON: the record ends early"}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return mapping.Problems{{Field: name, Reason: "is not a field of the record (see docs/internal-model.md)"}}
	}
	return mapping.Problems{{Reason: "not a record: " + err.Error()}}
}

func jsonKind(k string) string {
	switch k {
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return k
}

// Record decodes, checks, maps and stores one record. A fault of the
// gateway's (a panic in mapping) fails that record, not the process.
func (in *Ingester) Record(ctx context.Context, raw []byte) (out Outcome) {
	r, err := Decode(raw)
	if err != nil {
		return Outcome{Status: Rejected, Problems: err.(mapping.Problems)}
	}
	defer func() {
		if p := recover(); p != nil {
			out = Outcome{Record: r.Source.Record, Status: Failed, Error: "internal error in the gateway; the record was not stored"}
			if in.Log != nil {
				in.Log.ErrorContext(ctx, "mapping a record panicked", "record", r.Source.Record, "panic", p, "stack", string(debug.Stack()))
			}
		}
	}()
	return in.store(ctx, r)
}

func (in *Ingester) store(ctx context.Context, r *mapping.Record) Outcome {
	out := Outcome{Record: r.Source.Record}
	if err := mapping.Check(r, in.now()); err != nil {
		out.Status, out.Problems = Rejected, err.(mapping.Problems)
		return out
	}
	m, err := ukcore.Map(r)
	if err != nil {
		out.Status, out.Error = Failed, err.Error()
		return out
	}
	var defs []Stored
	if m.Definitions != nil {
		if _, done := in.defined.Load(m.DefinitionsKey); !done {
			if defs, err = in.commit(ctx, m.Definitions); err != nil {
				out.Status, out.Error = Failed, "storing the questionnaire definitions: "+err.Error()
				return out
			}
			in.defined.Store(m.DefinitionsKey, true)
		}
	}
	stored, err := in.commit(ctx, m.Bundle)
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		out.Status, out.Problems = Rejected, rej.Problems
		return out
	case err != nil:
		out.Status, out.Error = Failed, err.Error()
		return out
	}
	out.Resources = append(stored, defs...)
	out.Status = Unchanged
	for _, s := range stored {
		switch {
		case s.Type == "Patient" && s.Status == Created:
			out.Status = Created
		case s.Status != Unchanged && out.Status == Unchanged:
			out.Status = Updated
		}
	}
	return out
}

// Batch ingests records independently, Workers at a time; outcomes are in
// the records' order. One record's rejection or failure does not affect
// the others.
func (in *Ingester) Batch(ctx context.Context, records []json.RawMessage) []Outcome {
	out := make([]Outcome, len(records))
	workers := max(1, min(in.Workers, len(records)))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = in.Record(ctx, records[i])
			}
		}()
	}
	for i := range records {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Summary counts outcomes by status.
func Summary(outcomes []Outcome) map[string]int {
	s := map[string]int{}
	for _, o := range outcomes {
		s[o.Status]++
	}
	return s
}
