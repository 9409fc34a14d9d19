package fhirpath

import (
	"math/big"
	"reflect"
	"strings"
	"time"
)

type bigRat = big.Rat

func (ev *evaluator) binary(n *binaryNode, input Collection, fr *frame) (Collection, error) {
	l, err := ev.eval(n.l, input, fr)
	if err != nil {
		return nil, err
	}
	// The boolean operators short-circuit where three-valued logic allows.
	switch n.op {
	case "and", "or", "xor", "implies":
		lb, err := boolOperand(l)
		if err != nil {
			return nil, err
		}
		if (n.op == "and" && lb == isFalse) || (n.op == "or" && lb == isTrue) {
			return Collection{Boolean(n.op == "or")}, nil
		}
		if n.op == "implies" && lb == isFalse {
			return Collection{Boolean(true)}, nil
		}
		r, err := ev.eval(n.r, input, fr)
		if err != nil {
			return nil, err
		}
		rb, err := boolOperand(r)
		if err != nil {
			return nil, err
		}
		return logic(n.op, lb, rb), nil
	}
	r, err := ev.eval(n.r, input, fr)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "|":
		if len(l)+len(r) > maxItems {
			return nil, evalErrorf("union of more than %d items", maxItems)
		}
		return union(l, r), nil
	case "=", "!=":
		if len(l) == 0 || len(r) == 0 {
			return Collection{}, nil
		}
		eq, known := collectionsEqual(l, r)
		if !known {
			return Collection{}, nil
		}
		return Collection{Boolean(eq == (n.op == "="))}, nil
	case "~", "!~":
		eq := collectionsEquivalent(l, r)
		return Collection{Boolean(eq == (n.op == "~"))}, nil
	case "in", "contains":
		item, coll := l, r
		if n.op == "contains" {
			item, coll = r, l
		}
		if len(item) == 0 {
			return Collection{}, nil
		}
		if len(item) > 1 {
			return nil, evalErrorf("%s needs a single item", n.op)
		}
		for _, c := range coll {
			if eq, known := equal(item[0], c); known && eq {
				return Collection{Boolean(true)}, nil
			}
		}
		return Collection{Boolean(false)}, nil
	}
	if n.op == "&" {
		// Concatenation treats empty as the empty string.
		if len(l) > 1 || len(r) > 1 {
			return nil, evalErrorf("& needs single values")
		}
		var a, b string
		if len(l) == 1 {
			a = stringOf(system(l[0]))
		}
		if len(r) == 1 {
			b = stringOf(system(r[0]))
		}
		if len(a)+len(b) > maxString {
			return nil, evalErrorf("string longer than %d bytes", maxString)
		}
		return Collection{String(a + b)}, nil
	}
	if len(l) == 0 || len(r) == 0 {
		return Collection{}, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, evalErrorf("operator %s needs single values, got %d and %d", n.op, len(l), len(r))
	}
	a, b := system(l[0]), system(r[0])
	switch n.op {
	case "<", ">", "<=", ">=":
		c, ok, err := compare(a, b)
		if err != nil {
			return nil, err
		}
		if !ok {
			return Collection{}, nil
		}
		res := map[string]bool{"<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0}[n.op]
		return Collection{Boolean(res)}, nil
	}
	return arithmetic(n.op, a, b)
}

type tristate int

const (
	isEmpty tristate = iota
	isFalse
	isTrue
)

func boolOperand(c Collection) (tristate, error) {
	if len(c) == 0 {
		return isEmpty, nil
	}
	if len(c) > 1 {
		return isEmpty, evalErrorf("a boolean operator needs a single value")
	}
	b, ok := system(c[0]).(Boolean)
	if !ok {
		// Singleton evaluation: a single non-boolean item is true.
		return isTrue, nil
	}
	if b {
		return isTrue, nil
	}
	return isFalse, nil
}

func logic(op string, a, b tristate) Collection {
	t := func(v bool) Collection { return Collection{Boolean(v)} }
	switch op {
	case "and":
		switch {
		case a == isFalse || b == isFalse:
			return t(false)
		case a == isTrue && b == isTrue:
			return t(true)
		}
	case "or":
		switch {
		case a == isTrue || b == isTrue:
			return t(true)
		case a == isFalse && b == isFalse:
			return t(false)
		}
	case "xor":
		if a != isEmpty && b != isEmpty {
			return t(a != b)
		}
	case "implies":
		switch {
		case a == isTrue:
			if b == isEmpty {
				return Collection{}
			}
			return t(b == isTrue)
		case a == isFalse:
			return t(true)
		case b == isTrue:
			return t(true)
		}
	}
	return Collection{}
}

func union(a, b Collection) Collection {
	out := Collection{}
	for _, c := range [2]Collection{a, b} {
		for _, v := range c {
			if !containsValue(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

func containsValue(c Collection, v Value) bool {
	for _, x := range c {
		if eq, known := equal(x, v); known && eq {
			return true
		}
	}
	return false
}

func collectionsEqual(l, r Collection) (bool, bool) {
	if len(l) != len(r) {
		return false, true
	}
	for i := range l {
		eq, known := equal(l[i], r[i])
		if !known {
			return false, false
		}
		if !eq {
			return false, true
		}
	}
	return true, true
}

// equal is FHIRPath = on two items; known is false where the answer is
// empty (dates of different precision).
func equal(a, b Value) (eq, known bool) {
	a, b = system(a), system(b)
	switch x := a.(type) {
	case Boolean, String:
		return a == b, true
	case Integer:
		switch y := b.(type) {
		case Integer:
			return x == y, true
		case Decimal:
			return decimalFromInt(int64(x)).r.Cmp(y.r) == 0, true
		}
	case Decimal:
		switch y := b.(type) {
		case Integer:
			return x.r.Cmp(decimalFromInt(int64(y)).r) == 0, true
		case Decimal:
			return x.r.Cmp(y.r) == 0, true
		}
	case Temporal:
		y, ok := b.(Temporal)
		if !ok {
			return false, true
		}
		c, ok := compareTemporal(x, y)
		if !ok {
			return false, false
		}
		return c == 0, true
	case Quantity:
		y, ok := b.(Quantity)
		if !ok {
			return false, true
		}
		c, ok := compareQuantity(x, y)
		if !ok {
			return false, false
		}
		return c == 0, true
	case *Node:
		y, ok := b.(*Node)
		if !ok {
			return false, true
		}
		return reflect.DeepEqual(x.JSON, y.JSON), true
	}
	return false, true
}

func collectionsEquivalent(l, r Collection) bool {
	if len(l) != len(r) {
		return false
	}
	used := make([]bool, len(r))
outer:
	for _, a := range l {
		for j, b := range r {
			if !used[j] && equivalent(a, b) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

// equivalent is FHIRPath ~: strings ignore case and collapse whitespace,
// decimals compare at the lesser precision, dates of different precision
// are not equivalent.
func equivalent(a, b Value) bool {
	a, b = system(a), system(b)
	switch x := a.(type) {
	case String:
		y, ok := b.(String)
		return ok && normalise(string(x)) == normalise(string(y))
	case Integer, Decimal:
		dx, ok1 := toDecimal(a)
		dy, ok2 := toDecimal(b)
		if !ok1 || !ok2 {
			return false
		}
		scale := min(dx.scale, dy.scale)
		return roundTo(dx, scale).r.Cmp(roundTo(dy, scale).r) == 0
	case Temporal:
		y, ok := b.(Temporal)
		if !ok || x.prec != y.prec && !(x.prec >= Second && y.prec >= Second) {
			return false
		}
		c, ok := compareTemporal(x, y)
		return ok && c == 0
	case Quantity:
		y, ok := b.(Quantity)
		if !ok {
			return false
		}
		dx, vx, _ := inBase(x)
		dy, vy, _ := inBase(y)
		if dx != dy {
			return false
		}
		// Compare at the precision of the less precise value, in its unit.
		coarse, fine, fineV := x, y, vy
		if y.Value.scale < x.Value.scale {
			coarse, fine, fineV = y, x, vx
		}
		_ = fine
		inCoarse := Decimal{r: new(big.Rat).Quo(fineV, unitFactor(coarse.Unit))}
		return roundTo(inCoarse, coarse.Value.scale).r.Cmp(roundTo(coarse.Value, coarse.Value.scale).r) == 0
	case *Node:
		y, ok := b.(*Node)
		return ok && reflect.DeepEqual(x.JSON, y.JSON)
	}
	eq, known := equal(a, b)
	return known && eq
}

func unitFactor(u string) *big.Rat {
	if info, ok := units[u]; ok {
		return info.factor
	}
	return big.NewRat(1, 1)
}

func normalise(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// compare orders two values; ok is false where the answer is empty.
func compare(a, b Value) (int, bool, error) {
	switch x := a.(type) {
	case String:
		if y, ok := b.(String); ok {
			return strings.Compare(string(x), string(y)), true, nil
		}
	case Integer, Decimal:
		dx, _ := toDecimal(a)
		if dy, ok := toDecimal(b); ok {
			return dx.r.Cmp(dy.r), true, nil
		}
	case Temporal:
		if y, ok := b.(Temporal); ok {
			if x.Kind == TimeKind && y.Kind != TimeKind || x.Kind != TimeKind && y.Kind == TimeKind {
				break
			}
			c, ok := compareTemporal(x, y)
			return c, ok, nil
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			c, ok := compareQuantity(x, y)
			if !ok {
				return 0, false, evalErrorf("cannot compare %s with %s", x, y)
			}
			return c, true, nil
		}
	}
	return 0, false, evalErrorf("cannot compare %T with %T", a, b)
}

// compareTemporal compares at the precision both values have; when they
// agree that far but one is more precise, the answer is unknown.
func compareTemporal(x, y Temporal) (int, bool) {
	px, py := x.prec, y.prec
	if px == Millisecond {
		px = Second
	}
	if py == Millisecond {
		py = Second
	}
	p := min(px, py)
	if x.Kind == DateTimeKind && y.Kind == DateTimeKind && p > Day && x.hasTZ != y.hasTZ {
		return 0, false // one has a zone and the other not: not comparable
	}
	ax, ay := x.t, y.t
	if x.Kind != TimeKind && y.Kind != TimeKind && p > Day {
		ax, ay = ax.UTC(), ay.UTC()
	}
	fields := func(t time.Time) []int {
		return []int{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()*1000 + t.Nanosecond()/1e6}
	}
	fx, fy := fields(ax), fields(ay)
	start, end := 0, int(p)
	if x.Kind == TimeKind {
		start, end = 3, 3+int(p-Hour)+1
	}
	for i := start; i < end && i < 6; i++ {
		if fx[i] != fy[i] {
			if fx[i] < fy[i] {
				return -1, true
			}
			return 1, true
		}
	}
	if px != py {
		return 0, false
	}
	return 0, true
}

func toDecimal(v Value) (Decimal, bool) {
	switch x := v.(type) {
	case Integer:
		return decimalFromInt(int64(x)), true
	case Decimal:
		return x, true
	}
	return Decimal{}, false
}

func roundTo(d Decimal, scale int) Decimal {
	f := new(big.Float).SetPrec(200).SetRat(d.r)
	s := f.Text('f', scale)
	r, _ := new(big.Rat).SetString(s)
	return Decimal{r: r, scale: scale}
}

func stringOf(v Value) string {
	if v == nil {
		return ""
	}
	s, _ := toStringValue(v)
	return s
}

func arithmetic(op string, a, b Value) (Collection, error) {
	if op == "+" {
		if x, ok := a.(String); ok {
			if y, ok := b.(String); ok {
				if len(x)+len(y) > maxString {
					return nil, evalErrorf("string longer than %d bytes", maxString)
				}
				return Collection{x + y}, nil
			}
		}
		if t, ok := a.(Temporal); ok {
			if q, ok := b.(Quantity); ok {
				r, err := addDuration(t, q, 1)
				return Collection{r}, err
			}
		}
	}
	if op == "-" {
		if t, ok := a.(Temporal); ok {
			if q, ok := b.(Quantity); ok {
				r, err := addDuration(t, q, -1)
				return Collection{r}, err
			}
		}
	}
	if qa, ok := a.(Quantity); ok {
		return quantityArithmetic(op, qa, b)
	}
	if qb, ok := b.(Quantity); ok && op == "*" {
		return quantityArithmetic(op, qb, a)
	}
	ia, aInt := a.(Integer)
	ib, bInt := b.(Integer)
	if aInt && bInt && op != "/" {
		switch op {
		case "+":
			return Collection{ia + ib}, nil
		case "-":
			return Collection{ia - ib}, nil
		case "*":
			return Collection{ia * ib}, nil
		case "div":
			if ib == 0 {
				return Collection{}, nil
			}
			return Collection{ia / ib}, nil
		case "mod":
			if ib == 0 {
				return Collection{}, nil
			}
			return Collection{ia % ib}, nil
		}
	}
	da, ok1 := toDecimal(a)
	db, ok2 := toDecimal(b)
	if !ok1 || !ok2 {
		return nil, evalErrorf("operator %s cannot apply to %T and %T", op, a, b)
	}
	r := new(big.Rat)
	scale := max(da.scale, db.scale)
	switch op {
	case "+":
		r.Add(da.r, db.r)
	case "-":
		r.Sub(da.r, db.r)
	case "*":
		r.Mul(da.r, db.r)
		scale = da.scale + db.scale
	case "/":
		if db.r.Sign() == 0 {
			return Collection{}, nil
		}
		r.Quo(da.r, db.r)
		d := Decimal{r: r, scale: 0}
		if !r.IsInt() {
			d = roundTo(Decimal{r: r}, min(d.exactScale(), 8))
		}
		return Collection{d}, nil
	case "div":
		if db.r.Sign() == 0 {
			return Collection{}, nil
		}
		q := new(big.Int).Quo(new(big.Int).Mul(da.r.Num(), db.r.Denom()), new(big.Int).Mul(da.r.Denom(), db.r.Num()))
		return Collection{Integer(q.Int64())}, nil
	case "mod":
		if db.r.Sign() == 0 {
			return Collection{}, nil
		}
		q := new(big.Int).Quo(new(big.Int).Mul(da.r.Num(), db.r.Denom()), new(big.Int).Mul(da.r.Denom(), db.r.Num()))
		r.Sub(da.r, new(big.Rat).Mul(new(big.Rat).SetInt(q), db.r))
	default:
		return nil, evalErrorf("unknown operator %s", op)
	}
	return Collection{Decimal{r: r, scale: scale}}, nil
}
