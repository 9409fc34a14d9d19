package mapping_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/synthetic"
)

// schema is docs/internal-model.schema.json, decoded.
func schema(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "internal-model.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The schema names exactly the fields of the Go model, type by type.
func TestSchemaMatchesModel(t *testing.T) {
	defs := schema(t)["$defs"].(map[string]any)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		def, ok := defs[rt.Name()].(map[string]any)
		if !ok {
			t.Errorf("the schema has no $defs/%s", rt.Name())
			return
		}
		props := def["properties"].(map[string]any)
		var goFields, schemaFields []string
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			goFields = append(goFields, strings.Split(f.Tag.Get("json"), ",")[0])
			walk(f.Type)
		}
		for p := range props {
			schemaFields = append(schemaFields, p)
		}
		sort.Strings(goFields)
		sort.Strings(schemaFields)
		if !reflect.DeepEqual(goFields, schemaFields) {
			t.Errorf("%s: Go fields %v, schema properties %v", rt.Name(), goFields, schemaFields)
		}
	}
	walk(reflect.TypeOf(mapping.Record{}))
}

// Test records and generated ones are valid against the schema; documents
// it forbids are not.
func TestSchemaValidates(t *testing.T) {
	s := schema(t)
	files, _ := filepath.Glob(filepath.Join("ukcore", "testdata", "*.json"))
	var docs []any
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var d any
		json.Unmarshal(raw, &d)
		docs = append(docs, d)
	}
	g := synthetic.New(synthetic.Options{Seed: 5, Now: time.Now().UTC()})
	for i := 0; i < 100; i++ {
		raw, _ := json.Marshal(g.Next())
		var d any
		json.Unmarshal(raw, &d)
		docs = append(docs, d)
	}
	if len(docs) < 103 {
		t.Fatalf("%d documents", len(docs))
	}
	for i, d := range docs {
		if err := validate(s, s, d, "$"); err != nil {
			t.Errorf("document %d: %v", i, err)
		}
	}
	bad := map[string]string{
		"unknown field": `{"source":{"system":"https://x","record":"r","updated":"2026-01-01"},"patient":{"id":"p","family":"F","birthDate":"1950-01-01","gender":"female","eyes":"blue"}}`,
		"bad enum":      `{"source":{"system":"https://x","record":"r","updated":"2026-01-01"},"patient":{"id":"p","family":"F","birthDate":"1950-01-01","gender":"f"}}`,
		"missing":       `{"source":{"system":"https://x","record":"r","updated":"2026-01-01"}}`,
		"bad date":      `{"source":{"system":"https://x","record":"r","updated":"2026-01-01"},"patient":{"id":"p","family":"F","birthDate":"1/1/1950","gender":"female"}}`,
	}
	for name, raw := range bad {
		var d any
		json.Unmarshal([]byte(raw), &d)
		if validate(s, s, d, "$") == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// validate checks v against the subset of JSON Schema the model's schema
// uses: $ref, type, properties, additionalProperties, required, enum,
// items, pattern, minLength, minimum, maximum.
func validate(root, s map[string]any, v any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		return validate(root, root["$defs"].(map[string]any)[name].(map[string]any), v, at)
	}
	if enum, ok := s["enum"].([]any); ok {
		for _, e := range enum {
			if e == v {
				return nil
			}
		}
		return fmt.Errorf("%s: %v not in %v", at, v, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", at)
		}
		for _, r := range asList(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: %s is required", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, e := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				switch ap := s["additionalProperties"].(type) {
				case bool:
					if !ap {
						return fmt.Errorf("%s: unknown property %s", at, k)
					}
					continue
				case map[string]any:
					ps = ap
				default:
					continue
				}
			}
			if err := validate(root, ps, e, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: not an array", at)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range l {
				if err := validate(root, items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: not a string", at)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", at, str, p)
		}
		if n, ok := s["minLength"].(float64); ok && float64(len(str)) < n {
			return fmt.Errorf("%s: too short", at)
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok || (s["type"] == "integer" && n != math.Trunc(n)) {
			return fmt.Errorf("%s: %v is not a %s", at, v, s["type"])
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			return fmt.Errorf("%s: %v below %v", at, n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			return fmt.Errorf("%s: %v above %v", at, n, hi)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: not a boolean", at)
		}
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
