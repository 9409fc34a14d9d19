package fhirpath

import (
	"fmt"
	"strings"
	"unicode"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tDelimitedIdent // `...`
	tString
	tNumber
	tLongNumber // 10L
	tDateTime   // @2020-01-01T...
	tTime       // @T12:00
	tOp         // punctuation and symbolic operators
	tEnv        // %name or %`name` or %'name'
	tSpecial    // $this, $index, $total
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

// SyntaxError is a malformed expression.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("FHIRPath syntax error at %d: %s", e.Pos, e.Msg)
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, &SyntaxError{i, "unterminated comment"}
			}
			i += end + 4
		case c == '\'':
			s, n, err := lexQuoted(src, i, '\'')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, s, i})
			i = n
		case c == '`':
			s, n, err := lexQuoted(src, i, '`')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tDelimitedIdent, s, i})
			i = n
		case c == '@':
			j := i + 1
			kind := tDateTime
			if j < len(src) && src[j] == 'T' {
				kind = tTime
			}
			for j < len(src) && isDateChar(src[j]) {
				// A dot belongs to the literal only before fraction digits.
				if src[j] == '.' && (j+1 >= len(src) || src[j+1] < '0' || src[j+1] > '9') {
					break
				}
				j++
			}
			if j == i+1 {
				return nil, &SyntaxError{i, "empty date/time literal"}
			}
			toks = append(toks, token{kind, src[i+1 : j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			if j < len(src) && src[j] == 'L' {
				toks = append(toks, token{tLongNumber, src[i:j], i})
				i = j + 1
				continue
			}
			toks = append(toks, token{tNumber, src[i:j], i})
			i = j
		case c == '%':
			j := i + 1
			if j < len(src) && (src[j] == '`' || src[j] == '\'') {
				s, n, err := lexQuoted(src, j, src[j])
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{tEnv, s, i})
				i = n
				continue
			}
			for j < len(src) && isIdentChar(rune(src[j])) {
				j++
			}
			if j == i+1 {
				return nil, &SyntaxError{i, "empty environment variable"}
			}
			toks = append(toks, token{tEnv, src[i+1 : j], i})
			i = j
		case c == '$':
			j := i + 1
			for j < len(src) && isIdentChar(rune(src[j])) {
				j++
			}
			toks = append(toks, token{tSpecial, src[i:j], i})
			i = j
		case isIdentStart(rune(c)):
			j := i
			for j < len(src) && isIdentChar(rune(src[j])) {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "<=", ">=", "!=", "!~":
				toks = append(toks, token{tOp, two, i})
				i += 2
				continue
			}
			if strings.ContainsRune(".[](),+-*/|&=~<>{}", rune(c)) {
				toks = append(toks, token{tOp, string(c), i})
				i++
				continue
			}
			return nil, &SyntaxError{i, fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

func isDateChar(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == ':' || c == 'T' || c == '.' || c == '+' || c == 'Z'
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentChar(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// lexQuoted reads a quoted string with FHIRPath escapes from src[i] == q.
func lexQuoted(src string, i int, q byte) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(src); j++ {
		c := src[j]
		if c == q {
			return b.String(), j + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		j++
		if j >= len(src) {
			break
		}
		switch src[j] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if j+4 >= len(src) {
				return "", 0, &SyntaxError{j, "short \\u escape"}
			}
			var r rune
			if _, err := fmt.Sscanf(src[j+1:j+5], "%04x", &r); err != nil {
				return "", 0, &SyntaxError{j, "bad \\u escape"}
			}
			b.WriteRune(r)
			j += 4
		default: // \\ \' \" \` \/
			b.WriteByte(src[j])
		}
	}
	return "", 0, &SyntaxError{i, "unterminated string"}
}
