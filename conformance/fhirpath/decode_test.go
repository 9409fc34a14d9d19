package fhirpath

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// standardDecode is what decodeJSON stands in for: encoding/json with
// UseNumber, refusing anything after the document but white space.
func standardDecode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, &json.SyntaxError{}
	}
	return v, nil
}

// decodeCases hold every branch of the grammar and of unescaping, valid
// and not.
var decodeCases = []string{
	`{}`, `[]`, `{"a":[]}`, ` { "a" : 1 , "b" : [ true , false , null ] } `,
	`{"a":1,"a":2}`, `{"resourceType":"Patient","name":[{"given":["Ann"]}]}`,
	`0`, `-0`, `1.5`, `-12.5e+3`, `1E-7`, `123456789012345678901234567890`, `0.1000`,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\u65e5"`, `"\ud83d\ude00"`, `"é日😀"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
	"\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", "\"\u2028\"",
	// refused
	``, ` `, `{`, `[`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{a:1}`,
	`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `tru`, `nul`, `falsey`, `truex`,
	`"unterminated`, `"bad \x escape"`, `"\u12"`, `"\u12g4"`, `"\ud83d\u12g4"`, "\"tab\there\"", "\"nl\nhere\"",
	`{} {}`, `{}x`, `[] ,`, "\xff", `{"a":1}}`,
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	inputs := append([]string{}, decodeCases...)
	dir := filepath.Join("..", "..", "..", "shared", "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no official examples in %s", dir)
		}
		t.Logf("official examples not present in %s: the hand-written cases only", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		compareDecoders(t, []byte(in))
	}
}

func compareDecoders(t *testing.T, in []byte) {
	t.Helper()
	want, werr := standardDecode(in)
	got, gerr := decodeJSON(in)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: decodeJSON error %v, encoding/json error %v", in, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decodeJSON gave %#v, encoding/json %#v", in, got, want)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) { compareDecoders(t, in) })
}

func TestDecodeJSONDepth(t *testing.T) {
	deep := bytes.Repeat([]byte("["), maxDecodeDepth+1)
	if _, err := decodeJSON(deep); err == nil {
		t.Error("decodeJSON accepted nesting deeper than its limit")
	}
	ok := append(bytes.Repeat([]byte("["), maxDecodeDepth), bytes.Repeat([]byte("]"), maxDecodeDepth)...)
	if _, err := decodeJSON(ok); err != nil {
		t.Errorf("decodeJSON refused nesting at its limit: %v", err)
	}
}
