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
	"io"
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
// leaves them undefined and FHIR forbids them.
func ParseObject(raw []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("expected a JSON object")
	}
	var obj Object
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		key := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate property %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		obj = append(obj, Member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level object")
	}
	return obj, nil
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

// String returns the value of key when it is a JSON string.
func (o Object) String(key string) (string, bool) {
	v, ok := o.Get(key)
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
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
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, m.Key)
		b.WriteByte(':')
		b.Write(m.Value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Quote renders s as a JSON string without HTML escaping.
func Quote(s string) json.RawMessage {
	var b bytes.Buffer
	writeString(&b, s)
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

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
