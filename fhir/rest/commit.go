package rest

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/promsgateway/gateway/fhir/outcome"
)

// Committed is what a transaction did to one of its entries.
type Committed struct {
	Type, ID string
	Version  int64
	// Status is the entry's HTTP status (201 created, 200 updated or
	// unchanged); Unchanged is true when the entry's resource was already
	// as sent and no version was written.
	Status    int
	Unchanged bool
}

// Commit carries out a transaction Bundle for a caller inside the gateway
// (the importer of the platform's records) exactly as POST [base] would:
// atomically, with every resource checked strictly and indexed,
// conditional updates on their criteria, urn:uuid references resolved
// (R4 3.1.0.11.2). One thing differs: an update whose resource is already
// stored as sent (apart from id and meta) writes no new version and is
// reported Unchanged, so re-sending an unchanged record leaves the history
// as it was. Errors are outcome errors naming the failing entry.
func (s *Server) Commit(ctx context.Context, bundle []byte) ([]Committed, error) {
	var b inBundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, outcome.New(outcome.Invalid, "the body is not a Bundle: %v", err)
	}
	if b.ResourceType != "Bundle" || b.Type != "transaction" {
		return nil, outcome.New(outcome.Invalid, "Commit needs a transaction Bundle")
	}
	r := &Request{Method: http.MethodPost, Header: http.Header{}, Base: s.cfg.BaseURL, skipUnchanged: true}
	plans, resps, err := s.runTransaction(ctx, r, b)
	if err != nil {
		return nil, err
	}
	out := make([]Committed, len(plans))
	for i, p := range plans {
		c := Committed{Status: resps[i].Status, Unchanged: resps[i].Unchanged, Type: p.req.Type}
		if res := resps[i].Resource; res != nil {
			c.ID, c.Version = res.ID, res.Version
		}
		out[i] = c
	}
	return out, nil
}
