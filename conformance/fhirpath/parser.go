package fhirpath

import (
	"fmt"
	"strings"
)

// Node is a parsed FHIRPath expression (an AST node).
type node interface{}

type (
	literalNode struct{ val Collection }
	memberNode  struct {
		target node
		name   string
	} // target nil: the input
	functionNode struct {
		target node
		name   string
		args   []node
	}
	indexNode  struct{ target, index node }
	binaryNode struct {
		op   string
		l, r node
	}
	unaryNode struct {
		op string
		x  node
	}
	typeNode struct {
		op  string // is, as
		x   node
		typ string
	}
	varNode struct{ name string } // $this, $index, $total
	envNode struct{ name string } // %name
)

// Expression is a compiled FHIRPath expression.
type Expression struct {
	src  string
	root node
}

// String returns the source of the expression.
func (e *Expression) String() string { return e.src }

// Parse compiles a FHIRPath expression (FHIRPath N1, as used by FHIR R4).
func Parse(src string) (*Expression, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.expression(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &SyntaxError{t.pos, fmt.Sprintf("unexpected %q", t.text)}
	}
	return &Expression{src: src, root: root}, nil
}

// MustParse is Parse for expressions known to be valid (spec data); it
// panics on error.
func MustParse(src string) *Expression {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

type parser struct {
	toks  []token
	i     int
	depth int
}

const maxDepth = 200

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) isOp(text string) bool {
	t := p.peek()
	return (t.kind == tOp || t.kind == tIdent) && t.text == text
}

func (p *parser) expect(text string) error {
	t := p.next()
	if t.text != text || (t.kind != tOp && t.kind != tIdent) {
		return &SyntaxError{t.pos, fmt.Sprintf("expected %q, found %q", text, t.text)}
	}
	return nil
}

// precedence levels, loosest first (FHIRPath section 6).
var levels = [][]string{
	{"implies"},
	{"or", "xor"},
	{"and"},
	{"in", "contains"},
	{"=", "~", "!=", "!~"},
	{"<", ">", "<=", ">="},
	{"|"},
	{"is", "as"},
	{"+", "-", "&"},
	{"*", "/", "div", "mod"},
}

func (p *parser) expression(level int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, &SyntaxError{p.peek().pos, "expression nests too deeply"}
	}
	if level == len(levels) {
		return p.unary()
	}
	left, err := p.expression(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		op := ""
		if t.kind == tOp || t.kind == tIdent {
			for _, o := range levels[level] {
				if t.text == o {
					op = o
				}
			}
		}
		if op == "" {
			return left, nil
		}
		p.next()
		if op == "is" || op == "as" {
			typ, err := p.typeSpecifier()
			if err != nil {
				return nil, err
			}
			left = &typeNode{op: op, x: left, typ: typ}
			continue
		}
		right, err := p.expression(level + 1)
		if err != nil {
			return nil, err
		}
		left = &binaryNode{op: op, l: left, r: right}
	}
}

func (p *parser) typeSpecifier() (string, error) {
	var parts []string
	for {
		t := p.next()
		if t.kind != tIdent && t.kind != tDelimitedIdent {
			return "", &SyntaxError{t.pos, fmt.Sprintf("expected a type name, found %q", t.text)}
		}
		parts = append(parts, t.text)
		if !p.isOp(".") {
			return strings.Join(parts, "."), nil
		}
		p.next()
	}
}

func (p *parser) unary() (node, error) {
	if p.isOp("+") || p.isOp("-") {
		op := p.next().text
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &unaryNode{op: op, x: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			n, err = p.invocation(n)
			if err != nil {
				return nil, err
			}
		case p.isOp("["):
			p.next()
			idx, err := p.expression(0)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			n = &indexNode{target: n, index: idx}
		default:
			return n, nil
		}
	}
}

func (p *parser) term() (node, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &literalNode{Collection{String(t.text)}}, nil
	case tNumber, tLongNumber:
		p.next()
		num, err := numberLiteral(t)
		if err != nil {
			return nil, err
		}
		if t.kind == tNumber {
			if unit, ok := p.unit(); ok {
				d, _ := ParseDecimal(t.text)
				return &literalNode{Collection{Quantity{Value: d, Unit: unit}}}, nil
			}
		}
		return &literalNode{Collection{num}}, nil
	case tDateTime, tTime:
		p.next()
		v, err := temporalLiteral(t)
		if err != nil {
			return nil, err
		}
		return &literalNode{Collection{v}}, nil
	case tEnv:
		p.next()
		return &envNode{name: t.text}, nil
	case tSpecial:
		p.next()
		switch t.text {
		case "$this", "$index", "$total":
			return &varNode{name: t.text}, nil
		}
		return nil, &SyntaxError{t.pos, fmt.Sprintf("unknown %s", t.text)}
	case tOp:
		switch t.text {
		case "(":
			p.next()
			e, err := p.expression(0)
			if err != nil {
				return nil, err
			}
			return e, p.expect(")")
		case "{":
			p.next()
			return &literalNode{Collection{}}, p.expect("}")
		}
	case tIdent:
		switch t.text {
		case "true", "false":
			p.next()
			return &literalNode{Collection{Boolean(t.text == "true")}}, nil
		}
		return p.invocation(nil)
	case tDelimitedIdent:
		return p.invocation(nil)
	}
	return nil, &SyntaxError{t.pos, fmt.Sprintf("unexpected %q", t.text)}
}

// unit reads the unit after a number: a quoted UCUM unit or a calendar
// duration keyword.
func (p *parser) unit() (string, bool) {
	t := p.peek()
	if t.kind == tString {
		p.next()
		return t.text, true
	}
	if t.kind == tIdent {
		if _, ok := calendarUnits[t.text]; ok {
			p.next()
			return t.text, true
		}
	}
	return "", false
}

func (p *parser) invocation(target node) (node, error) {
	t := p.next()
	switch t.kind {
	case tIdent, tDelimitedIdent:
	case tSpecial:
		if target == nil {
			return &varNode{name: t.text}, nil
		}
		return nil, &SyntaxError{t.pos, fmt.Sprintf("%s cannot follow a dot", t.text)}
	default:
		return nil, &SyntaxError{t.pos, fmt.Sprintf("expected a name, found %q", t.text)}
	}
	if t.kind == tIdent && p.isOp("(") {
		p.next()
		var args []node
		if !p.isOp(")") {
			for {
				a, err := p.expression(0)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.isOp(",") {
					p.next()
					continue
				}
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return &functionNode{target: target, name: t.text, args: args}, nil
	}
	return &memberNode{target: target, name: t.text}, nil
}
