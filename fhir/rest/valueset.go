package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// valueSetCodes finds the ValueSet with canonical url on this server and
// lists the codes it admits: its expansion if it has one, else the concepts
// its compose includes by enumeration, less those it excludes. Filters and
// included value sets need a terminology service and are refused.
func (s *Server) valueSetCodes(ctx context.Context, db store.Reader, canonical string) (search.ValueSetCodes, error) {
	q, err := s.parseSearch(ctx, "ValueSet", url.Values{"url": {canonical}, "_sort": {"-_lastUpdated"}}, true)
	if err != nil {
		return nil, err
	}
	q.Count, q.Total = 1, "none"
	res, err := db.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(res.Matches) == 0 {
		return nil, fmt.Errorf("ValueSet %s is not on this server", canonical)
	}
	var vs struct {
		Compose struct {
			Include []composeSet `json:"include"`
			Exclude []composeSet `json:"exclude"`
		} `json:"compose"`
		Expansion *struct {
			Contains []expansionCode `json:"contains"`
		} `json:"expansion"`
	}
	if err := json.Unmarshal(res.Matches[0].Body, &vs); err != nil {
		return nil, err
	}
	var out search.ValueSetCodes
	if vs.Expansion != nil {
		var walk func([]expansionCode)
		walk = func(cs []expansionCode) {
			for _, c := range cs {
				if c.Code != "" {
					out = append(out, search.Value{System: c.System, HasSystem: c.System != "", Code: c.Code})
				}
				walk(c.Contains)
			}
		}
		walk(vs.Expansion.Contains)
		return out, nil
	}
	excluded := map[string]bool{}
	for _, ex := range vs.Compose.Exclude {
		for _, c := range ex.Concept {
			excluded[ex.System+"|"+c.Code] = true
		}
	}
	for _, in := range vs.Compose.Include {
		if len(in.Filter) > 0 || len(in.ValueSet) > 0 || len(in.Concept) == 0 {
			return nil, fmt.Errorf("ValueSet %s needs expansion by a terminology service (filters, whole code systems or imported value sets)", canonical)
		}
		for _, c := range in.Concept {
			if !excluded[in.System+"|"+c.Code] {
				out = append(out, search.Value{System: in.System, HasSystem: in.System != "", Code: c.Code})
			}
		}
	}
	return out, nil
}

type composeSet struct {
	System   string                  `json:"system"`
	Concept  []struct{ Code string } `json:"concept"`
	Filter   []json.RawMessage       `json:"filter"`
	ValueSet []string                `json:"valueSet"`
}

type expansionCode struct {
	System   string          `json:"system"`
	Code     string          `json:"code"`
	Contains []expansionCode `json:"contains"`
}
