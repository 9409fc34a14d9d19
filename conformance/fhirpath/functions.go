package fhirpath

import (
	"encoding/base64"
	"encoding/hex"
	"html"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type function func(ev *evaluator, n *functionNode, target, input Collection, fr *frame) (Collection, error)

// functions lists the FHIRPath functions by name, with their arity
// (min, max; -1 unbounded).
var functions map[string]struct {
	min, max int
	fn       function
}

func init() {
	functions = map[string]struct {
		min, max int
		fn       function
	}{
		// 5.1 Existence
		"empty": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return bools(len(t) == 0), nil
		}},
		"exists":     {0, 1, fnExists},
		"all":        {1, 1, fnAll},
		"allTrue":    {0, 0, boolAggregate(func(b []bool) bool { return all(b, true) })},
		"anyTrue":    {0, 0, boolAggregate(func(b []bool) bool { return anyIs(b, true) })},
		"allFalse":   {0, 0, boolAggregate(func(b []bool) bool { return all(b, false) })},
		"anyFalse":   {0, 0, boolAggregate(func(b []bool) bool { return anyIs(b, false) })},
		"subsetOf":   {1, 1, fnSubset(false)},
		"supersetOf": {1, 1, fnSubset(true)},
		"count": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return Collection{Integer(len(t))}, nil
		}},
		"distinct": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return union(t, nil), nil
		}},
		"isDistinct": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return bools(len(union(t, nil)) == len(t)), nil
		}},
		// 5.2 Filtering and projection
		"where":     {1, 1, fnWhere},
		"select":    {1, 1, fnSelect},
		"repeat":    {1, 1, fnRepeat},
		"ofType":    {1, 1, fnOfType},
		"aggregate": {1, 2, fnAggregate},
		// 5.3 Subsetting
		"single": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			if len(t) > 1 {
				return nil, evalErrorf("single() on %d items", len(t))
			}
			return t, nil
		}},
		"first": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return t[:min(1, len(t))], nil
		}},
		"last": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			if len(t) == 0 {
				return t, nil
			}
			return t[len(t)-1:], nil
		}},
		"tail": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			if len(t) == 0 {
				return t, nil
			}
			return t[1:], nil
		}},
		"skip":      {1, 1, fnSkipTake(true)},
		"take":      {1, 1, fnSkipTake(false)},
		"intersect": {1, 1, fnIntersect(true)},
		"exclude":   {1, 1, fnIntersect(false)},
		// 5.4 Combining
		"union": {1, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			o, err := ev.eval(n.args[0], in, fr)
			return union(t, o), err
		}},
		"combine": {1, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			o, err := ev.eval(n.args[0], in, fr)
			return append(append(Collection{}, t...), o...), err
		}},
		// 5.5 Conversion
		"iif":                {2, 3, fnIif},
		"toBoolean":          {0, 0, convert(toBoolean, false)},
		"convertsToBoolean":  {0, 0, convert(toBoolean, true)},
		"toInteger":          {0, 0, convert(toInteger, false)},
		"convertsToInteger":  {0, 0, convert(toInteger, true)},
		"toDecimal":          {0, 0, convert(toDecimalValue, false)},
		"convertsToDecimal":  {0, 0, convert(toDecimalValue, true)},
		"toString":           {0, 0, convert(func(v Value) (Value, bool) { s, ok := toStringValue(v); return String(s), ok }, false)},
		"convertsToString":   {0, 0, convert(func(v Value) (Value, bool) { s, ok := toStringValue(v); return String(s), ok }, true)},
		"toDate":             {0, 0, convert(toTemporal(DateKind), false)},
		"convertsToDate":     {0, 0, convert(toTemporal(DateKind), true)},
		"toDateTime":         {0, 0, convert(toTemporal(DateTimeKind), false)},
		"convertsToDateTime": {0, 0, convert(toTemporal(DateTimeKind), true)},
		"toTime":             {0, 0, convert(toTemporal(TimeKind), false)},
		"convertsToTime":     {0, 0, convert(toTemporal(TimeKind), true)},
		"toQuantity":         {0, 1, fnToQuantity(false)},
		"convertsToQuantity": {0, 1, fnToQuantity(true)},
		// 5.6 String manipulation
		"indexOf": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			sub, _ := a[0].(String)
			i := strings.Index(s, string(sub))
			if i < 0 {
				return Integer(-1), nil
			}
			return Integer(utf8.RuneCountInString(s[:i])), nil
		})},
		"substring": {1, 2, stringFn(func(s string, a []Value) (Value, error) {
			r := []rune(s)
			start, _ := a[0].(Integer)
			if start < 0 || int(start) >= len(r) {
				return nil, nil
			}
			end := len(r)
			if len(a) > 1 && a[1] != nil {
				l, _ := a[1].(Integer)
				end = min(len(r), int(start)+max(0, int(l)))
			}
			return String(r[start:end]), nil
		})},
		"startsWith": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			return Boolean(strings.HasPrefix(s, string(p))), nil
		})},
		"endsWith": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			return Boolean(strings.HasSuffix(s, string(p))), nil
		})},
		"contains": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			return Boolean(strings.Contains(s, string(p))), nil
		})},
		"upper": {0, 0, stringFn(func(s string, a []Value) (Value, error) { return String(strings.ToUpper(s)), nil })},
		"lower": {0, 0, stringFn(func(s string, a []Value) (Value, error) { return String(strings.ToLower(s)), nil })},
		"replace": {2, 2, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			r, _ := a[1].(String)
			if p == "" {
				// Insert the replacement around every character.
				var b strings.Builder
				b.WriteString(string(r))
				for _, c := range s {
					b.WriteRune(c)
					b.WriteString(string(r))
				}
				return String(b.String()), nil
			}
			return String(strings.ReplaceAll(s, string(p), string(r))), nil
		})},
		"matches": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			re, err := regexp.Compile("(?s)" + string(p))
			if err != nil {
				return nil, evalErrorf("bad regular expression %q: %v", p, err)
			}
			return Boolean(re.MatchString(s)), nil
		})},
		"replaceMatches": {2, 2, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			r, _ := a[1].(String)
			if p == "" {
				return String(s), nil
			}
			re, err := regexp.Compile("(?s)" + string(p))
			if err != nil {
				return nil, evalErrorf("bad regular expression %q: %v", p, err)
			}
			return String(re.ReplaceAllString(s, string(r))), nil
		})},
		"length": {0, 0, stringFn(func(s string, a []Value) (Value, error) { return Integer(utf8.RuneCountInString(s)), nil })},
		"toChars": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			s, ok, err := singletonString(t)
			if err != nil || !ok {
				return Collection{}, err
			}
			var out Collection
			for _, c := range s {
				out = append(out, String(string(c)))
			}
			return out, nil
		}},
		"trim": {0, 0, stringFn(func(s string, a []Value) (Value, error) { return String(strings.TrimSpace(s)), nil })},
		"split": {1, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			s, ok, err := singletonString(t)
			if err != nil || !ok {
				return Collection{}, err
			}
			sep, err := ev.argString(n.args[0], in, fr)
			if err != nil {
				return nil, err
			}
			var out Collection
			for _, p := range strings.Split(s, sep) {
				out = append(out, String(p))
			}
			return out, nil
		}},
		"join": {0, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			sep := ""
			if len(n.args) > 0 {
				var err error
				if sep, err = ev.argString(n.args[0], in, fr); err != nil {
					return nil, err
				}
			}
			var parts []string
			for _, v := range t {
				s, _ := toStringValue(system(v))
				parts = append(parts, s)
			}
			return Collection{String(strings.Join(parts, sep))}, nil
		}},
		"encode":   {1, 1, codec(true)},
		"decode":   {1, 1, codec(false)},
		"escape":   {1, 1, escape(true)},
		"unescape": {1, 1, escape(false)},
		// 5.7 Math
		"abs":      {0, 0, mathFn(func(d Decimal) (Value, bool) { return Decimal{r: new(big.Rat).Abs(d.r), scale: d.scale}, true }, true)},
		"ceiling":  {0, 0, mathFn(func(d Decimal) (Value, bool) { return Integer(math.Ceil(d.float())), true }, false)},
		"floor":    {0, 0, mathFn(func(d Decimal) (Value, bool) { return Integer(math.Floor(d.float())), true }, false)},
		"truncate": {0, 0, mathFn(func(d Decimal) (Value, bool) { return Integer(math.Trunc(d.float())), true }, false)},
		"exp":      {0, 0, mathFn(floatFn(math.Exp), false)},
		"ln":       {0, 0, mathFn(floatFn(math.Log), false)},
		"sqrt":     {0, 0, mathFn(floatFn(math.Sqrt), false)},
		"log":      {1, 1, fnLog},
		"power":    {1, 1, fnPower},
		"round":    {0, 1, fnRound},
		// 5.8 Tree navigation
		"children": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return ev.allChildren(t), nil
		}},
		"descendants": {0, 0, fnDescendants},
		// 5.9 Utility
		"sort":         {0, -1, fnSort},
		"lowBoundary":  {0, 1, fnBoundary(false)},
		"highBoundary": {0, 1, fnBoundary(true)},
		"comparable": {1, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			o, err := ev.eval(n.args[0], in, fr)
			if err != nil || len(t) != 1 || len(o) != 1 {
				return Collection{}, err
			}
			a, ok1 := system(t[0]).(Quantity)
			b, ok2 := system(o[0]).(Quantity)
			if !ok1 || !ok2 {
				return nil, evalErrorf("comparable() needs quantities")
			}
			_, known1 := units[a.Unit]
			_, known2 := units[b.Unit]
			return bools(a.Unit == b.Unit || known1 && known2 && units[a.Unit].dim == units[b.Unit].dim), nil
		}},
		"matchesFull": {1, 1, stringFn(func(s string, a []Value) (Value, error) {
			p, _ := a[0].(String)
			re, err := regexp.Compile("(?s)^(?:" + string(p) + ")$")
			if err != nil {
				return nil, evalErrorf("bad regular expression %q: %v", p, err)
			}
			return Boolean(re.MatchString(s)), nil
		})},
		"trace": {1, 2, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) { return t, nil }},
		"now": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return Collection{Temporal{Kind: DateTimeKind, t: ev.now, prec: Millisecond, hasTZ: true}}, nil
		}},
		"today": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return Collection{Temporal{Kind: DateKind, t: ev.now, prec: Day}}, nil
		}},
		"timeOfDay": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return Collection{Temporal{Kind: TimeKind, t: ev.now, prec: Millisecond}}, nil
		}},
		// 6.3 Types and 6.5 Boolean logic
		"is": {1, 1, fnTypeTest(true)},
		"as": {1, 1, fnTypeTest(false)},
		"not": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			b, err := boolOperand(t)
			if err != nil || b == isEmpty {
				return Collection{}, err
			}
			return bools(b == isFalse), nil
		}},
		// FHIR additions (FHIR R4 2.1.9.1)
		"extension": {1, 1, fnExtension},
		"hasValue": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			if len(t) != 1 {
				return bools(false), nil
			}
			node, ok := t[0].(*Node)
			return bools(ok && ev.model.IsPrimitive(node.Type) && node.JSON != nil), nil
		}},
		"getValue": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			if len(t) != 1 {
				return Collection{}, nil
			}
			if node, ok := t[0].(*Node); ok && node.JSON != nil {
				if v, ok := node.primitiveValue(); ok {
					return Collection{v}, nil
				}
			}
			return Collection{}, nil
		}},
		"resolve": {0, 0, fnResolve},
		"htmlChecks": {0, 0, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return bools(true), nil
		}},
		"conformsTo": {1, 1, fnConformsTo},
		"memberOf": {1, 1, func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
			return nil, evalErrorf("memberOf() needs a terminology service")
		}},
		"precision": {0, 0, fnPrecision},
		"type":      {0, 0, fnType},
	}
}

func (ev *evaluator) call(n *functionNode, target, input Collection, fr *frame) (Collection, error) {
	f, ok := functions[n.name]
	if !ok {
		return nil, evalErrorf("unknown function %s()", n.name)
	}
	if len(n.args) < f.min || (f.max >= 0 && len(n.args) > f.max) {
		return nil, evalErrorf("%s() takes %d to %d arguments, not %d", n.name, f.min, f.max, len(n.args))
	}
	return f.fn(ev, n, target, input, fr)
}

func bools(b bool) Collection { return Collection{Boolean(b)} }

func all(b []bool, want bool) bool {
	for _, x := range b {
		if x != want {
			return false
		}
	}
	return true
}

func anyIs(b []bool, want bool) bool {
	for _, x := range b {
		if x == want {
			return true
		}
	}
	return false
}

func boolAggregate(f func([]bool) bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		var bs []bool
		for _, v := range t {
			b, ok := system(v).(Boolean)
			if !ok {
				return nil, evalErrorf("%s() needs booleans", n.name)
			}
			bs = append(bs, bool(b))
		}
		return bools(f(bs)), nil
	}
}

// each evaluates a lambda argument once per item, with $this and $index.
func (ev *evaluator) each(arg node, t Collection, fr *frame, fn func(i int, item Value, r Collection) (bool, error)) error {
	for i, item := range t {
		r, err := ev.eval(arg, Collection{item}, &frame{this: item, index: i, total: fr.total, hasTotal: fr.hasTotal})
		if err != nil {
			return err
		}
		stop, err := fn(i, item, r)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func truthy(r Collection) (bool, error) {
	b, err := boolOperand(r)
	return b == isTrue, err
}

func fnExists(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	if len(n.args) == 0 {
		return bools(len(t) > 0), nil
	}
	found := false
	err := ev.each(n.args[0], t, fr, func(_ int, _ Value, r Collection) (bool, error) {
		ok, err := truthy(r)
		found = ok
		return ok, err
	})
	return bools(found), err
}

func fnAll(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	res := true
	err := ev.each(n.args[0], t, fr, func(_ int, _ Value, r Collection) (bool, error) {
		ok, err := truthy(r)
		if !ok {
			res = false
		}
		return !ok, err
	})
	return bools(res), err
}

func fnWhere(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	out := Collection{}
	err := ev.each(n.args[0], t, fr, func(_ int, item Value, r Collection) (bool, error) {
		ok, err := truthy(r)
		if ok {
			out = append(out, item)
		}
		return false, err
	})
	return out, err
}

func fnSelect(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	out := Collection{}
	err := ev.each(n.args[0], t, fr, func(_ int, _ Value, r Collection) (bool, error) {
		out = append(out, r...)
		return false, nil
	})
	return out, err
}

func fnRepeat(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	out := Collection{}
	queue := t
	for len(queue) > 0 {
		var next Collection
		err := ev.each(n.args[0], queue, fr, func(_ int, _ Value, r Collection) (bool, error) {
			for _, v := range r {
				if !containsValue(out, v) {
					out = append(out, v)
					next = append(next, v)
				}
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) > maxItems {
			return nil, evalErrorf("repeat() produced more than %d items", maxItems)
		}
		queue = next
	}
	return out, nil
}

// maxItems and maxString bound what one evaluation may build, so that an
// expression like repeat($this + 'a') fails instead of running forever.
const (
	maxItems  = 100_000
	maxString = 1 << 20
)

func fnAggregate(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	var total Value
	if len(n.args) > 1 {
		init, err := ev.eval(n.args[1], in, fr)
		if err != nil {
			return nil, err
		}
		if len(init) > 0 {
			total = init[0]
		}
	}
	for i, item := range t {
		r, err := ev.eval(n.args[0], Collection{item}, &frame{this: item, index: i, total: total, hasTotal: true})
		if err != nil {
			return nil, err
		}
		total = nil
		if len(r) > 0 {
			total = r[0]
		}
	}
	if total == nil {
		return Collection{}, nil
	}
	return Collection{total}, nil
}

// typeArg reads a type specifier given as a function argument.
func typeArg(n node) (string, error) {
	switch x := n.(type) {
	case *memberNode:
		if x.target == nil {
			return x.name, nil
		}
		prefix, err := typeArg(x.target)
		if err != nil {
			return "", err
		}
		return prefix + "." + x.name, nil
	case *literalNode:
		if len(x.val) == 1 {
			if s, ok := x.val[0].(String); ok {
				return string(s), nil
			}
		}
	}
	return "", evalErrorf("expected a type name")
}

func fnOfType(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	typ, err := typeArg(n.args[0])
	if err != nil {
		return nil, err
	}
	out := Collection{}
	for _, v := range t {
		ok, err := ev.isTypeChecked(v, typ, true)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func fnTypeTest(is bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		typ, err := typeArg(n.args[0])
		if err != nil {
			return nil, err
		}
		if len(t) == 0 {
			return Collection{}, nil
		}
		if len(t) > 1 {
			return nil, evalErrorf("%s() needs a single item", n.name)
		}
		ok, err := ev.isTypeChecked(t[0], typ, !is)
		if err != nil {
			return nil, err
		}
		if is {
			return bools(ok), nil
		}
		if ok {
			return t, nil
		}
		return Collection{}, nil
	}
}

func fnSubset(super bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		o, err := ev.eval(n.args[0], in, fr)
		if err != nil {
			return nil, err
		}
		a, b := t, o
		if super {
			a, b = o, t
		}
		for _, v := range a {
			if !containsValue(b, v) {
				return bools(false), nil
			}
		}
		return bools(true), nil
	}
}

func fnSkipTake(skip bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		arg, err := ev.eval(n.args[0], in, fr)
		if err != nil {
			return nil, err
		}
		k, ok, err := integerArg(arg)
		if err != nil || !ok {
			return Collection{}, err
		}
		k = max(0, min(k, int64(len(t))))
		if skip {
			return t[k:], nil
		}
		return t[:k], nil
	}
}

func fnIntersect(keep bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		o, err := ev.eval(n.args[0], in, fr)
		if err != nil {
			return nil, err
		}
		out := Collection{}
		for _, v := range t {
			if containsValue(o, v) == keep && (!keep || !containsValue(out, v)) {
				out = append(out, v)
			}
		}
		return out, nil
	}
}

func fnIif(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	ctx := in
	if n.target != nil {
		if len(t) > 1 {
			return nil, evalErrorf("iif() on a collection of %d items", len(t))
		}
		ctx = t
		if len(t) == 1 {
			fr = &frame{this: t[0], total: fr.total, hasTotal: fr.hasTotal}
		}
	}
	c, err := ev.eval(n.args[0], ctx, fr)
	if err != nil {
		return nil, err
	}
	if len(c) > 1 {
		return nil, evalErrorf("iif() criterion gives %d items", len(c))
	}
	if len(c) == 1 {
		if _, isBool := system(c[0]).(Boolean); !isBool {
			return nil, evalErrorf("iif() criterion is not a boolean")
		}
	}
	ok, err := truthy(c)
	if err != nil {
		return nil, err
	}
	if ok {
		return ev.eval(n.args[1], ctx, fr)
	}
	if len(n.args) > 2 {
		return ev.eval(n.args[2], ctx, fr)
	}
	return Collection{}, nil
}

// integerArg reads a single integer argument.
func integerArg(c Collection) (int64, bool, error) {
	if len(c) == 0 {
		return 0, false, nil
	}
	if len(c) > 1 {
		return 0, false, evalErrorf("expected a single integer")
	}
	i, ok := system(c[0]).(Integer)
	if !ok {
		return 0, false, evalErrorf("expected an integer")
	}
	return int64(i), true, nil
}

func singletonString(t Collection) (string, bool, error) {
	if len(t) == 0 {
		return "", false, nil
	}
	if len(t) > 1 {
		return "", false, evalErrorf("expected a single string, got %d items", len(t))
	}
	s, ok := system(t[0]).(String)
	if !ok {
		return "", false, evalErrorf("expected a string")
	}
	return string(s), true, nil
}

func (ev *evaluator) argString(arg node, in Collection, fr *frame) (string, error) {
	c, err := ev.eval(arg, in, fr)
	if err != nil {
		return "", err
	}
	s, _, err := singletonString(c)
	return s, err
}

// stringFn runs f on a single string input with evaluated arguments; an
// empty input or an empty argument gives empty.
func stringFn(f func(s string, args []Value) (Value, error)) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		s, ok, err := singletonString(t)
		if err != nil || !ok {
			return Collection{}, err
		}
		args := make([]Value, len(n.args))
		for i, a := range n.args {
			c, err := ev.eval(a, in, fr)
			if err != nil {
				return nil, err
			}
			if len(c) == 0 {
				if n.name == "substring" && i == 1 {
					continue
				}
				return Collection{}, nil
			}
			if len(c) > 1 {
				return nil, evalErrorf("%s() argument gives %d items", n.name, len(c))
			}
			args[i] = system(c[0])
		}
		v, err := f(s, args)
		if err != nil || v == nil {
			return Collection{}, err
		}
		if str, ok := v.(String); ok && len(str) > maxString {
			return nil, evalErrorf("%s() result longer than %d bytes", n.name, maxString)
		}
		return Collection{v}, nil
	}
}

func codec(encode bool) function {
	return stringFn(func(s string, a []Value) (Value, error) {
		format, _ := a[0].(String)
		switch format {
		case "hex":
			if encode {
				return String(hex.EncodeToString([]byte(s))), nil
			}
			b, err := hex.DecodeString(s)
			if err != nil {
				return nil, nil
			}
			return String(b), nil
		case "base64", "urlbase64":
			enc := base64.StdEncoding
			if format == "urlbase64" {
				enc = base64.URLEncoding
			}
			if encode {
				return String(enc.EncodeToString([]byte(s))), nil
			}
			b, err := enc.DecodeString(s)
			if err != nil {
				return nil, nil
			}
			return String(b), nil
		}
		return nil, evalErrorf("unknown encoding %q", format)
	})
}

func escape(esc bool) function {
	return stringFn(func(s string, a []Value) (Value, error) {
		format, _ := a[0].(String)
		switch format {
		case "html":
			if esc {
				return String(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)), nil
			}
			return String(html.UnescapeString(s)), nil
		case "json":
			if esc {
				q := strconv.Quote(s)
				return String(q[1 : len(q)-1]), nil
			}
			return String(strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\/`, "/", `\n`, "\n", `\t`, "\t", `\r`, "\r", `\b`, "\b", `\f`, "\f").Replace(s)), nil
		case "url":
			if esc {
				return String(url.QueryEscape(s)), nil
			}
			u, err := url.QueryUnescape(s)
			if err != nil {
				return nil, nil
			}
			return String(u), nil
		}
		return nil, evalErrorf("unknown escape %q", format)
	})
}

func floatFn(f func(float64) float64) func(Decimal) (Value, bool) {
	return func(d Decimal) (Value, bool) {
		r := f(d.float())
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, false
		}
		return decimalFromFloat(r), true
	}
}

func decimalFromFloat(f float64) Decimal {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	d, _ := ParseDecimal(s)
	if d.scale > 8 {
		d = roundTo(d, 8)
	}
	return d
}

// mathFn applies f to a single number; keepInt keeps integers integers.
func mathFn(f func(Decimal) (Value, bool), keepInt bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		if len(t) == 0 {
			return Collection{}, nil
		}
		if len(t) > 1 {
			return nil, evalErrorf("%s() needs a single number", n.name)
		}
		v := system(t[0])
		if q, ok := v.(Quantity); ok && n.name == "abs" {
			return Collection{Quantity{Value: Decimal{r: new(big.Rat).Abs(q.Value.r), scale: q.Value.scale}, Unit: q.Unit}}, nil
		}
		d, ok := toDecimal(v)
		if !ok {
			return nil, evalErrorf("%s() needs a number", n.name)
		}
		r, ok := f(d)
		if !ok {
			return Collection{}, nil
		}
		if i, isInt := v.(Integer); isInt && keepInt {
			if i < 0 {
				i = -i
			}
			return Collection{i}, nil
		}
		return Collection{r}, nil
	}
}

func fnLog(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	base, err := ev.eval(n.args[0], in, fr)
	if err != nil || len(t) == 0 || len(base) == 0 {
		return Collection{}, err
	}
	x, ok1 := toDecimal(system(t[0]))
	b, ok2 := toDecimal(system(base[0]))
	if !ok1 || !ok2 {
		return nil, evalErrorf("log() needs numbers")
	}
	r := math.Log(x.float()) / math.Log(b.float())
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return Collection{}, nil
	}
	return Collection{decimalFromFloat(r)}, nil
}

func fnPower(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	exp, err := ev.eval(n.args[0], in, fr)
	if err != nil || len(t) == 0 || len(exp) == 0 {
		return Collection{}, err
	}
	a, b := system(t[0]), system(exp[0])
	if ia, ok := a.(Integer); ok {
		if ib, ok := b.(Integer); ok && ib >= 0 {
			return Collection{Integer(math.Pow(float64(ia), float64(ib)))}, nil
		}
	}
	x, ok1 := toDecimal(a)
	y, ok2 := toDecimal(b)
	if !ok1 || !ok2 {
		return nil, evalErrorf("power() needs numbers")
	}
	r := math.Pow(x.float(), y.float())
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return Collection{}, nil
	}
	return Collection{decimalFromFloat(r)}, nil
}

func fnRound(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	if len(t) == 0 {
		return Collection{}, nil
	}
	d, ok := toDecimal(system(t[0]))
	if !ok {
		return nil, evalErrorf("round() needs a number")
	}
	places := int64(0)
	if len(n.args) > 0 {
		p, err := ev.eval(n.args[0], in, fr)
		if err != nil {
			return nil, err
		}
		var ok bool
		if places, ok, err = integerArg(p); err != nil || !ok {
			return Collection{}, err
		}
		if places < 0 {
			return nil, evalErrorf("round() precision must not be negative")
		}
	}
	// Round half away from zero.
	f := new(big.Rat).Abs(d.r)
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(places), nil))
	f.Mul(f, scale)
	f.Add(f, big.NewRat(1, 2))
	q := new(big.Int).Quo(f.Num(), f.Denom())
	r := new(big.Rat).Quo(new(big.Rat).SetInt(q), scale)
	if d.r.Sign() < 0 {
		r.Neg(r)
	}
	return Collection{Decimal{r: r, scale: int(places)}}, nil
}

func (ev *evaluator) allChildren(t Collection) Collection {
	var out Collection
	for _, v := range t {
		n, ok := v.(*Node)
		if !ok {
			continue
		}
		m, ok := n.JSON.(map[string]any)
		if !ok {
			continue
		}
		for k := range m {
			if k == "resourceType" || strings.HasPrefix(k, "_") {
				continue
			}
			name := k
			if el, found := ev.choiceStem(n.Type, k); found {
				name = el
			}
			c, _ := ev.children(n, name)
			out = append(out, c...)
		}
	}
	return union(out, nil)
}

// choiceStem maps a JSON key such as valueQuantity to its choice element.
func (ev *evaluator) choiceStem(typ, key string) (string, bool) {
	for i := 1; i < len(key); i++ {
		if key[i] >= 'A' && key[i] <= 'Z' {
			if el, ok := ev.model.Child(typ, key[:i]); ok && el.Choice {
				return key[:i], true
			}
		}
	}
	return "", false
}

func fnDescendants(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	var out Collection
	queue := t
	for len(queue) > 0 {
		next := ev.allChildren(queue)
		out = append(out, next...)
		queue = next
		if len(out) > maxItems {
			return nil, evalErrorf("descendants() produced more than %d items", maxItems)
		}
	}
	return out, nil
}

func fnExtension(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	u, err := ev.argString(n.args[0], in, fr)
	if err != nil {
		return nil, err
	}
	out := Collection{}
	for _, v := range t {
		exts, _ := ev.children(v, "extension")
		for _, e := range exts {
			urls, _ := ev.children(e, "url")
			for _, x := range urls {
				if s, ok := system(x).(String); ok && string(s) == u {
					out = append(out, e)
				}
			}
		}
	}
	return out, nil
}

func fnResolve(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	out := Collection{}
	for _, v := range t {
		var ref string
		if s, ok := system(v).(String); ok {
			ref = string(s)
		} else {
			refs, _ := ev.children(v, "reference")
			for _, r := range refs {
				if s, ok := system(r).(String); ok {
					ref = string(s)
				}
			}
		}
		if ref == "" {
			continue
		}
		if res := ev.resolveReference(ref); res != nil {
			out = append(out, res)
		}
	}
	return out, nil
}

// resolveReference finds a contained resource, a Bundle entry of the root
// resource, or asks the environment.
func (ev *evaluator) resolveReference(ref string) *Node {
	root := ev.env.Resource
	if root != nil {
		if m, ok := root.JSON.(map[string]any); ok {
			if strings.HasPrefix(ref, "#") {
				contained, _ := ev.children(root, "contained")
				for _, c := range contained {
					if cm, ok := c.(*Node).JSON.(map[string]any); ok && cm["id"] == ref[1:] {
						return c.(*Node)
					}
				}
			}
			if m["resourceType"] == "Bundle" {
				entries, _ := ev.children(root, "entry")
				for _, e := range entries {
					em, _ := e.(*Node).JSON.(map[string]any)
					full, _ := em["fullUrl"].(string)
					res, _ := em["resource"].(map[string]any)
					if res == nil {
						continue
					}
					rt, _ := res["resourceType"].(string)
					id, _ := res["id"].(string)
					if full == ref || strings.HasSuffix(full, "/"+ref) || rt+"/"+id == ref {
						return &Node{Type: rt, JSON: res}
					}
				}
			}
		}
	}
	if ev.env.Resolve != nil {
		return ev.env.Resolve(ref)
	}
	return nil
}

func fnPrecision(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	if len(t) != 1 {
		return Collection{}, nil
	}
	switch v := system(t[0]).(type) {
	case Decimal:
		return Collection{Integer(v.scale)}, nil
	case Temporal:
		digits := map[Precision]int{Year: 4, Month: 6, Day: 8, Hour: 10, Minute: 12, Second: 14, Millisecond: 17}
		if v.Kind == TimeKind {
			digits = map[Precision]int{Hour: 2, Minute: 4, Second: 6, Millisecond: 9}
		}
		return Collection{Integer(digits[v.prec])}, nil
	}
	return Collection{}, nil
}

func fnType(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	out := Collection{}
	for _, v := range t {
		ns, name := typeName(v)
		out = append(out, &Node{Type: "TypeInfo", JSON: map[string]any{"namespace": ns, "name": name}})
	}
	return out, nil
}

// convert builds a to*/convertsTo* function from a conversion.
func convert(f func(Value) (Value, bool), test bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		if len(t) == 0 {
			return Collection{}, nil
		}
		if len(t) > 1 {
			return nil, evalErrorf("%s() needs a single item", n.name)
		}
		v, ok := f(system(t[0]))
		if test {
			return bools(ok), nil
		}
		if !ok {
			return Collection{}, nil
		}
		return Collection{v}, nil
	}
}

func toBoolean(v Value) (Value, bool) {
	switch x := v.(type) {
	case Boolean:
		return x, true
	case Integer:
		if x == 0 || x == 1 {
			return Boolean(x == 1), true
		}
	case Decimal:
		if x.r.Cmp(big.NewRat(1, 1)) == 0 {
			return Boolean(true), true
		}
		if x.r.Sign() == 0 {
			return Boolean(false), true
		}
	case String:
		switch strings.ToLower(string(x)) {
		case "true", "t", "yes", "y", "1", "1.0":
			return Boolean(true), true
		case "false", "f", "no", "n", "0", "0.0":
			return Boolean(false), true
		}
	}
	return nil, false
}

func toInteger(v Value) (Value, bool) {
	switch x := v.(type) {
	case Integer:
		return x, true
	case Boolean:
		if x {
			return Integer(1), true
		}
		return Integer(0), true
	case String:
		s := string(x)
		if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return nil, false
		}
		i, err := strconv.ParseInt(string(x), 10, 64)
		return Integer(i), err == nil
	}
	return nil, false
}

func toDecimalValue(v Value) (Value, bool) {
	switch x := v.(type) {
	case Integer:
		return decimalFromInt(int64(x)), true
	case Decimal:
		return x, true
	case Boolean:
		if x {
			return decimalFromInt(1), true
		}
		return decimalFromInt(0), true
	case String:
		s := strings.TrimPrefix(strings.TrimPrefix(string(x), "+"), "-")
		if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || strings.HasSuffix(s, ".") || strings.HasPrefix(s, ".") {
			return nil, false
		}
		d, err := ParseDecimal(string(x))
		return d, err == nil
	}
	return nil, false
}

// toStringValue renders a value as FHIRPath's toString() does.
func toStringValue(v Value) (string, bool) {
	switch x := v.(type) {
	case String:
		return string(x), true
	case Boolean:
		return strconv.FormatBool(bool(x)), true
	case Integer:
		return strconv.FormatInt(int64(x), 10), true
	case Decimal:
		return x.String(), true
	case Temporal:
		return x.String(), true
	case Quantity:
		return x.String(), true
	}
	return "", false
}

func toTemporal(kind TemporalKind) func(Value) (Value, bool) {
	return func(v Value) (Value, bool) {
		switch x := v.(type) {
		case Temporal:
			switch {
			case x.Kind == kind:
				return x, true
			case kind == DateKind && x.Kind == DateTimeKind:
				x.Kind, x.prec, x.hasTZ = DateKind, min(x.prec, Day), false
				return x, true
			case kind == DateTimeKind && x.Kind == DateKind:
				x.Kind = DateTimeKind
				return x, true
			}
		case String:
			if kind == TimeKind {
				t, ok := parseTime(strings.TrimPrefix(string(x), "T"))
				return t, ok && !t.hasTZ
			}
			t, ok := parseDateTime(string(x), false)
			if !ok {
				return nil, false
			}
			if kind == DateTimeKind {
				t.Kind = DateTimeKind
				return t, true
			}
			if t.Kind != DateKind {
				return nil, false
			}
			return t, true
		}
		return nil, false
	}
}

var quantityString = regexp.MustCompile(`^([+-]?\d+(?:\.\d+)?)\s*(?:'([^']+)'|([a-zA-Z]+))?$`)

func fnToQuantity(test bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		if len(t) == 0 {
			return Collection{}, nil
		}
		if len(t) > 1 {
			return nil, evalErrorf("%s() needs a single item", n.name)
		}
		var q Quantity
		ok := false
		switch x := system(t[0]).(type) {
		case Quantity:
			q, ok = x, true
		case Integer, Decimal:
			d, _ := toDecimal(x)
			q, ok = Quantity{Value: d, Unit: "1"}, true
		case Boolean:
			q, ok = Quantity{Value: decimalFromInt(map[bool]int64{true: 1, false: 0}[bool(x)]), Unit: "1"}, true
		case String:
			if m := quantityString.FindStringSubmatch(string(x)); m != nil {
				d, err := ParseDecimal(m[1])
				unit := m[2]
				if m[3] != "" {
					if _, cal := calendarUnits[m[3]]; !cal {
						break
					}
					unit = m[3]
				}
				if unit == "" {
					unit = "1"
				}
				q, ok = Quantity{Value: d, Unit: unit}, err == nil
			}
		}
		if ok && len(n.args) > 0 {
			unit, err := ev.argString(n.args[0], in, fr)
			if err != nil {
				return nil, err
			}
			if unit != q.Unit {
				_, vq, _ := inBase(q)
				u, known := units[unit]
				dq, _, _ := inBase(q)
				if !known || u.dim != dq {
					ok = false
				} else {
					q = Quantity{Value: Decimal{r: new(big.Rat).Quo(vq, u.factor), scale: q.Value.scale}, Unit: unit}
				}
			}
		}
		if test {
			return bools(ok), nil
		}
		if !ok {
			return Collection{}, nil
		}
		return Collection{q}, nil
	}
}

// fnConformsTo knows the base profiles only: a resource conforms to the
// StructureDefinition of its type and of the types it derives from. Profile
// validation (issue 3's validator) will answer for other profiles.
func fnConformsTo(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	u, err := ev.argString(n.args[0], in, fr)
	if err != nil || len(t) != 1 {
		return Collection{}, err
	}
	node, ok := t[0].(*Node)
	if !ok {
		return bools(false), nil
	}
	name, isCore := strings.CutPrefix(u, "http://hl7.org/fhir/StructureDefinition/")
	if !isCore {
		return nil, evalErrorf("conformsTo(%q): only the base FHIR profiles are known here", u)
	}
	return bools(ev.model.IsA(node.Type, name)), nil
}

// fnSort orders a collection by its items, or by key expressions; a key
// written with a leading minus sorts descending.
func fnSort(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
	type keyed struct {
		v    Value
		keys []Collection
	}
	items := make([]keyed, len(t))
	desc := make([]bool, len(n.args))
	for i, v := range t {
		items[i].v = v
		for k, arg := range n.args {
			if u, ok := arg.(*unaryNode); ok && u.op == "-" {
				desc[k] = true
				arg = u.x
			}
			c, err := ev.eval(arg, Collection{v}, &frame{this: v, index: i})
			if err != nil {
				return nil, err
			}
			items[i].keys = append(items[i].keys, c)
		}
	}
	var sortErr error
	less := func(a, b keyed) bool {
		if len(n.args) == 0 {
			c, _, err := compare(system(a.v), system(b.v))
			if err != nil {
				sortErr = err
			}
			return c < 0
		}
		for k := range n.args {
			ka, kb := a.keys[k], b.keys[k]
			if len(ka) == 0 || len(kb) == 0 {
				if len(ka) != len(kb) {
					return len(ka) == 0 != desc[k]
				}
				continue
			}
			c, _, err := compare(system(ka[0]), system(kb[0]))
			if err != nil {
				sortErr = err
				return false
			}
			if c != 0 {
				return (c < 0) != desc[k]
			}
		}
		return false
	}
	sorted := append([]keyed(nil), items...)
	slices.SortStableFunc(sorted, func(a, b keyed) int {
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	})
	if sortErr != nil {
		return nil, sortErr
	}
	out := make(Collection, len(sorted))
	for i, k := range sorted {
		out[i] = k.v
	}
	return out, nil
}

// fnBoundary is lowBoundary() and highBoundary(): the least or greatest
// value a decimal, quantity, date or time of its precision may stand for,
// given to the requested precision (FHIRPath 2.0 5.7 and 5.11).
func fnBoundary(high bool) function {
	return func(ev *evaluator, n *functionNode, t, in Collection, fr *frame) (Collection, error) {
		if len(t) != 1 {
			return Collection{}, nil
		}
		p := int64(-1)
		if len(n.args) > 0 {
			c, err := ev.eval(n.args[0], in, fr)
			if err != nil {
				return nil, err
			}
			var ok bool
			if p, ok, err = integerArg(c); err != nil || !ok {
				return Collection{}, err
			}
			if p < 0 {
				return Collection{}, nil
			}
		}
		switch v := system(t[0]).(type) {
		case Integer, Decimal:
			d, _ := toDecimal(v)
			r, ok := decimalBoundary(d, p, high)
			if !ok {
				return Collection{}, nil
			}
			return Collection{r}, nil
		case Quantity:
			r, ok := decimalBoundary(v.Value, p, high)
			if !ok {
				return Collection{}, nil
			}
			return Collection{Quantity{Value: r, Unit: v.Unit}}, nil
		case Temporal:
			r, ok := temporalBoundary(v, p, high)
			if !ok {
				return Collection{}, nil
			}
			return Collection{r}, nil
		}
		return Collection{}, nil
	}
}

func decimalBoundary(d Decimal, p int64, high bool) (Decimal, bool) {
	if p < 0 {
		p = 8
	}
	if p > 28 {
		return Decimal{}, false
	}
	half := new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Mul(big.NewInt(2), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil)))
	b := new(big.Rat)
	if high {
		b.Add(d.r, half)
	} else {
		b.Sub(d.r, half)
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(p), nil))
	x := new(big.Rat).Mul(b, scale)
	q := new(big.Int).Div(x.Num(), x.Denom()) // floor (Euclidean for positive denominators)
	if high && new(big.Rat).SetInt(q).Cmp(x) != 0 {
		q.Add(q, big.NewInt(1))
	}
	return Decimal{r: new(big.Rat).Quo(new(big.Rat).SetInt(q), scale), scale: int(p)}, true
}

func temporalBoundary(v Temporal, p int64, high bool) (Temporal, bool) {
	digits := map[int64]Precision{4: Year, 6: Month, 8: Day, 10: Hour, 12: Minute, 14: Second, 17: Millisecond}
	if v.Kind == TimeKind {
		digits = map[int64]Precision{2: Hour, 4: Minute, 6: Second, 9: Millisecond}
	}
	if p < 0 {
		p = map[TemporalKind]int64{DateKind: 8, DateTimeKind: 17, TimeKind: 9}[v.Kind]
	}
	target, ok := digits[p]
	if !ok {
		return v, false
	}
	known := v.prec
	if known == Hour && v.Kind == DateTimeKind {
		known = Minute // "T08" is read as 08:00
	}
	t := v.t
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	if high {
		if known < Month {
			mo = 12
		}
		if known < Day {
			d = daysIn(y, mo)
		}
		if known < Hour {
			h = 23
		}
		if known < Minute {
			mi = 59
		}
		if known < Second {
			s = 59
		}
		if known < Millisecond {
			ms = 999
		}
	} else {
		if known < Month {
			mo = 1
		}
		if known < Day {
			d = 1
		}
		if known < Hour {
			h = 0
		}
		if known < Minute {
			mi = 0
		}
		if known < Second {
			s = 0
		}
		if known < Millisecond {
			ms = 0
		}
	}
	loc := t.Location()
	out := Temporal{Kind: v.Kind, prec: target, hasTZ: v.hasTZ}
	if v.Kind == DateTimeKind && target > Day && !v.hasTZ {
		// Without a zone the instant could be anywhere from +14:00 to -12:00.
		out.hasTZ = true
		if high {
			loc = time.FixedZone("", -12*3600)
		} else {
			loc = time.FixedZone("", 14*3600)
		}
	}
	if v.Kind == DateTimeKind && target <= Day {
		out.Kind = DateKind
		out.hasTZ = false
	}
	if v.Kind == TimeKind {
		y, mo, d = 0, 1, 1
	}
	out.t = time.Date(y, mo, d, h, mi, s, ms*1e6, loc)
	return out, true
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
