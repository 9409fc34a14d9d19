package search

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/promsgateway/gateway/conformance/fhirpath"
)

// Row is one index entry: a value of a search parameter of one resource.
// Which fields are set depends on the parameter's type:
//
//	string     Val normalised (lowercase, no accents), Raw as written
//	token      Sys system, Val code, Raw normalised display/text
//	reference  Sys target type, Val target id, Raw the reference as written;
//	           Raw "#identifier" marks Reference.identifier (Sys system, Val value)
//	uri        Val the uri
//	date       DLow..DHigh, the instants the value covers [low, high)
//	number     NLow..NHigh, the value's implicit range
//	quantity   NLow..NHigh with Sys system, Val code, Raw unit
type Row struct {
	Param       string
	Sys, Val    string
	Raw         string
	DLow, DHigh int64 // microseconds since the Unix epoch, UTC
	NLow, NHigh float64
	HasDate     bool
	HasNumber   bool
	// source is a date as written, for blind indexes (BlindRows); it is
	// not stored.
	source string
}

// ofTypeMarker marks the rows that serve :of-type (Sys is the identifier
// type's system|code, Val the identifier's value).
const ofTypeMarker = "#of-type"

// Extract evaluates every indexed parameter of the resource's type on body
// and returns its index rows. Parameters whose evaluation fails are reported
// in errs and skipped; the rows of the others are returned.
func (r *Registry) Extract(typ string, body []byte) (rows []Row, errs []error) {
	res, err := fhirpath.ParseResource(body)
	if err != nil {
		return nil, []error{err}
	}
	// One clock reading for every expression of the resource (now() and
	// today() agree across its parameters, and the clock is read once).
	env := &fhirpath.Environment{Resource: res, Resolve: referenceStub, Lenient: true, Now: time.Now()}
	top, _ := res.JSON.(map[string]any)
	names := elementNames(top)
	for _, pl := range r.extractionPlan(typ) {
		p := pl.param
		if skipAbsent && !present(pl.roots, names) {
			continue // none of the elements the expression starts from is present
		}
		prows, err := paramRows(p, pl.expr, env, res)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Code, err))
			continue
		}
		rows = append(rows, prows...)
	}
	return append(rows, compartmentRows(typ, rows)...), errs
}

// paramRows evaluates p's expression (expr, narrowed to the resource's
// type) on res and returns p's index rows.
func paramRows(p *Param, expr *fhirpath.Expression, env *fhirpath.Environment, res fhirpath.Value) ([]Row, error) {
	vals, err := expr.Evaluate(env, fhirpath.Collection{res})
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, v := range vals {
		if p.Type == "composite" {
			rows = append(rows, compositeRows(p, env, v)...)
			continue
		}
		rows = append(rows, rowsFor(p, v)...)
	}
	return rows, nil
}

// skipAbsent enables mayApply; the tests turn it off to prove it changes
// nothing.
var skipAbsent = true

var exprCache sync.Map // type + " " + url -> *fhirpath.Expression

// planned is one parameter of a type as Extract evaluates it: its
// expression narrowed to the type, and the elements it starts from.
type planned struct {
	param *Param
	expr  *fhirpath.Expression
	roots []string
}

// extractionPlan returns, once per type, the parameters Extract evaluates.
func (r *Registry) extractionPlan(typ string) []planned {
	if v, ok := plans.Load(typ); ok {
		return v.([]planned)
	}
	var out []planned
	for _, p := range r.ForType(typ) {
		if !p.Indexed() || p.Code == "_id" || p.Code == "_lastUpdated" {
			continue // _id and _lastUpdated are columns of the store
		}
		if unions[typ][p.Code] != nil {
			continue // its rows are its parts' (union.go)
		}
		expr, err := r.expression(p, typ)
		if err != nil || expr == nil {
			continue
		}
		out = append(out, planned{param: p, expr: expr, roots: expressionRoots(branches(p.Expression, typ), typ)})
	}
	plans.Store(typ, out)
	return out
}

var plans sync.Map // type -> []planned

// elementNames are the element names the top-level members of a resource
// stand for: each member's name and, as a choice element's value[x]
// appears as valueQuantity, every prefix of it that an upper-case letter
// follows (value; effective and effectiveDate for effectiveDateTime).
func elementNames(top map[string]any) map[string]bool {
	names := make(map[string]bool, 2*len(top))
	for k := range top {
		names[k] = true
		for i := 1; i < len(k); i++ {
			if k[i] >= 'A' && k[i] <= 'Z' {
				names[k[:i]] = true
			}
		}
	}
	return names
}

// present reports whether an expression starting at roots can find
// anything in a resource whose top-level members stand for names
// (elementNames): each branch of the expression starts at an element of
// the type, and when none of those elements is present the expression is
// empty. Branches whose start cannot be read (roots nil) are assumed to
// apply. This skips most parameters of a type for a typical resource.
func present(roots []string, names map[string]bool) bool {
	if roots == nil {
		return true
	}
	for _, root := range roots {
		if names[root] {
			return true
		}
	}
	return false
}

// expressionRoots returns the first element name of each branch of expr
// ("Observation.subject.where(...)" -> "subject"), or nil when a branch
// does not start with [type].[element].
func expressionRoots(expr, typ string) []string {
	var roots []string
	for _, b := range splitTopLevel(expr, '|') {
		b = strings.TrimLeft(strings.TrimSpace(b), "( ")
		rest, ok := strings.CutPrefix(b, typ+".")
		if !ok {
			if rest, ok = strings.CutPrefix(b, "Resource."); !ok {
				if rest, ok = strings.CutPrefix(b, "DomainResource."); !ok {
					return nil
				}
			}
		}
		end := strings.IndexAny(rest, ".( |)")
		if end < 0 {
			end = len(rest)
		}
		root := rest[:end]
		if root == "" || strings.ContainsAny(root, "`$%") {
			return nil
		}
		roots = append(roots, root)
	}
	return roots
}

// expression returns p's expression narrowed to typ's branches.
func (r *Registry) expression(p *Param, typ string) (*fhirpath.Expression, error) {
	key := typ + " " + p.URL
	if e, ok := exprCache.Load(key); ok {
		return e.(*fhirpath.Expression), nil
	}
	src := branches(p.Expression, typ)
	if src == "" {
		exprCache.Store(key, (*fhirpath.Expression)(nil))
		return nil, nil
	}
	e, err := fhirpath.Parse(src)
	if err != nil {
		return nil, err
	}
	exprCache.Store(key, e)
	return e, nil
}

// referenceStub lets expressions such as subject.where(resolve() is
// Patient) work without fetching: a relative reference resolves to a stub
// of its type.
func referenceStub(ref string) *fhirpath.Node {
	typ, id, ok := splitReference(ref)
	if !ok {
		return nil
	}
	return &fhirpath.Node{Type: typ, JSON: map[string]any{"resourceType": typ, "id": id}}
}

// splitReference reads [base/]Type/id[/_history/v].
func splitReference(ref string) (typ, id string, ok bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return "", "", false
	}
	typ, id = parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	return typ, id, true
}

// Normalize folds a string for matching: lowercase, accents removed,
// whitespace collapsed (R4 3.1.1.5.3: string search ignores case and
// accents).
func Normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		// No accents to remove: the common case, without the transformer.
		return strings.ToLower(strings.Join(strings.Fields(s), " "))
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(strings.Join(strings.Fields(out), " "))
}

func rowsFor(p *Param, v fhirpath.Value) []Row {
	n, isNode := v.(*fhirpath.Node)
	if !isNode {
		if s, ok := v.(fhirpath.String); ok {
			n = &fhirpath.Node{Type: "string", JSON: string(s)}
		} else {
			return nil
		}
	}
	m, _ := n.JSON.(map[string]any)
	str := func(k string) string { s, _ := m[k].(string); return s }
	switch p.Type {
	case "string":
		var out []Row
		add := func(s string) {
			if s != "" {
				out = append(out, Row{Param: p.Code, Val: Normalize(s), Raw: s})
			}
		}
		if m == nil {
			s, _ := n.JSON.(string)
			add(s)
			return out
		}
		for _, k := range []string{"text", "family", "city", "district", "state", "postalCode", "country"} {
			add(str(k))
		}
		for _, k := range []string{"given", "prefix", "suffix", "line"} {
			if arr, ok := m[k].([]any); ok {
				for _, x := range arr {
					s, _ := x.(string)
					add(s)
				}
			}
		}
		return out
	case "token":
		return tokenRows(p.Code, n, m, str)
	case "reference":
		if m == nil {
			s, _ := n.JSON.(string) // canonical or uri
			if s == "" {
				return nil
			}
			row := Row{Param: p.Code, Raw: s}
			row.Sys, row.Val, _ = splitReference(s)
			return []Row{row}
		}
		var out []Row
		if ref := str("reference"); ref != "" {
			row := Row{Param: p.Code, Raw: ref}
			row.Sys, row.Val, _ = splitReference(ref)
			if strings.HasPrefix(ref, "#") {
				row.Val = ref
			}
			out = append(out, row)
		}
		if ident, ok := m["identifier"].(map[string]any); ok {
			sys, _ := ident["system"].(string)
			val, _ := ident["value"].(string)
			if val != "" {
				out = append(out, Row{Param: p.Code, Sys: sys, Val: val, Raw: "#identifier"})
			}
		}
		return out
	case "uri":
		if s, ok := n.JSON.(string); ok {
			return []Row{{Param: p.Code, Val: s}}
		}
	case "date":
		return dateRows(p.Code, n, m, str)
	case "number":
		if num, ok := n.JSON.(json.Number); ok {
			lo, hi, ok := numberRange(string(num))
			if ok {
				return []Row{{Param: p.Code, NLow: lo, NHigh: hi, HasNumber: true}}
			}
		}
	case "quantity":
		if m == nil {
			return nil
		}
		num, ok := m["value"].(json.Number)
		if !ok {
			return nil
		}
		lo, hi, ok := numberRange(string(num))
		if !ok {
			return nil
		}
		code := str("code")
		if code == "" {
			code = str("currency") // Money
		}
		return []Row{{Param: p.Code, Sys: str("system"), Val: code, Raw: str("unit"), NLow: lo, NHigh: hi, HasNumber: true}}
	}
	return nil
}

func tokenRows(code string, n *fhirpath.Node, m map[string]any, str func(string) string) []Row {
	if m == nil {
		switch x := n.JSON.(type) {
		case string:
			return []Row{{Param: code, Val: x}}
		case bool:
			return []Row{{Param: code, Val: fmt.Sprint(x)}}
		}
		return nil
	}
	coding := func(c map[string]any) Row {
		s, _ := c["system"].(string)
		v, _ := c["code"].(string)
		d, _ := c["display"].(string)
		return Row{Param: code, Sys: s, Val: v, Raw: Normalize(d)}
	}
	switch {
	case m["coding"] != nil || (m["text"] != nil && m["value"] == nil && m["system"] == nil):
		var out []Row
		if arr, ok := m["coding"].([]any); ok {
			for _, c := range arr {
				if cm, ok := c.(map[string]any); ok {
					out = append(out, coding(cm))
				}
			}
		}
		if t := str("text"); t != "" {
			out = append(out, Row{Param: code, Raw: Normalize(t)})
		}
		return out
	case m["code"] != nil:
		return []Row{coding(m)}
	case m["value"] != nil:
		// Identifier (system|value, type text for :text) or ContactPoint.
		row := Row{Param: code, Sys: str("system"), Val: str("value")}
		if n.Type == "ContactPoint" {
			row.Sys = ""
		}
		out := []Row{row}
		if t, ok := m["type"].(map[string]any); ok {
			tt, _ := t["text"].(string)
			out[0].Raw = Normalize(tt)
			// :of-type rows: the identifier's type coding with its value.
			if codings, ok := t["coding"].([]any); ok {
				for _, c := range codings {
					cm, _ := c.(map[string]any)
					sys, _ := cm["system"].(string)
					cd, _ := cm["code"].(string)
					if cd != "" && row.Val != "" {
						out = append(out, Row{Param: code, Sys: sys + "|" + cd, Val: row.Val, Raw: ofTypeMarker})
					}
				}
			}
		}
		return out
	}
	return nil
}

func dateRows(code string, n *fhirpath.Node, m map[string]any, str func(string) string) []Row {
	if m == nil {
		s, ok := n.JSON.(string)
		if !ok {
			return nil
		}
		lo, hi, ok := DateRange(s)
		if !ok {
			return nil
		}
		return []Row{{Param: code, DLow: lo, DHigh: hi, HasDate: true, source: s}}
	}
	if start, end := str("start"), str("end"); start != "" || end != "" {
		// Period: an open end reaches to the end of time.
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if start != "" {
			lo, _, _ = DateRange(start)
		}
		if end != "" {
			_, hi, _ = DateRange(end)
		}
		return []Row{{Param: code, DLow: lo, DHigh: hi, HasDate: true}}
	}
	if events, ok := m["event"].([]any); ok {
		var out []Row
		for _, e := range events {
			if s, ok := e.(string); ok {
				if lo, hi, ok := DateRange(s); ok {
					out = append(out, Row{Param: code, DLow: lo, DHigh: hi, HasDate: true})
				}
			}
		}
		return out
	}
	return nil
}

// DateRange returns the instants a FHIR date, dateTime or instant covers,
// as microseconds [low, high): "2026" is the whole year. A value without a
// zone is read as UTC.
func DateRange(s string) (int64, int64, bool) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{"2006-01-02T15:04", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05", func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, s); err == nil {
			return t.UnixMicro(), l.next(t).UnixMicro(), true
		}
	}
	if i := strings.IndexByte(s, '.'); i > 0 {
		layout := "2006-01-02T15:04:05Z07:00"
		if !strings.ContainsAny(s[i:], "Z+-") {
			layout = "2006-01-02T15:04:05"
		}
		if t, err := time.Parse(layout, s); err == nil {
			digits := 0
			for _, c := range s[i+1:] {
				if c < '0' || c > '9' {
					break
				}
				digits++
			}
			step := int64(1_000_000)
			for d := 0; d < digits && step > 1; d++ {
				step /= 10
			}
			return t.UnixMicro(), t.UnixMicro() + step, true
		}
	}
	return 0, 0, false
}

// numberRange is a decimal's implicit range by its precision (R4
// 3.1.1.5.1): 100 is [99.5, 100.5), 1.50 is [1.495, 1.505).
func numberRange(s string) (float64, float64, bool) {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, 0, false
	}
	mant := strings.ToLower(s)
	exp := 0
	if i := strings.IndexByte(mant, 'e'); i >= 0 {
		fmt.Sscan(mant[i+1:], &exp)
		mant = mant[:i]
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return v - half, v + half, true
}

// compositeRows indexes a composite parameter (R4 3.1.1.4.10): for each
// pair of its first component (a token: Sys, Val) and its second, one row.
// The second component is kept in the row's other columns: a quantity in
// NLow..NHigh with "system|code" of its unit in Raw, a date in DLow..DHigh,
// a token as "system|code" in Raw, a string normalised in Raw.
func compositeRows(p *Param, env *fhirpath.Environment, v fhirpath.Value) []Row {
	// The second component first: it is the one most often absent (an
	// Observation has one value[x] of the five its composites pair with
	// the code), and without it there is no row.
	second, err := p.components[1].expr.Evaluate(env, fhirpath.Collection{v})
	if err != nil || len(second) == 0 {
		return nil
	}
	first, err := p.components[0].expr.Evaluate(env, fhirpath.Collection{v})
	if err != nil {
		return nil
	}
	tokenParam := &Param{Code: p.Code, Type: "token"}
	secondParam := &Param{Code: p.Code, Type: p.components[1].typ}
	var out []Row
	for _, f := range first {
		for _, a := range rowsFor(tokenParam, f) {
			if a.Val == "" {
				continue // a CodeableConcept's text alone
			}
			for _, sv := range second {
				for _, b := range rowsFor(secondParam, sv) {
					row := Row{Param: p.Code, Sys: a.Sys, Val: a.Val}
					switch secondParam.Type {
					case "quantity":
						row.NLow, row.NHigh, row.HasNumber = b.NLow, b.NHigh, true
						row.Raw = b.Sys + "|" + b.Val
					case "number":
						row.NLow, row.NHigh, row.HasNumber = b.NLow, b.NHigh, true
					case "date":
						row.DLow, row.DHigh, row.HasDate = b.DLow, b.DHigh, true
					case "token":
						if b.Val == "" {
							continue // a CodeableConcept's text alone
						}
						row.Raw = b.Sys + "|" + b.Val
					case "string", "uri":
						row.Raw = b.Val
					default:
						continue
					}
					out = append(out, row)
				}
			}
		}
	}
	return out
}
