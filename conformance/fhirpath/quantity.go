package fhirpath

import (
	"math/big"
	"time"
)

// unitInfo places a UCUM unit in its dimension with a factor to the
// dimension's base unit. Only the units PROMs, vital signs and the FHIRPath
// suite use are listed; others compare only with themselves.
type unitInfo struct {
	dim    string
	factor *big.Rat
}

func rat(s string) *big.Rat { r, _ := new(big.Rat).SetString(s); return r }

var units = map[string]unitInfo{
	"kg": {"mass", rat("1000")}, "g": {"mass", rat("1")}, "mg": {"mass", rat("1/1000")}, "ug": {"mass", rat("1/1000000")}, "[lb_av]": {"mass", rat("45359237/100000")},
	"km": {"length", rat("1000")}, "m": {"length", rat("1")}, "cm": {"length", rat("1/100")}, "mm": {"length", rat("1/1000")}, "[in_i]": {"length", rat("127/5000")}, "[ft_i]": {"length", rat("381/1250")},
	"L": {"volume", rat("1")}, "l": {"volume", rat("1")}, "dL": {"volume", rat("1/10")}, "mL": {"volume", rat("1/1000")},
	"wk": {"time", rat("604800")}, "d": {"time", rat("86400")}, "h": {"time", rat("3600")}, "min": {"time", rat("60")}, "s": {"time", rat("1")}, "ms": {"time", rat("1/1000")},
	"week": {"time", rat("604800")}, "weeks": {"time", rat("604800")}, "day": {"time", rat("86400")}, "days": {"time", rat("86400")},
	"hour": {"time", rat("3600")}, "hours": {"time", rat("3600")}, "minute": {"time", rat("60")}, "minutes": {"time", rat("60")},
	"second": {"time", rat("1")}, "seconds": {"time", rat("1")}, "millisecond": {"time", rat("1/1000")}, "milliseconds": {"time", rat("1/1000")},
	// Calendar years and months are not definite durations: they compare
	// with each other (12 months = 1 year) but not with days or UCUM 'a'.
	"year": {"calendar", rat("12")}, "years": {"calendar", rat("12")}, "month": {"calendar", rat("1")}, "months": {"calendar", rat("1")},
	"a": {"ucum-year", rat("1")}, "mo": {"ucum-month", rat("1")},
	"1": {"one", rat("1")}, "%": {"one", rat("1/100")},
}

// inBase converts q to its dimension's base unit.
func inBase(q Quantity) (dim string, v *big.Rat, ok bool) {
	u, ok := units[q.Unit]
	if !ok {
		return q.Unit, q.Value.r, true // a unit of its own
	}
	return u.dim, new(big.Rat).Mul(q.Value.r, u.factor), true
}

func compareQuantity(x, y Quantity) (int, bool) {
	if x.Unit == y.Unit {
		return x.Value.r.Cmp(y.Value.r), true
	}
	dx, vx, _ := inBase(x)
	dy, vy, _ := inBase(y)
	if dx != dy {
		return 0, false
	}
	return vx.Cmp(vy), true
}

func quantityArithmetic(op string, q Quantity, other Value) (Collection, error) {
	switch o := other.(type) {
	case Integer, Decimal:
		d, _ := toDecimal(o)
		r := new(big.Rat)
		switch op {
		case "*":
			r.Mul(q.Value.r, d.r)
		case "/":
			if d.r.Sign() == 0 {
				return Collection{}, nil
			}
			r.Quo(q.Value.r, d.r)
		default:
			return nil, evalErrorf("cannot %s a quantity and a number", op)
		}
		return Collection{Quantity{Value: Decimal{r: r, scale: max(q.Value.scale, d.scale)}, Unit: q.Unit}}, nil
	case Quantity:
		switch op {
		case "+", "-":
			dq, _, _ := inBase(q)
			do, vo, _ := inBase(o)
			if dq != do {
				return nil, evalErrorf("cannot %s %s and %s", op, q, o)
			}
			vq := q.Value.r
			if q.Unit == o.Unit {
				vo = o.Value.r
			} else {
				// Express the result in q's unit.
				vo = new(big.Rat).Quo(vo, units[q.Unit].factor)
			}
			r := new(big.Rat)
			if op == "+" {
				r.Add(vq, vo)
			} else {
				r.Sub(vq, vo)
			}
			return Collection{Quantity{Value: Decimal{r: r, scale: max(q.Value.scale, o.Value.scale)}, Unit: q.Unit}}, nil
		case "*":
			unit := q.Unit + "." + o.Unit
			if q.Unit == o.Unit {
				unit = q.Unit + "2"
			}
			return Collection{Quantity{Value: Decimal{r: new(big.Rat).Mul(q.Value.r, o.Value.r)}, Unit: unit}}, nil
		case "/":
			if o.Value.r.Sign() == 0 {
				return Collection{}, nil
			}
			dq, vq, _ := inBase(q)
			do, vo, _ := inBase(o)
			if dq == do {
				return Collection{Quantity{Value: Decimal{r: new(big.Rat).Quo(vq, vo)}, Unit: "1"}}, nil
			}
			return Collection{Quantity{Value: Decimal{r: new(big.Rat).Quo(q.Value.r, o.Value.r)}, Unit: q.Unit + "/" + o.Unit}}, nil
		}
	}
	return nil, evalErrorf("cannot apply %s to a quantity and %T", op, other)
}

// addDuration adds sign*q to a date, dateTime or time (FHIRPath 6.6.1):
// calendar units move the calendar, and the result keeps t's precision.
func addDuration(t Temporal, q Quantity, sign int) (Temporal, error) {
	n := new(big.Rat).Mul(q.Value.r, big.NewRat(int64(sign), 1))
	whole, _ := new(big.Float).SetRat(n).Int64()
	switch q.Unit {
	case "a", "mo":
		// UCUM years and months are not calendar durations (FHIRPath 6.6.1).
		return t, evalErrorf("cannot add %s to a date: use a calendar duration (years, months)", q)
	case "year", "years":
		t.t = t.t.AddDate(int(whole), 0, 0)
	case "month", "months":
		t.t = t.t.AddDate(0, int(whole), 0)
	case "week", "weeks", "wk":
		t.t = t.t.AddDate(0, 0, int(whole)*7)
	case "day", "days", "d":
		t.t = t.t.AddDate(0, 0, int(whole))
	default:
		u, ok := units[q.Unit]
		if !ok || u.dim != "time" {
			return t, evalErrorf("cannot add %s to a date or time", q)
		}
		secs := new(big.Rat).Mul(n, u.factor)
		ns, _ := new(big.Float).SetRat(new(big.Rat).Mul(secs, big.NewRat(1e9, 1))).Int64()
		if t.Kind == DateKind {
			// A date has no time: only whole days count.
			t.t = t.t.AddDate(0, 0, int(ns/int64(24*time.Hour)))
			return t, nil
		}
		t.t = t.t.Add(time.Duration(ns))
	}
	return t, nil
}
