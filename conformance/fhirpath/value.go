package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Value is one item of a collection: Boolean, String, Integer, Decimal,
// Temporal, Quantity, or *Node (an element of a FHIR resource).
type Value interface{}

// Collection is what every FHIRPath expression evaluates to.
type Collection []Value

// Boolean is System.Boolean.
type Boolean bool

// String is System.String.
type String string

// Integer is System.Integer.
type Integer int64

// Decimal is System.Decimal: an exact rational with the number of decimal
// places it was written with (its precision).
type Decimal struct {
	r     *big.Rat
	scale int
}

// ParseDecimal reads a decimal literal.
func ParseDecimal(s string) (Decimal, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return Decimal{}, fmt.Errorf("%q is not a decimal", s)
	}
	scale := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		scale = len(s) - i - 1
		if e := strings.IndexAny(s, "eE"); e >= 0 {
			scale = e - i - 1
		}
	}
	return Decimal{r: r, scale: scale}, nil
}

func decimalFromInt(i int64) Decimal { return Decimal{r: new(big.Rat).SetInt64(i)} }

// String renders the decimal with its scale (at least enough digits to be
// exact, up to 8 places for results of division).
func (d Decimal) String() string {
	scale := d.scale
	if !d.r.IsInt() && d.exactScale() > scale {
		scale = min(d.exactScale(), 8)
	}
	return d.r.FloatString(scale)
}

// exactScale is the number of places needed to write d exactly (or 9 when
// it has no finite decimal expansion).
func (d Decimal) exactScale() int {
	den := new(big.Int).Set(d.r.Denom())
	two, five := big.NewInt(2), big.NewInt(5)
	n2, n5 := 0, 0
	zero := big.NewInt(0)
	m := new(big.Int)
	for m.Mod(den, two).Cmp(zero) == 0 {
		den.Div(den, two)
		n2++
	}
	for m.Mod(den, five).Cmp(zero) == 0 {
		den.Div(den, five)
		n5++
	}
	if den.Cmp(big.NewInt(1)) != 0 {
		return 9
	}
	return max(n2, n5)
}

func (d Decimal) float() float64 { f, _ := d.r.Float64(); return f }

// Temporal is System.Date, System.DateTime or System.Time with the
// precision it was written with.
type Temporal struct {
	Kind  TemporalKind
	t     time.Time
	prec  Precision
	hasTZ bool
}

// TemporalKind tells dates, date-times and times apart.
type TemporalKind int

// The temporal kinds.
const (
	DateKind TemporalKind = iota
	DateTimeKind
	TimeKind
)

// Precision is how much of a date or time is known.
type Precision int

// The precisions, coarsest first. Seconds and milliseconds compare as one
// precision (FHIRPath 5.2.5.1).
const (
	Year Precision = iota + 1
	Month
	Day
	Hour
	Minute
	Second
	Millisecond
)

// Quantity is System.Quantity.
type Quantity struct {
	Value Decimal
	Unit  string
}

// calendarUnits are the calendar duration keywords and their UCUM codes.
var calendarUnits = map[string]string{
	"year": "a", "years": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
	"day": "d", "days": "d", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
	"second": "s", "seconds": "s", "millisecond": "ms", "milliseconds": "ms",
}

func (q Quantity) String() string {
	if _, cal := calendarUnits[q.Unit]; cal {
		return q.Value.String() + " " + q.Unit
	}
	return q.Value.String() + " '" + q.Unit + "'"
}

func numberLiteral(t token) (Value, error) {
	if t.kind == tLongNumber {
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, &SyntaxError{t.pos, "integer out of range"}
		}
		return Integer(n), nil
	}
	if !strings.Contains(t.text, ".") {
		n, err := strconv.ParseInt(t.text, 10, 32)
		if err == nil {
			return Integer(n), nil
		}
	}
	d, err := ParseDecimal(t.text)
	if err != nil {
		return nil, &SyntaxError{t.pos, err.Error()}
	}
	return d, nil
}

func temporalLiteral(t token) (Value, error) {
	var (
		v  Temporal
		ok bool
	)
	if t.kind == tTime {
		v, ok = parseTime(strings.TrimPrefix(t.text, "T"))
		ok = ok && !v.hasTZ // a Time has no zone
	} else {
		v, ok = parseDateTime(t.text, true)
	}
	if !ok {
		return nil, &SyntaxError{t.pos, fmt.Sprintf("invalid date/time literal @%s", t.text)}
	}
	return v, nil
}

// parseDateTime reads a FHIR date or dateTime. literal allows the
// FHIRPath forms with a trailing T ("@2015T").
func parseDateTime(s string, literal bool) (Temporal, bool) {
	datePart, timePart, hasT := strings.Cut(s, "T")
	v := Temporal{Kind: DateKind}
	layouts := []struct {
		layout string
		prec   Precision
	}{{"2006", Year}, {"2006-01", Month}, {"2006-01-02", Day}}
	found := false
	for _, l := range layouts {
		if len(datePart) == len(l.layout) {
			t, err := time.Parse(l.layout, datePart)
			if err != nil {
				return v, false
			}
			v.t, v.prec, found = t, l.prec, true
		}
	}
	if !found {
		return v, false
	}
	if !hasT {
		return v, true
	}
	v.Kind = DateTimeKind
	if timePart == "" {
		return v, literal
	}
	if v.prec != Day {
		return v, false
	}
	tm, ok := parseTime(timePart)
	if !ok {
		return v, false
	}
	v.prec = tm.prec
	v.hasTZ = tm.hasTZ
	loc := time.UTC
	if tm.hasTZ {
		loc = tm.t.Location()
	}
	v.t = time.Date(v.t.Year(), v.t.Month(), v.t.Day(), tm.t.Hour(), tm.t.Minute(), tm.t.Second(), tm.t.Nanosecond(), loc)
	return v, true
}

// parseTime reads hh[:mm[:ss[.fff]]] with an optional zone (dateTime's
// time part; a Time literal has no zone).
func parseTime(s string) (Temporal, bool) {
	v := Temporal{Kind: TimeKind}
	zone := ""
	if i := strings.IndexAny(s, "Z+-"); i >= 0 {
		s, zone = s[:i], s[i:]
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 || parts[0] == "" {
		return v, false
	}
	nums := make([]int, 3)
	var nanos int
	for i, p := range parts {
		if i == 2 {
			sec, frac, hasFrac := strings.Cut(p, ".")
			p = sec
			if hasFrac {
				if frac == "" || len(frac) > 9 {
					return v, false
				}
				f, err := strconv.Atoi(frac)
				if err != nil {
					return v, false
				}
				for k := len(frac); k < 9; k++ {
					f *= 10
				}
				nanos = f
				v.prec = Millisecond
			}
		}
		if len(p) != 2 {
			return v, false
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		nums[i] = n
	}
	if v.prec == 0 {
		v.prec = Hour + Precision(len(parts)-1)
	}
	if nums[0] > 23 || nums[1] > 59 || nums[2] > 59 {
		return v, false
	}
	loc := time.UTC
	if zone != "" {
		v.hasTZ = true
		if zone != "Z" {
			zt, err := time.Parse("-07:00", zone)
			if err != nil {
				return v, false
			}
			loc = zt.Location()
		}
	}
	v.t = time.Date(0, 1, 1, nums[0], nums[1], nums[2], nanos, loc)
	return v, true
}

// String renders a temporal in FHIR form at its precision.
func (v Temporal) String() string {
	switch v.Kind {
	case TimeKind:
		return v.timeString()
	case DateKind:
		return v.dateString()
	}
	if v.prec <= Day {
		return v.dateString() + "T"
	}
	s := v.dateString() + "T" + v.timeString()
	if v.hasTZ {
		_, off := v.t.Zone()
		if off == 0 {
			s += "Z"
		} else {
			s += v.t.Format("-07:00")
		}
	}
	return s
}

func (v Temporal) dateString() string {
	switch v.prec {
	case Year:
		return v.t.Format("2006")
	case Month:
		return v.t.Format("2006-01")
	}
	return v.t.Format("2006-01-02")
}

func (v Temporal) timeString() string {
	switch v.prec {
	case Hour:
		return v.t.Format("15")
	case Minute:
		return v.t.Format("15:04")
	case Second:
		return v.t.Format("15:04:05")
	}
	return v.t.Format("15:04:05.000")
}

// Node is an element of a FHIR resource: its JSON value and its FHIR type
// (a type name, or the path of an inline backbone element).
type Node struct {
	Type string
	// JSON is the decoded value: map[string]any, string, json.Number, bool,
	// or nil for a primitive that has only an id or extensions.
	JSON any
	// Ext is the primitive's "_name" object (id and extension), if any.
	Ext map[string]any
}

// primitiveValue converts a FHIR primitive node to its System value.
func (n *Node) primitiveValue() (Value, bool) {
	switch v := n.JSON.(type) {
	case bool:
		return Boolean(v), true
	case json.Number:
		switch n.Type {
		case "integer", "positiveInt", "unsignedInt":
			i, err := v.Int64()
			return Integer(i), err == nil
		}
		d, err := ParseDecimal(string(v))
		return d, err == nil
	case string:
		switch n.Type {
		case "date":
			t, ok := parseDateTime(v, false)
			return t, ok
		case "dateTime", "instant":
			t, ok := parseDateTime(v, false)
			if ok && t.Kind == DateKind && strings.Contains(v, "T") {
				t.Kind = DateTimeKind
			}
			if ok && n.Type != "date" && t.Kind == DateKind {
				// A dateTime written as a date is a DateTime of that precision.
				t.Kind = DateTimeKind
			}
			return t, ok
		case "time":
			t, ok := parseTime(v)
			return t, ok
		}
		return String(v), true
	}
	return nil, false
}

// system converts a value to a System value where one exists: FHIR
// primitives become their System type, Quantity elements become Quantity.
func system(v Value) Value {
	n, ok := v.(*Node)
	if !ok {
		return v
	}
	if pv, ok := n.primitiveValue(); ok {
		return pv
	}
	if m, ok := n.JSON.(map[string]any); ok && (n.Type == "Quantity" || n.Type == "Age" || n.Type == "Duration" || n.Type == "Distance" || n.Type == "Count" || n.Type == "SimpleQuantity" || n.Type == "MoneyQuantity") {
		num, ok := m["value"].(json.Number)
		if !ok {
			return v
		}
		d, err := ParseDecimal(string(num))
		if err != nil {
			return v
		}
		unit, _ := m["code"].(string)
		if unit == "" {
			unit, _ = m["unit"].(string)
		}
		return Quantity{Value: d, Unit: unit}
	}
	return v
}

// typeName is the FHIRPath type of a value, with its namespace.
func typeName(v Value) (ns, name string) {
	switch x := v.(type) {
	case Boolean:
		return "System", "Boolean"
	case String:
		return "System", "String"
	case Integer:
		return "System", "Integer"
	case Decimal:
		return "System", "Decimal"
	case Quantity:
		return "System", "Quantity"
	case Temporal:
		return "System", [...]string{"Date", "DateTime", "Time"}[x.Kind]
	case *Node:
		return "FHIR", x.Type
	}
	return "System", "Any"
}
