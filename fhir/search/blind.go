package search

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Blind indexes (docs/search.md, docs/pseudonymisation.md).
//
// The index values of the parameters that identify a person (name, family,
// given, identifier, telecom, phone, email, address-*, birthdate on Patient,
// RelatedPerson and Person) are never stored: they are replaced by keyed
// digests (HMAC-SHA256 by the key holder, truncated to 128 bits), and a
// query's values are digested the same way before they reach the database.
// Each digest input names the resource type, the parameter and the kind of
// comparison, so equal values of different parameters do not match.
//
// What still works, and how:
//
//	name, family, given   starts-with on the normalised value, for search
//	                      strings of up to NamePrefixLength characters (every
//	                      prefix is indexed); a longer search string must equal
//	                      the whole normalised value; :exact; :missing
//	address-*             the whole normalised value (not its prefixes);
//	                      :exact; :missing
//	identifier, telecom,  system|value, |value, value, system|; :not,
//	phone, email          :of-type, :missing; :text (the identifier type's
//	                      text is not identifying and stays readable)
//	birthdate             equality at year, month or day precision; :missing
//
// Everything else on those parameters (:contains, range prefixes, :in, and
// _sort) would need the plaintext and is refused with a 400 that says why.

// Hasher computes keyed one-way digests of many inputs in one call; the key
// holder (vault.Keys) implements it.
type Hasher interface {
	HMAC(ctx context.Context, inputs [][]byte) ([][]byte, error)
}

// NamePrefixLength is the longest prefix, in characters of the normalised
// value, that name searches match on blind indexes.
const NamePrefixLength = 16

// blindKind is how a protected parameter's values are digested.
type blindKind uint8

const (
	notBlind   blindKind = iota
	blindName            // strings: every prefix, the whole value, the exact value
	blindWhole           // strings: the whole normalised value and the exact value
	blindToken           // tokens: the value (system and identifier type stay readable)
	blindDate            // dates: year, year-month and day
)

// protectedTypes are the resource types that describe a person who may be a
// patient or a patient's relative.
var protectedTypes = map[string]bool{"Patient": true, "RelatedPerson": true, "Person": true}

var protectedParams = map[string]blindKind{
	"name": blindName, "family": blindName, "given": blindName,
	"address": blindWhole, "address-city": blindWhole, "address-country": blindWhole,
	"address-postalcode": blindWhole, "address-state": blindWhole,
	"identifier": blindToken, "telecom": blindToken, "phone": blindToken, "email": blindToken,
	"birthdate": blindDate,
}

// nameParts are, per protected type, the parameters whose rows hold parts
// of the values its name parameter covers: Patient's name (Patient.name)
// matches its family (Patient.name.family) and given (Patient.name.given)
// names as well as prefix, suffix and text. Their digests are stored once,
// under family and given, and name keeps rows only for the other parts; a
// name search matches digests under all three (Clause.IndexParams). That
// is 13 rows fewer for a Patient named "Smith, Jane Mary", a third of its
// index. TestNamePartsFollowDefinitions ties this to the definitions.
var nameParts = map[string][]string{"Patient": {"family", "given"}}

// DescribesPerson reports whether resources of type typ describe a person
// who may be a patient or a patient's relative (Patient, RelatedPerson,
// Person): the types whose identifying parameters have blind indexes.
func DescribesPerson(typ string) bool { return protectedTypes[typ] }

// blindKindOf returns how the values of code on typ are protected.
func blindKindOf(typ, code string) blindKind {
	if !protectedTypes[typ] {
		return notBlind
	}
	return protectedParams[code]
}

// Protected reports whether the index values of parameter code on resource
// type typ are blind indexes.
func Protected(typ, code string) bool { return blindKindOf(typ, code) != notBlind }

// ParamDocumentation says what a query may use with parameter code (of
// type ptype) on resource type typ: Documentation, or for a blind-indexed
// parameter what its digests can answer.
func ParamDocumentation(typ, code, ptype string) string {
	switch blindKindOf(typ, code) {
	case blindName:
		return fmt.Sprintf("blind index (keyed digest): starts-with on up to %d normalised characters, longer values whole; modifiers: exact, missing; not sortable", NamePrefixLength)
	case blindWhole:
		return "blind index (keyed digest): whole normalised value; modifiers: exact, missing; not sortable"
	case blindToken:
		return "blind index (keyed digest) of the value; modifiers: text, not, missing, of-type"
	case blindDate:
		return "blind index (keyed digest): equality at year, month or day precision; modifiers: missing; not sortable"
	}
	return Documentation(ptype)
}

// Digest kinds, part of every digest input.
const (
	digestPrefix = "prefix"
	digestWhole  = "whole"
	digestExact  = "exact"
	digestToken  = "token"
	digestDate   = "date"
)

// digestInput is what is hashed for one value: type, parameter and kind
// separate the domains.
func digestInput(typ, code, kind, value string) []byte {
	b := make([]byte, 0, len(typ)+len(code)+len(kind)+len(value)+3)
	b = append(b, typ...)
	b = append(b, 0)
	b = append(b, code...)
	b = append(b, 0)
	b = append(b, kind...)
	b = append(b, 0)
	return append(b, value...)
}

// digestLen is how many bytes of each HMAC are kept: 128 bits make an
// accidental collision among billions of values negligible.
const digestLen = 16

// batch collects digest inputs and fills in the digests with one call.
type batch struct {
	inputs [][]byte
	dest   []*string
}

func (b *batch) add(dest *string, typ, code, kind, value string) {
	b.inputs = append(b.inputs, digestInput(typ, code, kind, value))
	b.dest = append(b.dest, dest)
}

func (b *batch) run(ctx context.Context, h Hasher) error {
	if len(b.inputs) == 0 {
		return nil
	}
	if h == nil {
		return fmt.Errorf("blind index: no key holder configured")
	}
	out, err := h.HMAC(ctx, b.inputs)
	if err != nil {
		return fmt.Errorf("blind index: %w", err)
	}
	if len(out) != len(b.inputs) {
		return fmt.Errorf("blind index: %d digests for %d inputs", len(out), len(b.inputs))
	}
	for i, d := range out {
		if len(d) < digestLen {
			return fmt.Errorf("blind index: digest of %d bytes", len(d))
		}
		*b.dest[i] = base64.RawURLEncoding.EncodeToString(d[:digestLen])
	}
	return nil
}

// prefixes returns the first 1..NamePrefixLength characters of s.
func namePrefixes(s string) []string {
	var out []string
	n := 0
	for i := range s {
		if i > 0 {
			out = append(out, s[:i])
			n++
			if n == NamePrefixLength {
				return out
			}
		}
	}
	return append(out, s)
}

// datePrecisions returns the year, year-month and day prefixes present in
// a date (or the date part of a dateTime).
func datePrecisions(s string) []string {
	s, _, _ = strings.Cut(s, "T")
	var out []string
	for _, n := range []int{4, 7, 10} {
		if len(s) >= n {
			out = append(out, s[:n])
		}
	}
	return out
}

// BlindRows replaces the rows of protected parameters of a typ resource
// with blind-index rows, digesting every value in one call to h. Rows of
// other parameters are returned unchanged.
func BlindRows(ctx context.Context, h Hasher, typ string, rows []Row) ([]Row, error) {
	items := []Indexed{{Type: typ, Rows: rows}}
	if err := BlindAll(ctx, h, items); err != nil {
		return nil, err
	}
	return items[0].Rows, nil
}

// Indexed is one resource's index rows.
type Indexed struct {
	Type string
	Rows []Row
}

// BlindAll is BlindRows for many resources at once (a transaction, an
// import batch): one call to h digests the values of all of them.
func BlindAll(ctx context.Context, h Hasher, items []Indexed) error {
	type pending struct {
		item, at  int
		raw       bool
		kind, val string
		code      string
	}
	var todo []pending
	for n := range items {
		typ, rows := items[n].Type, items[n].Rows
		if !protectedTypes[typ] {
			continue
		}
		// Name values a family or given row already holds (nameParts).
		var covered map[string]bool
		if parts := nameParts[typ]; parts != nil {
			covered = map[string]bool{}
			for _, row := range rows {
				if slices.Contains(parts, row.Param) {
					covered[row.Raw] = true
				}
			}
		}
		out := make([]Row, 0, len(rows)*2)
		for _, row := range rows {
			if row.Param == "name" && covered[row.Raw] {
				continue
			}
			add := func(raw bool, kind, val string) {
				at := len(out) - 1
				todo = append(todo, pending{item: n, at: at, raw: raw, kind: kind, val: val, code: row.Param})
			}
			switch blindKindOf(typ, row.Param) {
			case blindName:
				if row.Val == "" {
					continue
				}
				for _, p := range namePrefixes(row.Val) {
					out = append(out, Row{Param: row.Param})
					add(false, digestPrefix, p)
				}
				if utf8.RuneCountInString(row.Val) > NamePrefixLength {
					out = append(out, Row{Param: row.Param})
					add(false, digestWhole, row.Val)
				}
				// The exact value's digest rides on the last row (Raw),
				// one row fewer per value: :exact compares Raw, the rest Val.
				add(true, digestExact, row.Raw)
			case blindWhole:
				if row.Val == "" {
					continue
				}
				out = append(out, Row{Param: row.Param})
				add(false, digestWhole, row.Val)
				add(true, digestExact, row.Raw)
			case blindToken:
				val := row.Val
				row.Val = ""
				out = append(out, row)
				if val != "" {
					add(false, digestToken, val)
				}
			case blindDate:
				for _, p := range datePrecisions(row.source) {
					out = append(out, Row{Param: row.Param})
					add(false, digestDate, p)
				}
			default:
				out = append(out, row)
			}
		}
		items[n].Rows = out
	}
	// Digests are written into the rows once no slice grows any more.
	var b batch
	for _, p := range todo {
		dest := &items[p.item].Rows[p.at].Val
		if p.raw {
			dest = &items[p.item].Rows[p.at].Raw
		}
		b.add(dest, items[p.item].Type, p.code, p.kind, p.val)
	}
	return b.run(ctx, h)
}

// markBlind checks a clause on a protected parameter for what blind indexes
// can answer and marks it for Query.Blind.
func markBlind(typ string, c *Clause) error {
	kind := blindKindOf(typ, c.Code)
	if kind == notBlind {
		return nil
	}
	c.blind, c.blindType = kind, typ
	if c.Missing != nil {
		return nil
	}
	name := c.Code
	if c.Modifier != "" {
		name += ":" + c.Modifier
	}
	refuse := func(what string) error {
		return invalid(name, "%s is not available: %s.%s is stored as a blind index (keyed digest), so only equality%s can be searched",
			what, typ, c.Code, map[blindKind]string{blindName: " and name prefixes", blindDate: " at year, month or day precision"}[kind])
	}
	switch c.Modifier {
	case "", "exact", "not", "of-type", "text":
	default:
		return refuse("the :" + c.Modifier + " modifier")
	}
	for _, v := range c.Values {
		if kind == blindDate && v.Prefix != "eq" {
			return refuse("the " + v.Prefix + " prefix")
		}
	}
	return nil
}

// Blind replaces the values of clauses on protected parameters with their
// digests, in one call to h; it must run before the query reaches the store
// (which refuses a protected clause that was not blinded).
func (q *Query) Blind(ctx context.Context, h Hasher) error {
	var b batch
	for i := range q.Where {
		collectBlind(&q.Where[i], &b)
	}
	if err := b.run(ctx, h); err != nil {
		return err
	}
	return nil
}

func collectBlind(c *Clause, b *batch) {
	if c.Next != nil {
		collectBlind(c.Next, b)
	}
	if c.blind == notBlind {
		return
	}
	c.blinded = true
	if c.Missing != nil {
		return
	}
	if params := c.IndexParams(); len(params) > 1 {
		// One value per parameter the rows may be under, each digested
		// in that parameter's domain.
		values := make([]Value, 0, len(c.Values)*len(params))
		for _, v := range c.Values {
			for _, p := range params {
				v.Param = p
				values = append(values, v)
			}
		}
		c.Values = values
	}
	for i := range c.Values {
		v := &c.Values[i]
		code := c.Code
		if v.Param != "" {
			code = v.Param
		}
		switch c.blind {
		case blindName, blindWhole:
			if c.Modifier == "exact" {
				b.add(&v.Text, c.blindType, code, digestExact, v.Text)
				continue
			}
			norm := Normalize(v.Text)
			kind := digestWhole
			if c.blind == blindName && utf8.RuneCountInString(norm) <= NamePrefixLength {
				kind = digestPrefix
			}
			b.add(&v.Text, c.blindType, code, kind, norm)
		case blindToken:
			if c.Modifier != "text" && v.Code != "" {
				b.add(&v.Code, c.blindType, c.Code, digestToken, v.Code)
			}
		case blindDate:
			day := strings.SplitN(v.Text, "T", 2)[0]
			if day != v.Text || len(datePrecisions(day)) == 0 {
				// Finer than a day: no birth date lies within it.
				day = "\x00"
			}
			b.add(&v.Text, c.blindType, c.Code, digestDate, day)
		}
	}
}

// IndexParams are the parameters whose index rows a clause matches: its own
// code, and for the name of a type with nameParts also those parts. Once
// the query is blinded, each of such a clause's values names its
// parameter (Value.Param).
func (c *Clause) IndexParams() []string {
	if c.parts != nil {
		return c.parts
	}
	if c.blind == blindName && c.Code == "name" {
		if parts := nameParts[c.blindType]; parts != nil {
			return append([]string{c.Code}, parts...)
		}
	}
	return []string{c.Code}
}

// BlindIndexed reports whether the clause compares blind-index digests:
// the store then matches values by equality (digests of prefixes stand in
// for starts-with, digests of year, month and day for dates).
func (c *Clause) BlindIndexed() bool { return c.blind != notBlind }

// Unblinded returns an error when a clause on a protected parameter has not
// been through Blind: it would compare plaintext with digests.
func (q *Query) Unblinded() error {
	for i := range q.Where {
		for c := &q.Where[i]; c != nil; c = c.Next {
			if c.blind != notBlind && !c.blinded {
				return fmt.Errorf("search on %s.%s reached the store without its blind index", c.blindType, c.Code)
			}
		}
	}
	return nil
}
