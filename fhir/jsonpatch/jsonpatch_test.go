package jsonpatch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestOfficialCases runs the JSON Patch cases shipped in ../shared (RFC 6902
// appendix A and its error cases).
func TestOfficialCases(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "conformance", "patch", "json-patch-tests.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test material missing in CI: %v", err)
		}
		t.Skipf("shared test material not present: %v", err)
	}
	var cases []struct {
		Comment  string
		Doc      json.RawMessage
		Patch    json.RawMessage
		Expected json.RawMessage
		Error    string
		Disabled bool
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		t.Run(c.Comment, func(t *testing.T) {
			if c.Disabled {
				t.Skip("disabled in the official file")
			}
			got, err := Apply(c.Doc, c.Patch)
			if c.Error != "" {
				if err == nil {
					t.Fatalf("applied %s; want error %q", got, c.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			assertJSONEqual(t, got, c.Expected)
		})
	}
}

func assertJSONEqual(t *testing.T, got, want []byte) {
	t.Helper()
	g, err1 := decode(got)
	w, err2 := decode(want)
	if err1 != nil || err2 != nil || !equal(g, w) {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
		wantErr                bool
	}{
		{"keeps member order", `{"resourceType":"Patient","id":"1","active":true}`, `[{"op":"replace","path":"/active","value":false}]`, `{"resourceType":"Patient","id":"1","active":false}`, false},
		{"keeps number text", `{"a":1.50,"b":1}`, `[{"op":"remove","path":"/b"}]`, `{"a":1.50}`, false},
		{"escaped pointer", `{"a/b":1,"m~n":2}`, `[{"op":"remove","path":"/a~1b"},{"op":"replace","path":"/m~0n","value":3}]`, `{"m~n":3}`, false},
		{"append with dash", `{"a":[1]}`, `[{"op":"add","path":"/a/-","value":2}]`, `{"a":[1,2]}`, false},
		{"atomic on failure", `{"a":1}`, `[{"op":"remove","path":"/a"},{"op":"test","path":"/a","value":1}]`, ``, true},
		{"leading zero index", `{"a":[1,2]}`, `[{"op":"remove","path":"/a/01"}]`, ``, true},
		{"move into own child", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a/c"}]`, ``, true},
		{"test numbers by value", `{"a":1.0}`, `[{"op":"test","path":"/a","value":1}]`, `{"a":1.0}`, false},
		{"unknown op", `{}`, `[{"op":"frob","path":"/a"}]`, ``, true},
		{"missing value", `{}`, `[{"op":"add","path":"/a"}]`, ``, true},
		{"not an array", `{}`, `{"op":"add"}`, ``, true},
		{"copy is deep", `{"a":{"x":1}}`, `[{"op":"copy","from":"/a","path":"/b"},{"op":"replace","path":"/b/x","value":2}]`, `{"a":{"x":1},"b":{"x":2}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply([]byte(tc.doc), []byte(tc.patch))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %s; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}
