// Package resource works on FHIR resources in their canonical form, the JSON
// bytes a client sent. It edits the few elements the server maintains (id,
// meta.versionId, meta.lastUpdated), rewrites references inside
// transactions and derives views (_summary, _elements) while keeping every
// other byte's meaning and the document order of properties, so that what a
// client wrote is what it reads back.
package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Member is one property of a JSON object, in document order.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Object is a JSON object as an ordered list of members.
type Object []Member

// ParseObject splits raw, which must be a single JSON object, into its
// members without decoding their values. Duplicate keys are an error: JSON
// leaves them undefined and FHIR forbids them. Values alias raw.
func ParseObject(raw []byte) (Object, error) {
	if err := validJSON(raw); err != nil {
		return nil, err
	}
	return parseValid(raw)
}

var errNotUTF8 = errors.New("invalid JSON: not UTF-8")

// validJSON checks raw is UTF-8 JSON, saying what is wrong and where.
func validJSON(raw []byte) error {
	if !utf8.Valid(raw) {
		return errNotUTF8
	}
	if !json.Valid(raw) {
		// Let the standard decoder say what is wrong and where.
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		return errors.New("invalid JSON")
	}
	return nil
}

// parseValid is ParseObject for raw already known to be valid JSON: the
// scanner only has to find boundaries, not check syntax. On anything else
// it returns an error or members that mean nothing, but it never reads
// out of bounds.
func parseValid(raw []byte) (Object, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, errors.New("expected a JSON object")
	}
	i++
	obj := make(Object, 0, 16)
	// seen holds the keys once an object has many: comparing each key with
	// every earlier one is quadratic in the number of keys.
	var seen map[string]struct{}
	for {
		if i = skipSpace(raw, i); i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
		if i >= len(raw) {
			return nil, errTruncated
		}
		if raw[i] == '}' {
			break
		}
		if raw[i] != '"' {
			return nil, errors.New("invalid JSON: expected a property name")
		}
		end := skipString(raw, i)
		if end-i < 2 || raw[end-1] != '"' {
			return nil, errTruncated
		}
		key, err := unquote(raw[i:end])
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return nil, errors.New("invalid JSON: expected a colon")
		}
		if i = skipSpace(raw, i+1); i >= len(raw) {
			return nil, errTruncated
		}
		vend := skipValue(raw, i)
		if seen == nil && len(obj) >= manyKeys {
			seen = make(map[string]struct{}, 2*len(obj))
			for _, m := range obj {
				seen[m.Key] = struct{}{}
			}
		}
		duplicate := false
		if seen != nil {
			_, duplicate = seen[key]
			seen[key] = struct{}{}
		} else {
			for _, m := range obj {
				duplicate = duplicate || m.Key == key
			}
		}
		if duplicate {
			return nil, fmt.Errorf("duplicate property %q", key)
		}
		obj = append(obj, Member{key, json.RawMessage(raw[i:vend])})
		i = vend
	}
	return obj, nil
}

// manyKeys is where parseValid starts to look keys up in a map.
const manyKeys = 16

var errTruncated = errors.New("invalid JSON: unexpected end")

// ParseValidObject is ParseObject for a value already known to be valid
// JSON: a value of an Object that ParseObject returned, or an element of
// one of its arrays (ArrayElements). Only ParseObject checks syntax: on
// other input the result is an error or members that mean nothing.
func ParseValidObject(raw json.RawMessage) (Object, error) { return parseValid(raw) }

// ArrayElements returns the elements of raw (aliasing it) when raw, a
// value already known to be valid JSON (as for ParseValidObject), is an
// array.
func ArrayElements(raw json.RawMessage) ([]json.RawMessage, bool) {
	if i := skipSpace(raw, 0); i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	return splitArray(raw), true
}

// splitArray splits the valid JSON array raw into its elements (aliasing
// raw).
func splitArray(raw []byte) []json.RawMessage {
	var out []json.RawMessage
	i := skipSpace(raw, 0) + 1 // the '['
	for {
		if i = skipSpace(raw, i); i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
		if i >= len(raw) || raw[i] == ']' {
			return out
		}
		end := skipValue(raw, i)
		out = append(out, json.RawMessage(raw[i:end]))
		i = end
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b) // unterminated
}

// skipValue returns the index after the (valid) JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

func unquote(s []byte) (string, error) {
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s[1 : len(s)-1]), nil
	}
	var out string
	err := json.Unmarshal(s, &out)
	return out, err
}

// Get returns the value of key.
func (o Object) Get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// String returns the value of key when it is a JSON string. Like the rest
// of Object's readers it expects o to come from ParseObject (or from
// ParseValidObject on its values): valid, UTF-8 JSON.
func (o Object) String(key string) (string, bool) {
	v, ok := o.Get(key)
	if !ok || len(v) < 2 || v[0] != '"' {
		return "", false
	}
	s, err := unquote(v)
	return s, err == nil
}

// Set replaces the value of key in place, or inserts it after the member
// named after (at the start when after is "" or absent).
func (o Object) Set(key string, value json.RawMessage, after string) Object {
	for i := range o {
		if o[i].Key == key {
			o[i].Value = value
			return o
		}
	}
	pos := 0
	for i := range o {
		if o[i].Key == after {
			pos = i + 1
			break
		}
	}
	o = append(o, Member{})
	copy(o[pos+1:], o[pos:])
	o[pos] = Member{key, value}
	return o
}

// Delete removes key.
func (o Object) Delete(key string) Object {
	for i := range o {
		if o[i].Key == key {
			return append(o[:i], o[i+1:]...)
		}
	}
	return o
}

// Bytes renders o as compact JSON in member order.
func (o Object) Bytes() []byte {
	n := 2
	for _, m := range o {
		n += len(m.Key) + len(m.Value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.Key)
		b = append(b, ':')
		b = append(b, m.Value...)
	}
	return append(b, '}')
}

// Quote renders s as a JSON string without HTML escaping.
func Quote(s string) json.RawMessage { return AppendString(make([]byte, 0, len(s)+2), s) }

// Compact returns raw without insignificant whitespace.
func Compact(raw []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Indent returns raw pretty-printed, for _pretty=true.
func Indent(raw []byte) []byte {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return raw
	}
	return b.Bytes()
}

// CheckDepth reports an error when raw nests objects and arrays deeper than
// max. It scans bytes without decoding, so a hostile body is rejected before
// any parser recurses into it.
func CheckDepth(raw []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("JSON nesting deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
