package search

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promsgateway/gateway/fhir/outcome"
)

// Query is a parsed type-level search (R4 3.1.1).
type Query struct {
	// Type is the resource type searched; empty with Types for a search
	// over several types (Patient/$everything).
	Type  string
	Types []string
	// Compartment limits the search to a patient's compartment.
	Compartment *Compartment
	// Since keeps resources last updated at or after it (microseconds;
	// $everything's _since); 0 means no limit.
	Since int64
	// Where are the criteria; all must hold (AND). Each clause's values are
	// alternatives (OR).
	Where []Clause
	// Count is the page size; Cursor continues a previous page.
	Count  int
	Cursor *Cursor
	Sort   []SortKey
	// Total is "none", "estimate" or "accurate" (empty: accurate).
	Total      string
	Include    []Include
	RevInclude []Include
	// Ignored lists parameters the server does not know or support; they
	// are left out of the self link (or refused under handling=strict).
	Ignored []string
	// Used are the parameters honoured, for the self link.
	Used url.Values
}

// Clause is one search parameter with its modifier and values.
type Clause struct {
	Code     string // parameter code (_id and _lastUpdated are store columns)
	Type     string // parameter type
	Modifier string
	// Missing is set for :missing (true: no value; false: some value).
	Missing *bool
	Values  []Value
	// Next is set for chained and reverse-chained parameters: the clause
	// that the resources at the other end must meet. For a chain (Code is a
	// reference parameter) Targets are the types it may point at; for _has,
	// HasType is the type whose reference parameter Code points here.
	Next    *Clause
	Targets []string
	HasType string

	// parts are the parameters whose rows a union's clause reads
	// (union.go); nil for every other parameter.
	parts []string

	// blind says how a protected parameter's values are digested
	// (blind.go), for resources of blindType; blinded is set once they are.
	blind     blindKind
	blindType string
	blinded   bool
}

// Value is one value of a clause, parsed for its parameter type.
type Value struct {
	Prefix string // eq ne gt lt ge le sa eb ap (date, number, quantity)
	// token and quantity units, reference identifiers
	System    string
	HasSystem bool
	Code      string
	// string, uri, token :text, reference URL
	Text string
	// reference
	RefType, RefID string
	// date: [DLow, DHigh) in microseconds
	DLow, DHigh int64
	// number and quantity: the value and its implicit range [NLow, NHigh)
	Num, NLow, NHigh float64
	// Second is a composite's second component, of type SecondType.
	Second     *Value
	SecondType string
	// Param, when set, is the parameter whose index rows this value is
	// matched against, instead of the clause's (Clause.IndexParams).
	Param string
}

// SortKey is one _sort key.
type SortKey struct {
	Code string
	Type string
	Desc bool
}

// Include is an _include or _revinclude: resources of SourceType whose
// reference parameter Param points at (or from) the matches.
type Include struct {
	SourceType string
	Param      string // "*" for every reference parameter
	TargetType string
	Iterate    bool
}

// Cursor continues a search after the last row of a page: the values of its
// sort keys and its id (keyset paging, so pages do not shift when data
// changes between them).
type Cursor struct {
	Keys []any  `json:"k"`
	ID   string `json:"i"`
}

// Encode renders the cursor as an opaque token.
func (c *Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a token made by Encode.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var c Cursor
	if err := dec.Decode(&c); err != nil || c.ID == "" {
		return nil, outcome.New(outcome.Invalid, "bad cursor")
	}
	return &c, nil
}

// resultParams shape the response rather than select resources; REST
// handles them.
var resultParams = map[string]bool{"_format": true, "_pretty": true, "_summary": true, "_elements": true, "_contained": true, "_containedType": true}

// DefaultCount and MaxCount bound page sizes; MaxValues and MaxClauses
// bound a query, so that no request can exceed the databases' limits on
// statement parameters (PostgreSQL 65,535; SQLite 32,766).
const (
	DefaultCount = 20
	MaxCount     = 1000
	MaxValues    = 1000
	MaxClauses   = 64
)

func invalid(param, format string, args ...any) error {
	e := outcome.New(outcome.Invalid, "search parameter %s: "+format, append([]any{param}, args...)...)
	e.Issues[0].Expression = []string{param}
	return e
}

// Parse reads the search parameters of a type-level search. Unknown or
// unsupported parameters are listed in Ignored; strict makes them an error
// (Prefer: handling=strict). Malformed values are always errors naming the
// parameter.
func (r *Registry) Parse(typ string, params url.Values, strict bool) (*Query, error) {
	q := &Query{Type: typ, Count: DefaultCount, Used: url.Values{}}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		values := params[name]
		if resultParams[name] {
			continue
		}
		code, modifier, _ := strings.Cut(name, ":")
		var err error
		switch code {
		case "_count":
			n, err := strconv.Atoi(values[0])
			if err != nil || n < 0 {
				return nil, invalid(name, "%q is not a non-negative integer", values[0])
			}
			q.Count = min(n, MaxCount)
			q.Used.Set(name, strconv.Itoa(q.Count))
			continue
		case "_cursor":
			if q.Cursor, err = DecodeCursor(values[0]); err != nil {
				return nil, invalid(name, "not a cursor this server issued")
			}
			continue
		case "_sort":
			if q.Sort, err = r.parseSort(typ, strings.Join(values, ",")); err != nil {
				return nil, err
			}
			q.Used[name] = values
			continue
		case "_total":
			switch values[0] {
			case "none", "estimate", "accurate":
				q.Total = values[0]
				q.Used.Set(name, values[0])
			default:
				return nil, invalid(name, "must be none, estimate or accurate")
			}
			continue
		case "_include", "_revinclude":
			for _, v := range values {
				inc, err := r.parseInclude(name, v, modifier == "iterate" || modifier == "recurse")
				if err != nil {
					return nil, err
				}
				// Wildcards become the concrete reference parameters, so the
				// store can use its index for each.
				all := r.expandInclude(typ, inc, code == "_revinclude")
				if code == "_include" {
					q.Include = append(q.Include, all...)
				} else {
					q.RevInclude = append(q.RevInclude, all...)
				}
			}
			q.Used[name] = values
			continue
		}
		for _, v := range values {
			c, err := r.parseNamed(typ, name, v, 0)
			if errors.Is(err, errUnsupported) {
				if strict {
					return nil, invalid(name, "is not supported for %s", typ)
				}
				q.Ignored = append(q.Ignored, name)
				break
			}
			if err != nil {
				return nil, err
			}
			q.Where = append(q.Where, c)
			q.Used.Add(name, v)
			if len(q.Where) > MaxClauses {
				return nil, invalid(name, "the search has more than %d criteria", MaxClauses)
			}
		}
	}
	return q, nil
}

// Documentation says what a query may use with a parameter of type typ:
// its modifiers and, for ordered types, its prefixes. The
// CapabilityStatement carries it.
func Documentation(typ string) string {
	mods := supportedModifiers[typ]
	if typ == "reference" {
		mods = append(append([]string{}, mods...), "[type]")
	}
	doc := "modifiers: " + strings.Join(mods, ", ")
	switch typ {
	case "date", "number", "quantity":
		doc += "; prefixes: " + strings.Join(prefixes, ", ")
	case "composite":
		doc = "[token]$[value]; the value takes the prefixes of its type"
	}
	return doc
}

// errUnsupported marks a parameter, modifier or chain the server does not
// support: ignored, or refused under handling=strict.
var errUnsupported = errors.New("unsupported search parameter")

// maxChain bounds chains and _has nesting.
const maxChain = 4

// parseNamed parses one parameter name (with modifier, chain or _has) and
// its value on typ.
func (r *Registry) parseNamed(typ, name, value string, depth int) (Clause, error) {
	if depth > maxChain {
		return Clause{}, invalid(name, "chains deeper than %d are not supported", maxChain)
	}
	if rest, ok := strings.CutPrefix(name, "_has:"); ok {
		// _has:[type]:[reference parameter]:[parameter on type]
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 {
			return Clause{}, invalid(name, "_has is _has:[type]:[reference]:[parameter]")
		}
		p, ok := r.Lookup(parts[0], parts[1])
		if !ok || p.Type != "reference" {
			return Clause{}, errUnsupported
		}
		next, err := r.parseNamed(parts[0], parts[2], value, depth+1)
		if err != nil {
			return Clause{}, err
		}
		return Clause{Code: p.Code, Type: "reference", HasType: parts[0], Next: &next}, nil
	}
	if head, rest, chained := strings.Cut(name, "."); chained {
		code, modifier, _ := strings.Cut(head, ":")
		p, ok := r.Lookup(typ, code)
		if !ok || p.Type != "reference" || !p.Indexed() {
			return Clause{}, errUnsupported
		}
		targets := p.Target
		if modifier != "" {
			targets = []string{modifier}
		}
		// Keep the target types that have the chained parameter.
		nextCode, _, _ := strings.Cut(strings.SplitN(rest, ".", 2)[0], ":")
		var usable []string
		var next Clause
		blind := 0
		for _, t := range targets {
			if _, ok := r.Lookup(t, nextCode); !ok && !strings.HasPrefix(nextCode, "_") {
				continue
			}
			c, err := r.parseNamed(t, rest, value, depth+1)
			if err != nil {
				return Clause{}, err
			}
			next = c
			usable = append(usable, t)
			if blindKindOf(t, nextCode) != notBlind {
				blind++
			}
		}
		if len(usable) == 0 {
			return Clause{}, errUnsupported
		}
		if blind > 0 && len(usable) > 1 {
			// One chained clause cannot compare digests for some target
			// types and plaintext for others.
			return Clause{}, invalid(name, "%s is a blind index on some of %s; name the target type, as in %s:%s.%s",
				nextCode, strings.Join(usable, ", "), code, usable[0], rest)
		}
		return Clause{Code: p.Code, Type: "reference", Targets: usable, Next: &next}, nil
	}
	code, modifier, _ := strings.Cut(name, ":")
	var p *Param
	if code == "_id" {
		p = &Param{Code: "_id", Type: "token"}
	} else {
		var ok bool
		p, ok = r.Lookup(typ, code)
		if !ok || !p.Indexed() && code != "_lastUpdated" {
			return Clause{}, errUnsupported
		}
	}
	c, err := parseClause(p, modifier, value)
	if err != nil {
		if oe, ok := err.(*outcome.Error); ok && oe.Kind == outcome.MethodNotAllowed {
			return Clause{}, errUnsupported
		}
		return Clause{}, err
	}
	if err := markBlind(typ, &c); err != nil {
		return Clause{}, err
	}
	c.parts = unions[typ][c.Code]
	return c, nil
}

var supportedModifiers = map[string][]string{
	"string":    {"exact", "contains", "missing"},
	"token":     {"text", "not", "missing", "of-type", "in", "not-in"},
	"reference": {"identifier", "missing"},
	"uri":       {"below", "above", "missing"},
	"date":      {"missing"},
	"number":    {"missing"},
	"quantity":  {"missing"},
}

func parseClause(p *Param, modifier, raw string) (Clause, error) {
	name := p.Code
	if modifier != "" {
		name += ":" + modifier
	}
	c := Clause{Code: p.Code, Type: p.Type, Modifier: modifier}
	if modifier == "missing" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return c, invalid(name, "must be true or false")
		}
		c.Missing = &b
		return c, nil
	}
	if modifier != "" && !(p.Type == "reference" && modifier[0] >= 'A' && modifier[0] <= 'Z') {
		ok := false
		for _, m := range supportedModifiers[p.Type] {
			ok = ok || m == modifier
		}
		if !ok {
			return c, &outcome.Error{Kind: outcome.MethodNotAllowed}
		}
	}
	if p.Type == "composite" && modifier != "" {
		return c, &outcome.Error{Kind: outcome.MethodNotAllowed}
	}
	alts := splitValues(raw)
	if len(alts) > MaxValues {
		return c, invalid(name, "has %d values; at most %d are allowed", len(alts), MaxValues)
	}
	for _, alt := range alts {
		v, err := parseValue(p, modifier, alt)
		if err != nil {
			return c, invalid(name, "%v", err)
		}
		c.Values = append(c.Values, v)
	}
	return c, nil
}

// splitValues splits on unescaped commas (R4 3.1.1.5.7). An escaped comma
// loses its \; the other escapes (\|, \$, \\) stay for parseValue, which
// splits tokens, quantities and composites on the unescaped separators and
// then removes them.
func splitValues(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ',':
			i++
			cur.WriteByte(',')
		case v[i] == '\\' && i+1 < len(v):
			cur.WriteByte(v[i])
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

type parseError string

func (e parseError) Error() string { return string(e) }

var prefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

func splitPrefix(s string) (string, string) {
	if len(s) > 2 {
		for _, p := range prefixes {
			if strings.HasPrefix(s, p) && (s[2] >= '0' && s[2] <= '9' || s[2] == '-' || s[2] == '.') {
				return p, s[2:]
			}
		}
	}
	return "eq", s
}

// cutUnescaped is strings.Cut on the first sep not escaped with \.
func cutUnescaped(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// EscapeValue escapes \, comma, | and $ in v (R4 3.1.1.5.7), so that it
// stands for itself in a search value: a token's system or code, a string.
func EscapeValue(v string) string { return valueEscaper.Replace(v) }

var valueEscaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`)

// unescape removes the \ of \|, \$, \, and \\.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func parseValue(p *Param, modifier, s string) (Value, error) {
	v, err := parseEscaped(p, modifier, s)
	v.System, v.Code = unescape(v.System), unescape(v.Code)
	return v, err
}

// parseEscaped parses one value whose \|, \$ and \\ escapes are still in
// place: tokens, references by identifier, quantities and composites split
// on the unescaped separators; every other value is unescaped whole.
func parseEscaped(p *Param, modifier, s string) (Value, error) {
	var v Value
	if s == "" {
		return v, parseError("empty value")
	}
	switch {
	case p.Type == "token" && (modifier == "" || modifier == "not" || modifier == "in" || modifier == "not-in" || modifier == "of-type"),
		p.Type == "reference" && modifier == "identifier", p.Type == "quantity", p.Type == "composite":
	default:
		s = unescape(s)
	}
	switch p.Type {
	case "string":
		v.Text = s
	case "uri":
		v.Text = s
	case "token":
		switch modifier {
		case "text", "in", "not-in":
			v.Text = s // the text, or the ValueSet's canonical URL
			return v, nil
		case "of-type":
			parts := strings.SplitN(s, "|", 3)
			if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
				return v, parseError(":of-type takes [type system]|[type code]|[value]")
			}
			v.System, v.HasSystem, v.Code, v.Text = parts[0]+"|"+parts[1], true, parts[2], ofTypeMarker
			return v, nil
		}
		if sys, code, ok := cutUnescaped(s, '|'); ok {
			v.System, v.HasSystem, v.Code = sys, true, code
			if sys == "" && code == "" {
				return v, parseError("'|' alone is not a token")
			}
		} else {
			v.Code = s
		}
	case "reference":
		if modifier == "identifier" {
			sys, code, ok := cutUnescaped(s, '|')
			if !ok {
				code = s
			}
			v.System, v.HasSystem, v.Code = sys, ok, code
			break
		}
		if strings.Contains(s, "://") {
			v.Text = s
			if t, id, ok := splitReference(s); ok {
				v.RefType, v.RefID = t, id
			}
			break
		}
		if t, id, ok := splitReference(s); ok {
			v.RefType, v.RefID = t, id
		} else if strings.Contains(s, "/") {
			return v, parseError("reference " + strconv.Quote(s) + " is not [type]/[id]")
		} else {
			v.RefID = s
		}
		if modifier != "" && modifier[0] >= 'A' && modifier[0] <= 'Z' {
			v.RefType = modifier
		}
	case "date":
		v.Prefix, s = splitPrefix(s)
		lo, hi, ok := DateRange(s)
		if !ok {
			return v, parseError(strconv.Quote(s) + " is not a FHIR date, dateTime or instant")
		}
		v.DLow, v.DHigh, v.Text = lo, hi, s
	case "number":
		v.Prefix, s = splitPrefix(s)
		lo, hi, ok := numberRange(s)
		if !ok || strings.ContainsAny(s, " |") {
			return v, parseError(strconv.Quote(s) + " is not a number")
		}
		v.Num, v.NLow, v.NHigh = (lo+hi)/2, lo, hi
	case "quantity":
		v.Prefix, s = splitPrefix(s)
		num, rest, hasUnit := cutUnescaped(s, '|')
		lo, hi, ok := numberRange(num)
		if !ok {
			return v, parseError(strconv.Quote(num) + " is not a number")
		}
		v.Num, v.NLow, v.NHigh = (lo+hi)/2, lo, hi
		if hasUnit {
			sys, code, ok := cutUnescaped(rest, '|')
			if !ok {
				return v, parseError("a quantity is number|system|code")
			}
			v.System, v.HasSystem, v.Code = sys, sys != "", code
		}
	case "composite":
		first, rest, ok := cutUnescaped(s, '$')
		if !ok || len(p.components) != 2 {
			return v, parseError("a composite value is [token]$[value]")
		}
		tok, err := parseValue(&Param{Code: p.Code, Type: "token"}, "", first)
		if err != nil {
			return v, err
		}
		second, err := parseValue(&Param{Code: p.Code, Type: p.components[1].typ}, "", rest)
		if err != nil {
			return v, err
		}
		v = tok
		v.Second, v.SecondType = &second, p.components[1].typ
	default:
		return v, parseError("parameters of type " + p.Type + " are not supported")
	}
	if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
		return v, parseError("not a finite number")
	}
	return v, nil
}

func (r *Registry) parseSort(typ, spec string) ([]SortKey, error) {
	var keys []SortKey
	for _, k := range strings.Split(spec, ",") {
		k = strings.TrimSpace(k)
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		switch k {
		case "_id":
			keys = append(keys, SortKey{Code: k, Type: "token", Desc: desc})
			continue
		case "_lastUpdated":
			keys = append(keys, SortKey{Code: k, Type: "date", Desc: desc})
			continue
		}
		p, ok := r.Lookup(typ, k)
		if !ok || !p.Indexed() {
			return nil, invalid("_sort", "cannot sort %s by %q", typ, k)
		}
		if Protected(typ, k) {
			return nil, invalid("_sort", "cannot sort %s by %q: it is stored as a blind index (keyed digest), which has no order", typ, k)
		}
		keys = append(keys, SortKey{Code: k, Type: p.Type, Desc: desc})
	}
	return keys, nil
}

func (r *Registry) parseInclude(name, v string, iterate bool) (Include, error) {
	parts := strings.Split(v, ":")
	if v == "*" {
		return Include{SourceType: "*", Param: "*", Iterate: iterate}, nil
	}
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(name, "%q is not [type]:[parameter][:targettype]", v)
	}
	inc := Include{SourceType: parts[0], Param: parts[1], Iterate: iterate}
	if len(parts) == 3 {
		inc.TargetType = parts[2]
	}
	if inc.Param != "*" {
		p, ok := r.Lookup(inc.SourceType, inc.Param)
		if !ok || p.Type != "reference" {
			return Include{}, invalid(name, "%s has no reference parameter %q", inc.SourceType, inc.Param)
		}
	}
	return inc, nil
}

// ValueSetCodes are the codes a ValueSet admits, for :in and :not-in.
type ValueSetCodes []Value

// ResolveValueSets replaces :in and :not-in clauses with the codes of the
// ValueSets they name, as codes finds them (R4 3.1.1.5.5). A ValueSet that
// cannot be found or expanded is an error naming the parameter.
func (q *Query) ResolveValueSets(codes func(url string) (ValueSetCodes, error)) error {
	for i := range q.Where {
		c := &q.Where[i]
		if c.Type != "token" || (c.Modifier != "in" && c.Modifier != "not-in") {
			continue
		}
		var all []Value
		for _, v := range c.Values {
			vs, err := codes(v.Text)
			if err != nil {
				return invalid(c.Code+":"+c.Modifier, "%v", err)
			}
			all = append(all, vs...)
		}
		if c.Modifier == "in" {
			c.Modifier = ""
		} else {
			c.Modifier = "not"
		}
		if len(all) == 0 {
			// An empty ValueSet admits nothing.
			all = []Value{{HasSystem: true, System: "urn:empty-value-set", Code: "\x00"}}
		}
		c.Values = all
	}
	return nil
}

// expandInclude replaces "*" in an include by every reference parameter it
// stands for: of the source type (_include), or of every type whose
// reference parameters can point at typ (_revinclude).
func (r *Registry) expandInclude(typ string, inc Include, rev bool) []Include {
	if inc.Param != "*" && inc.SourceType != "*" {
		return []Include{inc}
	}
	var out []Include
	sources := []string{inc.SourceType}
	if inc.SourceType == "*" {
		if !rev {
			sources = []string{typ}
		} else {
			sources = nil
			for t := range r.byType {
				sources = append(sources, t)
			}
			sort.Strings(sources)
		}
	}
	for _, src := range sources {
		if src == "Resource" || src == "DomainResource" {
			continue
		}
		for _, p := range r.ForType(src) {
			if p.Type != "reference" || !p.Indexed() || (inc.Param != "*" && p.Code != inc.Param) {
				continue
			}
			if rev && typ != "" && !contains(p.Target, typ) {
				continue
			}
			out = append(out, Include{SourceType: src, Param: p.Code, TargetType: inc.TargetType, Iterate: inc.Iterate})
		}
	}
	return out
}

// Now is the clock used for ap (approximately) on dates; tests may set it.
var Now = time.Now
