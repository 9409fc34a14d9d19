package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestStamp(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name, in, want string
	}{
		{"adds id and meta after resourceType",
			`{"resourceType":"Patient","active":true}`,
			`{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2026-11-23T10:00:00.123456Z"},"active":true}`},
		{"keeps other meta members and their place",
			`{"resourceType":"Patient","active":true,"meta":{"profile":["x"],"versionId":"9"},"id":"old"}`,
			`{"resourceType":"Patient","active":true,"meta":{"profile":["x"],"versionId":"3","lastUpdated":"2026-11-23T10:00:00.123456Z"},"id":"p"}`},
		{"keeps number and string text",
			`{"resourceType":"Observation","valueQuantity":{"value":1.50},"note":[{"text":"<b>&amp;</b> é"}]}`,
			`{"resourceType":"Observation","id":"p","meta":{"versionId":"3","lastUpdated":"2026-11-23T10:00:00.123456Z"},"valueQuantity":{"value":1.50},"note":[{"text":"<b>&amp;</b> é"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Stamp([]byte(tc.in), "p", 3, at)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseObjectRefuses(t *testing.T) {
	for _, in := range []string{`[]`, `{"a":1,"a":2}`, `{"a":1} x`, `{"a":`, `"s"`, ``} {
		if _, err := ParseObject([]byte(in)); err == nil {
			t.Errorf("ParseObject(%q) accepted it", in)
		}
	}
}

func TestReadCompact(t *testing.T) {
	tests := []struct {
		name, in      string
		want, typ, id string
		err           string // a part of the error; "" for none
	}{
		{"compacts and reads the header", "{ \"resourceType\" : \"Patient\",\n \"id\":\"p1\", \"name\":[ {\"text\":\"a  b\"} ] }",
			`{"resourceType":"Patient","id":"p1","name":[{"text":"a  b"}]}`, "Patient", "p1", ""},
		{"no id", `{"resourceType":"Observation"}`, `{"resourceType":"Observation"}`, "Observation", "", ""},
		{"keeps escapes and HTML as sent", `{"resourceType":"Basic","text":{"div":"<b>\u00e9</b>"}}`,
			`{"resourceType":"Basic","text":{"div":"<b>\u00e9</b>"}}`, "Basic", "", ""},
		{"not UTF-8", "{\"resourceType\":\"Patient\",\"x\":\"\xff\"}", "", "", "", "not UTF-8"},
		{"not JSON", `{"resourceType":"Patient",}`, "", "", "", "invalid JSON: invalid character '}'"},
		{"trailing bytes", `{"resourceType":"Patient"} {}`, "", "", "", "invalid JSON"},
		{"not an object", `["Patient"]`, "", "", "", "expected a JSON object"},
		{"duplicate key", `{"resourceType":"Patient","id":"a","id":"b"}`, "", "", "", "duplicate"},
		{"no resourceType", `{"id":"a"}`, "", "", "", "resourceType is missing"},
		{"id not a string", `{"resourceType":"Patient","id":7}`, "", "", "", "id is not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, h, err := ReadCompact([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || h.Type != tc.typ || h.ID != tc.id {
				t.Errorf("got %s %+v; want %s {Type:%s ID:%s}", got, h, tc.want, tc.typ, tc.id)
			}
		})
	}
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		in  string
		max int
		ok  bool
	}{
		{`{"a":[{"b":1}]}`, 3, true},
		{`{"a":[{"b":1}]}`, 2, false},
		{`{"a":"[[[[[[[["}`, 1, true}, // brackets inside strings do not count
		{`{"a":"\"[[[["}`, 1, true},   // nor after an escaped quote
		{strings.Repeat("[", 100000), 64, false},
	}
	for _, tc := range tests {
		if err := CheckDepth([]byte(tc.in), tc.max); (err == nil) != tc.ok {
			t.Errorf("CheckDepth(%.30q, %d) = %v; want ok=%v", tc.in, tc.max, err, tc.ok)
		}
	}
}

func TestRewriteReferences(t *testing.T) {
	in := `{"resourceType":"Observation","subject":{"reference":"urn:uuid:1"},"performer":[{"reference":"urn:uuid:2"},{"reference":"Practitioner/x"}],"note":[{"text":"reference urn:uuid:1"}]}`
	got, err := RewriteReferences([]byte(in), func(s string) (string, bool) {
		m := map[string]string{"urn:uuid:1": "Patient/a", "urn:uuid:2": "Practitioner/b"}
		v, ok := m[s]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Observation","subject":{"reference":"Patient/a"},"performer":[{"reference":"Practitioner/b"},{"reference":"Practitioner/x"}],"note":[{"text":"reference urn:uuid:1"}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestSummaryAndElements(t *testing.T) {
	in := []byte(`{"resourceType":"Observation","id":"o","text":{"status":"generated","div":"<div/>"},"status":"final","code":{"text":"x"},"valueQuantity":{"value":1},"note":[{"text":"n"}]}`)
	got, err := Summary(in)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, keep := range []string{`"status":"final"`, `"code"`, `"valueQuantity"`, `SUBSETTED`} {
		if !strings.Contains(s, keep) {
			t.Errorf("summary lost %s: %s", keep, s)
		}
	}
	for _, drop := range []string{`"text":{"status"`, `"note"`} {
		if strings.Contains(s, drop) {
			t.Errorf("summary kept %s: %s", drop, s)
		}
	}
	el, _ := Elements(in, []string{"value"})
	if !strings.Contains(string(el), "valueQuantity") || strings.Contains(string(el), `"status"`) {
		t.Errorf("_elements=value: %s", el)
	}
}

// FuzzParseObject holds the hand-written scanner to encoding/json: the same
// members with the same values, or an error for anything that is not one
// JSON object with distinct keys.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a" : [1,{"b":"}"}] , "c\"d":"x\\y"} `, `{"a":1,"a":2}`, `[1]`, `{"a":}`, `{"\u0061":true,"b":null}`, `{"a":-1.5e3}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		obj, err := ParseObject([]byte(in))
		var ref map[string]json.RawMessage
		refErr := json.Unmarshal([]byte(in), &ref)
		if err != nil {
			if refErr == nil && ref != nil && distinctKeys(in) && utf8.ValidString(in) {
				t.Fatalf("ParseObject refused %q: %v", in, err)
			}
			return
		}
		if refErr != nil || ref == nil {
			t.Fatalf("ParseObject accepted %q, which is not a JSON object", in)
		}
		if len(obj) != len(ref) {
			t.Fatalf("%d members; encoding/json has %d", len(obj), len(ref))
		}
		for _, m := range obj {
			a, _ := Compact(m.Value)
			b, _ := Compact(ref[m.Key])
			if string(a) != string(b) {
				t.Fatalf("member %q = %s; encoding/json says %s", m.Key, a, b)
			}
			// String reads a string member as encoding/json does.
			var want string
			isString := json.Unmarshal(m.Value, &want) == nil && m.Value[0] == '"'
			if got, ok := obj.String(m.Key); ok != isString || got != want {
				t.Fatalf("String(%q) = %q, %v; encoding/json says %q, %v", m.Key, got, ok, want, isString)
			}
		}
		// Nothing a member holds makes the scanners of valid values read
		// out of bounds, whatever its bytes (they are valid here, and
		// their prefixes are not).
		for _, m := range obj {
			for n := 0; n <= len(m.Value); n++ {
				ParseValidObject(m.Value[:n])
				ArrayElements(m.Value[:n])
			}
		}
	})
}

// TestParseValidOnTruncatedInput: the scanners of valid values return an
// error (or nothing) on a prefix of a value, and never read past its end.
func TestParseValidOnTruncatedInput(t *testing.T) {
	for _, in := range []string{`{"a":1,"b":[1,{"c":"d\"e"}],"f":"g\\"}`, `[1,{"a":[2,3]},"x\"y",null]`} {
		for n := 0; n < len(in); n++ {
			ParseValidObject(json.RawMessage(in[:n]))
			ArrayElements(json.RawMessage(in[:n]))
		}
	}
	for _, in := range []string{`{`, `{"a"`, `{"a":1`, `{"`, `{"a":1,`, `{"a\`} {
		if _, err := ParseValidObject(json.RawMessage(in)); err == nil {
			t.Errorf("ParseValidObject(%q) = no error", in)
		}
	}
}

// TestParseObjectManyKeys: an object with many members, one repeated far
// apart, is refused, and one with distinct members is read whole (the
// repeated-key check uses a map past manyKeys members).
func TestParseObjectManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	distinct := b.String() + `"last":0}`
	obj, err := ParseObject([]byte(distinct))
	if err != nil || len(obj) != 5001 {
		t.Fatalf("ParseObject: %d members, %v", len(obj), err)
	}
	for _, dup := range []string{"k0", "k7", "k4999"} {
		if _, err := ParseObject([]byte(b.String() + `"` + dup + `":0}`)); err == nil || !strings.Contains(err.Error(), "duplicate") {
			t.Errorf("repeated %s: %v", dup, err)
		}
	}
}

// distinctKeys reports whether the top-level object in has no repeated key.
func distinctKeys(in string) bool {
	dec := json.NewDecoder(strings.NewReader(in))
	if _, err := dec.Token(); err != nil {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false
		}
		if seen[k.(string)] {
			return false
		}
		seen[k.(string)] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return true
}

// A key spelt with a JSON escape is still a reference.
func TestRewriteEscapedKey(t *testing.T) {
	raw := []byte(`{"resourceType":"Observation","subject":{"\u0072eference":"urn:uuid:1"}}`)
	out, err := RewriteReferences(raw, func(s string) (string, bool) { return "Patient/p", s == "urn:uuid:1" })
	if err != nil || !strings.Contains(string(out), `"Patient/p"`) {
		t.Errorf("%s, %v", out, err)
	}
}

// RewriteReferences commutes with Compact, which a transaction relies on to
// rewrite a body compacted before it (rest's precheck): on bodies laid out
// in every way JSON allows, and on each official R4 example.
func TestRewriteCommutesWithCompact(t *testing.T) {
	bodies := map[string]string{
		"indented": `{
  "resourceType" : "Observation",
  "subject" : { "reference" : "urn:uuid:1" , "display" : "a  b" },
  "performer" : [ { "reference" : "urn:uuid:2" } ,
    {"reference":"Practitioner/x"} ],
  "note" : [ { "text" : "reference urn:uuid:1" } ]
}`,
		"escaped key and value": "{\"resourceType\":\"Observation\",\r\n\t\"subject\": {\"\\u0072eference\" : \"urn:uuid:1\", \"display\":\"\\u00e9 \\\"q\\\" <&>\"}}",
		"nothing to rewrite":    `{ "resourceType": "Patient", "name": [ { "family": "reference" } ] }`,
		"deep":                  `{"resourceType":"Bundle","entry":[ {"resource":{"resourceType":"Provenance","target":[ {"reference":"urn:uuid:1"}, {"reference":"urn:uuid:2"} ],"agent":[{"who":{"reference":"urn:uuid:2"}}]}} ]}`,
	}
	dir := filepath.Join("..", "..", "..", "shared", "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("shared test material missing in CI")
		}
		t.Logf("shared examples not present (%s): the table's bodies only", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies[filepath.Base(f)] = string(raw)
	}
	// Every reference is rewritten, to a value that needs escaping.
	fn := func(ref string) (string, bool) { return "Patient/\u00e9<" + ref + ">\u2028", true }
	rewritten := 0
	for name, body := range bodies {
		compact, err := Compact([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		first, err := RewriteReferences(compact, fn)
		if err != nil {
			t.Fatalf("%s: rewrite of the compact body: %v", name, err)
		}
		late, err := RewriteReferences([]byte(body), fn)
		if err != nil {
			t.Fatalf("%s: rewrite: %v", name, err)
		}
		then, err := Compact(late)
		if err != nil {
			t.Fatalf("%s: compact of the rewrite: %v", name, err)
		}
		if string(first) != string(then) {
			t.Errorf("%s: rewriting the compact body gives\n%s\ncompacting the rewritten body gives\n%s", name, first, then)
		}
		if !bytes.Equal(first, compact) {
			rewritten++
		}
	}
	if rewritten < 3 {
		t.Errorf("only %d bodies had references rewritten: the test compares too little", rewritten)
	}
}

func BenchmarkStamp(b *testing.B) {
	raw := []byte(`{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"use":"official","family":"Smith","given":["Jane","Mary"]}],"gender":"female","birthDate":"1950-02-01","address":[{"line":["1 High Street"],"city":"Leeds","postalCode":"LS1 1AA"}]}`)
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	for b.Loop() {
		if _, err := Stamp(raw, "5f1c2c4e-8d59-4d43-9f55-6a1c2b7c9e01", 1, at); err != nil {
			b.Fatal(err)
		}
	}
}
