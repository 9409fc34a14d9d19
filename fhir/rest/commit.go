package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// Committed is what a transaction did to one of its entries, or to a
// resource it superseded.
type Committed struct {
	Type, ID string
	Version  int64
	// Status is the entry's HTTP status (201 created, 200 updated or
	// unchanged, 204 deleted); Unchanged is true when the entry's resource
	// was already as sent and no version was written.
	Status    int
	Unchanged bool
	// Deleted marks a resource CommitOptions.Supersede deleted: an earlier
	// version of the source wrote it and this one no longer does.
	Deleted bool
}

// CommitOptions change what Commit does besides the transaction's entries.
type CommitOptions struct {
	// Supersede makes each Provenance the transaction writes replace the
	// earlier Provenances of the same source (its entity with role source,
	// found by identifier: Provenance?entity:identifier=system|value).
	// Resources those earlier Provenances target that this transaction
	// neither writes nor targets are deleted in the same transaction: the
	// source no longer holds what made them. Keep, when set, names types
	// never deleted so (data shared with other sources).
	Supersede bool
	Keep      func(typ string) bool
}

// Commit carries out a transaction Bundle for a caller inside the gateway
// (the importer of the platform's records) exactly as POST [base] would:
// atomically, with every resource checked strictly and indexed,
// conditional updates on their criteria, urn:uuid references resolved
// (R4 3.1.0.11.2). One thing differs: an update whose resource is already
// stored as sent (apart from id and meta) writes no new version and is
// reported Unchanged, so re-sending an unchanged record leaves the history
// as it was. Errors are outcome errors naming the failing entry.
func (s *Server) Commit(ctx context.Context, bundle []byte, opts CommitOptions) ([]Committed, error) {
	var b inBundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, outcome.New(outcome.Invalid, "the body is not a Bundle: %v", err)
	}
	if b.ResourceType != "Bundle" || b.Type != "transaction" {
		return nil, outcome.New(outcome.Invalid, "Commit needs a transaction Bundle")
	}
	r := &Request{Method: http.MethodPost, Header: http.Header{}, Base: s.cfg.BaseURL, skipUnchanged: true}
	var deleted []*store.Resource
	var after func(context.Context, store.Tx, []*planned, []*Response) error
	if opts.Supersede {
		after = func(ctx context.Context, tx store.Tx, plans []*planned, resps []*Response) error {
			var err error
			deleted, err = s.supersede(ctx, tx, plans, resps, opts.Keep)
			return err
		}
	}
	plans, resps, err := s.runTransaction(ctx, r, b, after)
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
	for _, d := range deleted {
		out = append(out, Committed{Type: d.Type, ID: d.ID, Version: d.Version, Status: http.StatusNoContent, Deleted: true})
	}
	return out, nil
}

// provenanceView is what supersede reads of a Provenance.
type provenanceView struct {
	Target []struct {
		Reference string `json:"reference"`
	} `json:"target"`
	Entity []struct {
		Role string `json:"role"`
		What struct {
			Identifier *struct {
				System string `json:"system"`
				Value  string `json:"value"`
			} `json:"identifier"`
		} `json:"what"`
	} `json:"entity"`
}

// supersede is CommitOptions.Supersede, run inside the transaction after
// its entries: it deletes what the earlier Provenances of the sources of
// the transaction's new Provenances target and the transaction no longer
// writes or targets. A Provenance that was already stored as sent (the
// source sent the same version again) supersedes nothing new.
func (s *Server) supersede(ctx context.Context, tx store.Tx, plans []*planned, resps []*Response, keep func(string) bool) ([]*store.Resource, error) {
	current := map[string]bool{} // Type/id written or targeted now
	var sources [][2]string
	for i := range plans {
		res := resps[i].Resource
		if res == nil {
			continue
		}
		current[res.Type+"/"+res.ID] = true
		if res.Type != "Provenance" || resps[i].Unchanged || res.Deleted {
			continue
		}
		var pv provenanceView
		if err := json.Unmarshal(res.Body, &pv); err != nil {
			return nil, err
		}
		for _, t := range pv.Target {
			current[t.Reference] = true
		}
		for _, e := range pv.Entity {
			if e.Role == "source" && e.What.Identifier != nil {
				sources = append(sources, [2]string{e.What.Identifier.System, e.What.Identifier.Value})
			}
		}
	}
	var deleted []*store.Resource
	done := map[string]bool{}
	for _, src := range sources {
		q := url.Values{"entity:identifier": {search.EscapeValue(src[0]) + "|" + search.EscapeValue(src[1])}}
		ids, err := s.matchQuery(ctx, tx, "Provenance", q, 0)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if current["Provenance/"+id] {
				continue
			}
			old, err := tx.Read(ctx, "Provenance", id)
			if err != nil {
				return nil, err
			}
			if old.Deleted {
				continue
			}
			var pv provenanceView
			if err := json.Unmarshal(old.Body, &pv); err != nil {
				return nil, err
			}
			for _, t := range pv.Target {
				typ, rid, ok := strings.Cut(t.Reference, "/")
				if !ok || strings.Contains(rid, "/") || current[t.Reference] || done[t.Reference] || (keep != nil && keep(typ)) {
					continue
				}
				done[t.Reference] = true
				d, err := tx.Delete(ctx, typ, rid, http.MethodDelete, 0)
				if err != nil {
					return nil, err
				}
				if d != nil {
					deleted = append(deleted, d)
				}
			}
		}
	}
	return deleted, nil
}
