package rest

import (
	"context"
	"net/url"
	"strings"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/store"
)

// resultParams are query parameters that shape a response rather than
// select resources; conditional criteria ignore them.
var resultParams = map[string]bool{"_format": true, "_pretty": true, "_summary": true, "_elements": true}

// criteria parses the search criteria of a conditional interaction
// (If-None-Exist, conditional update, patch and delete; R4 3.1.0.8-10). Until
// the search engine lands only _id and identifier are supported; any other
// parameter is refused, because ignoring it would widen the match and a
// conditional delete or update would then touch resources the client did not
// mean.
func criteria(q url.Values) (store.Criteria, error) {
	var c store.Criteria
	for name, values := range q {
		if resultParams[name] {
			continue
		}
		for _, v := range values {
			alts := splitOr(v)
			switch name {
			case "_id":
				if len(c.IDs) > 0 {
					return c, outcome.New(outcome.Invalid, "_id may appear once in conditional criteria")
				}
				for _, id := range alts {
					if id == "" {
						return c, outcome.New(outcome.Invalid, "_id has an empty value")
					}
					c.IDs = append(c.IDs, id)
				}
			case "identifier":
				if len(c.Identifiers) > 0 {
					return c, outcome.New(outcome.Invalid, "identifier may appear once in conditional criteria")
				}
				for _, tok := range alts {
					ident, err := parseIdentifier(tok)
					if err != nil {
						return c, err
					}
					c.Identifiers = append(c.Identifiers, ident)
				}
			default:
				return c, outcome.New(outcome.Invalid, "conditional criteria support _id and identifier only; %q is not supported", name)
			}
		}
	}
	if len(c.IDs) == 0 && len(c.Identifiers) == 0 {
		return c, outcome.New(outcome.Invalid, "conditional interaction without search criteria")
	}
	return c, nil
}

// splitOr splits a search value on unescaped commas (R4 3.1.1.5.7).
func splitOr(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case v[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

// parseIdentifier parses a token: [system]|[code], |[code] or [code].
func parseIdentifier(tok string) (store.Identifier, error) {
	var ident store.Identifier
	if sys, val, ok := strings.Cut(tok, "|"); ok {
		ident = store.Identifier{System: sys, HasSystem: true, Value: val}
	} else {
		ident = store.Identifier{Value: tok}
	}
	if ident.Value == "" {
		return ident, outcome.New(outcome.Invalid, "identifier %q has no value; system-only identifier criteria are not supported", tok)
	}
	return ident, nil
}

// matchQuery finds the live resources of typ that meet the criteria in q,
// at most limit of them (0: all).
func matchQuery(ctx context.Context, db store.Reader, typ string, q url.Values, limit int) ([]string, error) {
	c, err := criteria(q)
	if err != nil {
		return nil, err
	}
	return db.Match(ctx, typ, c, limit)
}
