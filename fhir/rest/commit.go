package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

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
	// Deleted and Retracted mark a resource CommitOptions.Supersede deleted
	// or marked entered-in-error (Retract): an earlier version of the
	// source wrote it and this one no longer does.
	Deleted, Retracted bool
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
	// Retract, when set, is asked first for each resource Supersede would
	// delete: ok says the type can be marked entered-in-error instead, and
	// out is the resource so marked (nil: it is so already). The result is
	// checked strictly and stored as a new version.
	Retract func(typ string, body []byte) (out []byte, ok bool)
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
	b, err := parseBundle(bundle)
	if err != nil {
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
			deleted, err = s.supersede(ctx, tx, plans, resps, opts)
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
		if d.Deleted {
			out = append(out, Committed{Type: d.Type, ID: d.ID, Version: d.Version, Status: http.StatusNoContent, Deleted: true})
		} else {
			out = append(out, Committed{Type: d.Type, ID: d.ID, Version: d.Version, Status: http.StatusOK, Retracted: true})
		}
	}
	return out, nil
}

// provenanceView is what supersede reads of a Provenance.
type provenanceView struct {
	Recorded string `json:"recorded"`
	Target   []struct {
		Reference string `json:"reference"`
	} `json:"target"`
	Agent []struct {
		Who provenanceRef `json:"who"`
	} `json:"agent"`
	Entity []struct {
		Role string        `json:"role"`
		What provenanceRef `json:"what"`
	} `json:"entity"`
}

type provenanceRef struct {
	Reference  string `json:"reference"`
	Identifier *struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
}

// key names what r refers to: its identifier, else its reference.
func (r provenanceRef) key() string {
	if r.Identifier != nil {
		return r.Identifier.System + "|" + r.Identifier.Value
	}
	return r.Reference
}

// sources are the identifiers (system|value) of the entities with role
// source.
func (pv provenanceView) sources() []string {
	var out []string
	for _, e := range pv.Entity {
		if e.Role == "source" && e.What.Identifier != nil {
			out = append(out, e.What.key())
		}
	}
	return out
}

// agents are the keys of the agents, sorted and joined.
func (pv provenanceView) agents() string {
	var out []string
	for _, a := range pv.Agent {
		out = append(out, a.Who.key())
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// supersede is CommitOptions.Supersede, run inside the transaction after
// its entries. For each Provenance the transaction wrote (not one stored
// already as sent: the source sent the same version again), the earlier
// Provenances of the same source by the same agents are its earlier
// versions: one of them recorded later makes this version out of date, and
// the transaction fails with 409 (nothing of it is stored); otherwise what
// they target and the transaction neither writes nor targets is deleted,
// unless Keep names its type or a Provenance of another source targets it
// too. A lock on the source serialises two versions of one source.
func (s *Server) supersede(ctx context.Context, tx store.Tx, plans []*planned, resps []*Response, opts CommitOptions) ([]*store.Resource, error) {
	current := map[string]bool{} // Type/id written or targeted now
	var news []provenanceView
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
		news = append(news, pv)
	}
	var deleted []*store.Resource
	done := map[string]bool{}
	for _, pv := range news {
		for _, src := range pv.sources() {
			if err := tx.LockCriteria(ctx, "Provenance source "+src); err != nil {
				return nil, err
			}
			earlier, err := s.provenancesOf(ctx, tx, src, current)
			if err != nil {
				return nil, err
			}
			for _, old := range earlier {
				if old.agents() != pv.agents() {
					continue // another system's account of this source
				}
				if laterThan(old.Recorded, pv.Recorded) {
					return nil, outcome.New(outcome.Conflict, "source %s: a later version (recorded %s) is stored already; this one (recorded %s) is out of date and was not stored", src, old.Recorded, pv.Recorded)
				}
				for _, t := range old.Target {
					typ, rid, ok := strings.Cut(t.Reference, "/")
					if !ok || strings.Contains(rid, "/") || current[t.Reference] || done[t.Reference] || (opts.Keep != nil && opts.Keep(typ)) {
						continue
					}
					done[t.Reference] = true
					d, err := s.retire(ctx, tx, typ, rid, src, opts.Retract)
					if err != nil {
						return nil, err
					}
					if d != nil {
						deleted = append(deleted, d)
					}
				}
			}
		}
	}
	return deleted, nil
}

// provenancesOf returns the live Provenances with an entity of role
// source identified by src, but for those in skip (Type/id).
func (s *Server) provenancesOf(ctx context.Context, tx store.Tx, src string, skip map[string]bool) ([]provenanceView, error) {
	system, value, _ := strings.Cut(src, "|")
	all, err := s.provenances(ctx, tx, url.Values{"entity:identifier": {search.EscapeValue(system) + "|" + search.EscapeValue(value)}}, skip)
	var out []provenanceView
	for _, pv := range all {
		if slices.Contains(pv.sources(), src) {
			out = append(out, pv)
		}
	}
	return out, err
}

// provenances returns the live Provenances that meet the search criteria
// q, but for those in skip (Type/id).
func (s *Server) provenances(ctx context.Context, tx store.Tx, q url.Values, skip map[string]bool) ([]provenanceView, error) {
	ids, err := s.matchQuery(ctx, tx, "Provenance", q, 0)
	if err != nil {
		return nil, err
	}
	var out []provenanceView
	for _, id := range ids {
		if skip["Provenance/"+id] {
			continue
		}
		res, err := tx.Read(ctx, "Provenance", id)
		if err != nil {
			return nil, err
		}
		if res.Deleted {
			continue
		}
		var pv provenanceView
		if err := json.Unmarshal(res.Body, &pv); err != nil {
			return nil, err
		}
		out = append(out, pv)
	}
	return out, nil
}

// retire deletes typ/id for source src, or marks it entered-in-error
// (retract), unless it is gone already or the latest Provenance of another
// source targets it (another record still holds it). It returns the
// version it wrote, if any.
func (s *Server) retire(ctx context.Context, tx store.Tx, typ, id, src string, retract func(string, []byte) ([]byte, bool)) (*store.Resource, error) {
	cur, err := tx.Read(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Deleted) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	holders, err := s.provenances(ctx, tx, url.Values{"target": {typ + "/" + id}}, nil)
	if err != nil {
		return nil, err
	}
	for _, pv := range holders {
		for _, other := range pv.sources() {
			if other == src {
				continue
			}
			latest, err := s.provenancesOf(ctx, tx, other, nil)
			if err != nil {
				return nil, err
			}
			if targets(newest(latest), typ+"/"+id) {
				return nil, nil
			}
		}
	}
	if retract != nil {
		if body, ok := retract(typ, cur.Body); ok {
			if body == nil {
				return nil, nil // retracted already
			}
			r := &Request{Type: typ, ID: id, Body: body}
			if err := s.prepareBody(ctx, r); err != nil {
				return nil, err
			}
			res, _, err := tx.Put(ctx, store.Write{Type: typ, ID: id, Body: r.checked, Method: http.MethodPut, IfMatch: cur.Version, Index: r.index})
			return res, err
		}
	}
	return tx.Delete(ctx, typ, id, http.MethodDelete, cur.Version)
}

// newest is the Provenance recorded last.
func newest(pvs []provenanceView) provenanceView {
	var best provenanceView
	for i, pv := range pvs {
		if i == 0 || laterThan(pv.Recorded, best.Recorded) {
			best = pv
		}
	}
	return best
}

func targets(pv provenanceView, ref string) bool {
	for _, t := range pv.Target {
		if t.Reference == ref {
			return true
		}
	}
	return false
}

// laterThan compares two FHIR instants; one that does not parse is never
// later.
func laterThan(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	return errA == nil && errB == nil && ta.After(tb)
}
