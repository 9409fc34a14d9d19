package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/promsgateway/gateway/fhir/spec"
)

// ValidID reports whether id is a valid FHIR logical id: the R4 id
// datatype, 1 to 64 of [A-Za-z0-9\-\.].
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idByte[id[i]] {
			return false
		}
	}
	return true
}

// NewID returns a new server-assigned logical id: a UUID of version 7
// (RFC 9562), 48 bits of Unix time in milliseconds, a 12-bit sequence
// that keeps the ids of this process strictly increasing, and 62 random
// bits, in the usual lower-case text form (36 characters, a valid FHIR
// id). Ids made later sort later, so a new resource's rows go to the
// right-hand edge of every database index keyed by id, whose pages are in
// memory, rather than to a random page of it (docs/search.md). The id
// tells when the resource was created, wherever it goes (every reference
// to the resource carries it): see NewRandomID.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// crypto/rand does not fail on the systems Go supports.
		panic(fmt.Sprintf("new id: %v", err))
	}
	return id.String()
}

// NewRandomID returns a new server-assigned logical id that tells nothing:
// a random UUID (version 4), for resources whose creation time must not
// travel with every reference to them.
func NewRandomID() string {
	return uuid.NewString()
}

// idByte holds the bytes an id may have: A-Z a-z 0-9 - and .
var idByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.'
	}
	return t
}()

// Header is what the server reads from the top of a resource.
type Header struct {
	Type string
	ID   string
}

// ReadHeader returns the resourceType and id of raw.
func ReadHeader(raw []byte) (Header, Object, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return Header{}, nil, err
	}
	h, err := readHeader(obj)
	if err != nil {
		return Header{}, nil, err
	}
	return h, obj, nil
}

// ReadCompact returns raw without its insignificant whitespace, and its
// header, checking raw is one UTF-8 JSON object in the one scan that
// compacts it (ReadHeader and Compact scan it twice).
func ReadCompact(raw []byte) ([]byte, Header, error) {
	if !utf8.Valid(raw) {
		return nil, Header{}, errNotUTF8
	}
	compact, err := Compact(raw)
	if err != nil {
		return nil, Header{}, fmt.Errorf("invalid JSON: %w", err)
	}
	obj, err := parseValid(compact)
	if err != nil {
		return nil, Header{}, err
	}
	h, err := readHeader(obj)
	if err != nil {
		return nil, Header{}, err
	}
	return compact, h, nil
}

func readHeader(obj Object) (Header, error) {
	t, ok := obj.String("resourceType")
	if !ok || t == "" {
		return Header{}, fmt.Errorf("resourceType is missing or not a string")
	}
	h := Header{Type: t}
	if v, ok := obj.Get("id"); ok {
		if err := json.Unmarshal(v, &h.ID); err != nil {
			return Header{}, fmt.Errorf("id is not a string")
		}
	}
	return h, nil
}

// instantLayout is a FHIR instant with microsecond precision.
const instantLayout = "2006-01-02T15:04:05.000000Z07:00"

// Instant formats t as a FHIR instant with microsecond precision in UTC.
func Instant(t time.Time) string {
	return t.UTC().Format(instantLayout)
}

// Stamp returns raw with the server-maintained elements set: id, and
// meta.versionId and meta.lastUpdated (other meta members are kept). id sits
// right after resourceType and meta after id, as the specification's JSON
// examples order them, unless the client already placed them elsewhere.
func Stamp(raw []byte, id string, version int64, lastUpdated time.Time) ([]byte, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return nil, err
	}
	obj = obj.Set("id", Quote(id), "resourceType")
	var meta Object
	if m, ok := obj.Get("meta"); ok {
		// raw as a whole is valid JSON, and so is each of its values.
		if meta, err = parseValid(m); err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
	}
	// Both values are plain ASCII: they need no escaping.
	stamps := make([]byte, 0, 64)
	stamps = strconv.AppendInt(append(stamps, '"'), version, 10)
	stamps = append(stamps, '"')
	vend := len(stamps)
	stamps = lastUpdated.UTC().AppendFormat(append(stamps, '"'), instantLayout)
	stamps = append(stamps, '"')
	meta = meta.Set("versionId", stamps[:vend:vend], "")
	meta = meta.Set("lastUpdated", stamps[vend:], "versionId")
	obj = obj.Set("meta", meta.Bytes(), "id")
	return obj.Bytes(), nil
}

// subsetted is the tag the specification requires on a resource that is not
// complete (R4 3.1.1.5.8, _summary and _elements).
const subsetted = `{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"Resource encoded in summary mode"}`

// Summary returns the _summary=true view of raw: the top-level elements the
// base definition marks isSummary, with meta tagged SUBSETTED.
func Summary(raw []byte) ([]byte, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return nil, err
	}
	t, _ := obj.String("resourceType")
	rt, ok := spec.Lookup(t)
	if !ok {
		return nil, fmt.Errorf("unknown resource type %q", t)
	}
	out := Object{}
	for _, m := range obj {
		if m.Key == "resourceType" || rt.InSummary(m.Key) {
			out = append(out, m)
		}
	}
	return tagSubsetted(out)
}

// Elements returns the _elements view of raw: resourceType, id, meta and the
// named top-level elements (choice elements by their stem), tagged SUBSETTED.
func Elements(raw []byte, names []string) ([]byte, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{"resourceType": true, "id": true, "meta": true}
	for _, n := range names {
		keep[strings.TrimSpace(n)] = true
	}
	out := Object{}
	for _, m := range obj {
		k := strings.TrimPrefix(m.Key, "_")
		if keep[k] || keep[choiceStem(k)] {
			out = append(out, m)
		}
	}
	return tagSubsetted(out)
}

func choiceStem(k string) string {
	for i := 1; i < len(k); i++ {
		if k[i] >= 'A' && k[i] <= 'Z' {
			return k[:i]
		}
	}
	return k
}

func tagSubsetted(obj Object) ([]byte, error) {
	meta := Object{}
	if m, ok := obj.Get("meta"); ok {
		var err error
		if meta, err = ParseObject(m); err != nil {
			return nil, err
		}
	}
	var tags []json.RawMessage
	if t, ok := meta.Get("tag"); ok {
		_ = json.Unmarshal(t, &tags)
	}
	tags = append(tags, json.RawMessage(subsetted))
	tb, _ := json.Marshal(tags)
	meta = meta.Set("tag", tb, "lastUpdated")
	return obj.Set("meta", meta.Bytes(), "id").Bytes(), nil
}

// RewriteReferences returns raw with every Reference.reference string that
// fn maps to a new value replaced, at any depth. Used to resolve urn:uuid and
// conditional references inside transactions (R4 3.1.0.11.2).
//
// raw must be valid JSON, as every value json.Unmarshal takes out of a
// document is (a Bundle entry's resource): the walk only splits it, and a
// body without the bytes of a reference is returned unscanned. Its UTF-8
// is not checked here; ReadCompact checks it.
//
// Rewriting commutes with Compact: the rewrite of a compacted body is the
// compacted rewrite of the body, byte for byte, as the members it re-renders
// are written without whitespace and the rest is copied. A transaction
// relies on it to rewrite a body compacted and checked before it.
func RewriteReferences(raw []byte, fn func(string) (string, bool)) ([]byte, error) {
	escapes := bytes.Contains(raw, []byte(`\u`)) // a key may be spelt "\u0072eference"
	if !escapes && !bytes.Contains(raw, referenceKey) {
		return raw, nil
	}
	out, _, err := rewrite(raw, fn, escapes)
	return out, err
}

var referenceKey = []byte(`"reference"`)

// rewrite walks raw; escapes says it may spell keys with \u escapes, so
// that a subtree without the bytes "reference" may still hold one.
func rewrite(raw json.RawMessage, fn func(string) (string, bool), escapes bool) (json.RawMessage, bool, error) {
	raw = trimSpace(raw)
	if len(raw) == 0 {
		return raw, false, nil
	}
	switch raw[0] {
	case '{':
		obj, err := parseValid(raw)
		if err != nil {
			return nil, false, err
		}
		changed := false
		for i, m := range obj {
			if !escapes && m.Key != "reference" && !bytes.Contains(m.Value, referenceKey) {
				continue // no reference below: nothing to rewrite
			}
			if m.Key == "reference" {
				var s string
				if json.Unmarshal(m.Value, &s) == nil {
					if ns, ok := fn(s); ok {
						obj[i].Value = Quote(ns)
						changed = true
					}
				}
				continue
			}
			nv, c, err := rewrite(m.Value, fn, escapes)
			if err != nil {
				return nil, false, err
			}
			if c {
				obj[i].Value = nv
				changed = true
			}
		}
		if !changed {
			return raw, false, nil
		}
		return obj.Bytes(), true, nil
	case '[':
		items := splitArray(raw)
		changed := false
		for i, it := range items {
			nv, c, err := rewrite(it, fn, escapes)
			if err != nil {
				return nil, false, err
			}
			if c {
				items[i] = nv
				changed = true
			}
		}
		if !changed {
			return raw, false, nil
		}
		var b []byte
		b = append(b, '[')
		for i, it := range items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, it...)
		}
		return append(b, ']'), true, nil
	}
	return raw, false, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
