package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/promsgateway/gateway/mapping"
)

// Line is one record read from an export file: its line number (the first
// line of a record is 1; a CSV header is line 1, so its first record is
// line 2) and its JSON, or the problems that kept it from being read.
type Line struct {
	Number   int
	Record   []byte
	Problems mapping.Problems
}

// maxLine bounds one NDJSON line (one record).
const maxLine = 16 << 20

// ReadNDJSON reads newline-delimited JSON, one record per line; blank lines
// are skipped. fn is called for every record in order; an error from fn
// stops the reading and is returned.
func ReadNDJSON(r io.Reader, fn func(Line) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if err := fn(Line{Number: n, Record: append([]byte(nil), b...)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}

// ReadCSV reads the platform's flat CSV export: a header row of field paths
// in the record's JSON names (patient.id, patient.given, episodes[0].joint,
// episodes[0].responses[1].answers.4, ...) and one record per row. A cell
// of a list field (patient.given, answers.*, ...) holds its values
// separated by '|'; an empty cell is an absent field. Cells are typed by
// the record model: a number field must hold a number, a yes/no field
// true or false.
func ReadCSV(r io.Reader, fn func(Line) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	paths := make([][]segment, len(header))
	var bad mapping.Problems
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		header[i] = h
		p, err := parsePath(h)
		switch {
		case err != nil:
			bad = append(bad, mapping.Problem{Field: h, Reason: err.Error()})
		case seen[h]:
			bad = append(bad, mapping.Problem{Field: h, Reason: "the column appears twice"})
		}
		seen[h] = true
		paths[i] = p
	}
	if len(bad) > 0 {
		return fmt.Errorf("csv header: %v", bad)
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// An unclosed quote runs to the end of the file: no row after a
			// syntax error can be trusted, so the file stops here.
			return fmt.Errorf("unreadable CSV (%v): no row after it can be trusted; correct the file and import it again", err)
		}
		// A record's line is where it starts (cells may span lines).
		line, _ := cr.FieldPos(0)
		l := Line{Number: line}
		if len(row) != len(header) {
			l.Problems = mapping.Problems{{Reason: fmt.Sprintf("the row has %d cells; the header has %d", len(row), len(header))}}
		} else {
			l.Record, l.Problems = unflatten(header, paths, row)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
}

// segment is one step of a CSV field path: a JSON name and, for a list
// element, its index.
type segment struct {
	name  string
	index int // -1: not a list element
}

var segmentRE = regexp.MustCompile(`^([A-Za-z0-9_\-]+)(?:\[(\d{1,4})\])?$`)

func parsePath(h string) ([]segment, error) {
	if h == "" {
		return nil, fmt.Errorf("empty column name")
	}
	var out []segment
	for _, part := range strings.Split(h, ".") {
		m := segmentRE.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("%q is not a field path such as episodes[0].joint", h)
		}
		s := segment{name: m[1], index: -1}
		if m[2] != "" {
			s.index, _ = strconv.Atoi(m[2])
		}
		out = append(out, s)
	}
	return out, nil
}

var recordType = reflect.TypeOf(mapping.Record{})

// unflatten builds a record's JSON from a CSV row, typing each cell by the
// record model.
func unflatten(header []string, paths [][]segment, row []string) ([]byte, mapping.Problems) {
	root := map[string]any{}
	var problems mapping.Problems
	for i, cell := range row {
		if cell == "" {
			continue
		}
		if err := place(root, recordType, paths[i], cell); err != nil {
			problems = append(problems, mapping.Problem{Field: header[i], Reason: err.Error()})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	b, err := json.Marshal(compactLists(root))
	if err != nil {
		return nil, mapping.Problems{{Reason: err.Error()}}
	}
	return b, nil
}

// place sets the value at path in node, creating objects and lists on the
// way; t is the Go type at node.
func place(node map[string]any, t reflect.Type, path []segment, cell string) error {
	seg := path[0]
	ft, err := fieldType(t, seg.name)
	if err != nil {
		return err
	}
	if seg.index >= 0 {
		if ft.Kind() != reflect.Slice {
			return fmt.Errorf("%s is not a list", seg.name)
		}
		list, _ := node[seg.name].(map[int]any)
		if list == nil {
			list = map[int]any{}
			node[seg.name] = list
		}
		et := ft.Elem()
		if len(path) == 1 {
			v, err := typed(et, cell)
			if err != nil {
				return err
			}
			list[seg.index] = v
			return nil
		}
		child, _ := list[seg.index].(map[string]any)
		if child == nil {
			child = map[string]any{}
			list[seg.index] = child
		}
		return place(child, deref(et), path[1:], cell)
	}
	if len(path) == 1 {
		v, err := typed(ft, cell)
		if err != nil {
			return err
		}
		node[seg.name] = v
		return nil
	}
	if ft.Kind() == reflect.Map {
		// answers.<item code>: the rest of the path is the key.
		m, _ := node[seg.name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			node[seg.name] = m
		}
		if len(path) != 2 || path[1].index >= 0 {
			return fmt.Errorf("%s takes one key, e.g. %s.1", seg.name, seg.name)
		}
		v, err := typed(ft.Elem(), cell)
		if err != nil {
			return err
		}
		m[path[1].name] = v
		return nil
	}
	child, _ := node[seg.name].(map[string]any)
	if child == nil {
		child = map[string]any{}
		node[seg.name] = child
	}
	return place(child, deref(ft), path[1:], cell)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType finds the struct field with JSON name name.
func fieldType(t reflect.Type, name string) (reflect.Type, error) {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s has no fields", t)
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("json"), ",")[0] == name {
			return f.Type, nil
		}
	}
	return nil, fmt.Errorf("%q is not a field of the record (see docs/internal-model.md)", name)
}

// typed converts a cell to the JSON value of a field of type t.
func typed(t reflect.Type, cell string) (any, error) {
	t = deref(t)
	switch t.Kind() {
	case reflect.String:
		return cell, nil
	case reflect.Int, reflect.Int64:
		n, err := strconv.Atoi(strings.TrimSpace(cell))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", cell)
		}
		return n, nil
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", cell)
		}
		return f, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(cell))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", cell)
		}
		return b, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return strings.Split(cell, "|"), nil
		}
	}
	return nil, fmt.Errorf("a %s cannot be given in one cell; give its fields as separate columns", t)
}

// compactLists turns the index maps place builds into JSON arrays; a gap
// in the indexes keeps its place as null, which Check then reports.
func compactLists(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = compactLists(e)
		}
		return x
	case map[int]any:
		n := 0
		for i := range x {
			n = max(n, i+1)
		}
		out := make([]any, n)
		for i, e := range x {
			out[i] = compactLists(e)
		}
		return out
	}
	return v
}

// WriteCSV writes records in the flat CSV layout ReadCSV reads: one column
// per field path any record uses, in first-seen order. An item left blank
// (an empty answer list) has no cell: blank and absent mean the same to
// scoring.
func WriteCSV(w io.Writer, records []*mapping.Record) error {
	var order []string
	seen := map[string]bool{}
	rows := make([]map[string]string, len(records))
	for i, r := range records {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		rows[i] = map[string]string{}
		flatten("", v, rows[i], func(path string) {
			if !seen[path] {
				seen[path] = true
				order = append(order, path)
			}
		})
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(order); err != nil {
		return err
	}
	for _, row := range rows {
		cells := make([]string, len(order))
		for i, p := range order {
			cells[i] = row[p]
		}
		if err := cw.Write(cells); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func flatten(path string, v any, row map[string]string, add func(string)) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortKeys(keys)
		for _, k := range keys {
			flatten(join(k), x[k], row, add)
		}
	case []any:
		if len(x) == 0 {
			return
		}
		if _, scalar := x[0].(string); scalar {
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i], _ = e.(string)
			}
			add(path)
			row[path] = strings.Join(parts, "|")
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), e, row, add)
		}
	case nil:
	case string:
		add(path)
		row[path] = x
	case float64:
		add(path)
		row[path] = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		add(path)
		row[path] = strconv.FormatBool(x)
	}
}

// sortKeys orders an object's keys: numeric item codes by number, then the
// rest alphabetically, so answers.2 comes before answers.10.
func sortKeys(keys []string) {
	less := func(a, b string) bool {
		na, ea := strconv.Atoi(a)
		nb, eb := strconv.Atoi(b)
		switch {
		case ea == nil && eb == nil:
			return na < nb
		case ea == nil:
			return true
		case eb == nil:
			return false
		}
		return a < b
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && less(keys[j], keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}
