// Package jsonpatch applies JSON Patch documents (RFC 6902, with JSON Pointer,
// RFC 6901) as FHIR's patch interaction allows (R4 3.1.0.7). Objects keep the
// order of their members, so a patched resource reads like the original apart
// from what the patch changed; numbers keep their literal text.
package jsonpatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// Operation is one JSON Patch operation.
type Operation struct {
	Op    string          `json:"op"`
	Path  *string         `json:"path"`
	From  *string         `json:"from"`
	Value json.RawMessage `json:"value"`
}

// Error is a patch that cannot be applied; Index is the failing operation.
type Error struct {
	Index int
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("patch operation %d: %s", e.Index, e.Msg) }

// Apply applies patch to doc and returns the result. The patch is atomic:
// on any error nothing is returned.
func Apply(doc, patch []byte) ([]byte, error) {
	var ops []Operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("patch is not a JSON array of operations: %w", err)
	}
	root, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	for i, op := range ops {
		fail := func(format string, args ...any) error { return &Error{Index: i, Msg: fmt.Sprintf(format, args...)} }
		if op.Path == nil {
			return nil, fail("%q has no path", op.Op)
		}
		path, err := parsePointer(*op.Path)
		if err != nil {
			return nil, fail("%v", err)
		}
		needValue := op.Op == "add" || op.Op == "replace" || op.Op == "test"
		var val any
		if needValue {
			if op.Value == nil {
				return nil, fail("%q has no value", op.Op)
			}
			if val, err = decode(op.Value); err != nil {
				return nil, fail("value: %v", err)
			}
		}
		switch op.Op {
		case "add":
			root, err = add(root, path, val)
		case "remove":
			root, _, err = remove(root, path)
		case "replace":
			if _, err = get(root, path); err == nil {
				root, _, err = remove(root, path)
				if err == nil {
					root, err = add(root, path, val)
				}
			}
		case "move", "copy":
			if op.From == nil {
				return nil, fail("%q has no from", op.Op)
			}
			from, perr := parsePointer(*op.From)
			if perr != nil {
				return nil, fail("from: %v", perr)
			}
			var v any
			if op.Op == "move" {
				if isPrefix(from, path) && len(from) < len(path) {
					return nil, fail("cannot move a value into one of its own children")
				}
				root, v, err = remove(root, from)
			} else {
				v, err = get(root, from)
				v = deepCopy(v)
			}
			if err == nil {
				root, err = add(root, path, v)
			}
		case "test":
			var got any
			if got, err = get(root, path); err == nil && !equal(got, val) {
				err = fmt.Errorf("test failed at %q", *op.Path)
			}
		default:
			return nil, fail("unknown op %q", op.Op)
		}
		if err != nil {
			return nil, fail("%v", err)
		}
	}
	var b bytes.Buffer
	encode(&b, root)
	return b.Bytes(), nil
}

// object is a JSON object that remembers member order.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	delete(o.vals, k)
	for i, kk := range o.keys {
		if kk == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			return
		}
	}
}

func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(kt.(string), v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return tok, nil // string, json.Number, bool or nil
	}
}

func encode(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case *object:
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, k)
			b.WriteByte(':')
			encode(b, t.vals[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			encode(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(string(t))
	default:
		writeJSON(b, t)
	}
}

func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	b.Truncate(b.Len() - 1)
}

func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// index parses an array index; "-" (one past the end) only when allowEnd.
func index(tok string, n int, allowEnd bool) (int, error) {
	if tok == "-" && allowEnd {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || strings.TrimLeft(tok, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not an array index", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("%q is not an array index", tok)
	}
	limit := n - 1
	if allowEnd {
		limit = n
	}
	if i > limit {
		return 0, fmt.Errorf("array index %d out of range", i)
	}
	return i, nil
}

func get(root any, path []string) (any, error) {
	cur := root
	for _, tok := range path {
		switch c := cur.(type) {
		case *object:
			v, ok := c.vals[tok]
			if !ok {
				return nil, fmt.Errorf("path member %q does not exist", tok)
			}
			cur = v
		case []any:
			i, err := index(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("path goes through a primitive at %q", tok)
		}
	}
	return cur, nil
}

// add sets the value at path, returning the (possibly new) root. Arrays are
// replaced by new slices, so parents are updated through setChild.
func add(root any, path []string, val any) (any, error) {
	if len(path) == 0 {
		return val, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case *object:
		p.set(last, val)
		return root, nil
	case []any:
		i, err := index(last, len(p), true)
		if err != nil {
			return nil, err
		}
		np := make([]any, 0, len(p)+1)
		np = append(append(append(np, p[:i]...), val), p[i:]...)
		return setChild(root, path[:len(path)-1], np)
	}
	return nil, fmt.Errorf("cannot add a member to a primitive")
}

func remove(root any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, nil, fmt.Errorf("cannot remove the whole document")
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case *object:
		v, ok := p.vals[last]
		if !ok {
			return nil, nil, fmt.Errorf("path member %q does not exist", last)
		}
		p.del(last)
		return root, v, nil
	case []any:
		i, err := index(last, len(p), false)
		if err != nil {
			return nil, nil, err
		}
		v := p[i]
		np := append(append([]any{}, p[:i]...), p[i+1:]...)
		root, err = setChild(root, path[:len(path)-1], np)
		return root, v, err
	}
	return nil, nil, fmt.Errorf("cannot remove from a primitive")
}

// setChild replaces the value at path (which exists) with v.
func setChild(root any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case *object:
		p.vals[last] = v
	case []any:
		i, err := index(last, len(p), false)
		if err != nil {
			return nil, err
		}
		p[i] = v
	}
	return root, nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case *object:
		o := &object{keys: append([]string(nil), t.keys...), vals: make(map[string]any, len(t.vals))}
		for k, vv := range t.vals {
			o.vals[k] = deepCopy(vv)
		}
		return o
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = deepCopy(t[i])
		}
		return out
	}
	return v
}

// equal is JSON equality: member order does not matter, numbers compare by
// value.
func equal(a, b any) bool {
	switch x := a.(type) {
	case *object:
		y, ok := b.(*object)
		if !ok || len(x.vals) != len(y.vals) {
			return false
		}
		for k, v := range x.vals {
			w, ok := y.vals[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, _, e1 := big.ParseFloat(string(x), 10, 200, big.ToNearestEven)
		fy, _, e2 := big.ParseFloat(string(y), 10, 200, big.ToNearestEven)
		return e1 == nil && e2 == nil && fx.Cmp(fy) == 0
	default:
		return a == b
	}
}
