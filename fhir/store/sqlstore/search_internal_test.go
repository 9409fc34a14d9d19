package sqlstore

import (
	"net/url"
	"testing"

	"github.com/promsgateway/gateway/fhir/search"
)

func TestPlanIsFixed(t *testing.T) {
	tests := []struct {
		typ, query string
		fixed      bool
	}{
		{"Observation", "patient=Patient/p1&code=http://loinc.org|8302-2&date=ge2025-01-01", true},
		{"Observation", "subject=Patient/p1", true},
		{"Observation", "patient=Patient/p1&value-quantity=gt5", true},
		{"Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009", true},
		{"Patient", "identifier=x&gender=female", true},
		// No reference or identifier to drive it.
		{"Observation", "code=http://loinc.org|8302-2&date=ge2025-01-01", false},
		{"Observation", "status=final", false},
		// A string clause, a sort, a chain, _has: planned with the values.
		{"Patient", "identifier=x&name=smi", false},
		{"Observation", "patient=Patient/p1&_sort=date", false},
		{"Observation", "patient.name=smith", false},
		{"Patient", "_has:Observation:patient:code=1234", false},
		{"Observation", "patient:missing=true", false},
	}
	for _, tc := range tests {
		params, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		q, err := search.R4().Parse(tc.typ, params, true)
		if err != nil {
			t.Fatalf("%s?%s: %v", tc.typ, tc.query, err)
		}
		if got := planIsFixed(q); got != tc.fixed {
			t.Errorf("%s?%s: planIsFixed %v; want %v", tc.typ, tc.query, got, tc.fixed)
		}
	}
}

// rebind numbers PostgreSQL's placeholders, and on SQLite writes those of
// LIMIT and of comparisons with param as +?, which SQLite does not read
// while planning (planValueFree).
func TestRebind(t *testing.T) {
	tests := []struct {
		d        dialect
		in, want string
	}{
		{postgresDialect, "SELECT 1 FROM t WHERE a = ? AND s.param = ? LIMIT ?", "SELECT 1 FROM t WHERE a = $1 AND s.param = $2 LIMIT $3"},
		{postgresDialect, "SELECT 1", "SELECT 1"},
		{sqliteDialect, "SELECT 1 FROM t WHERE a = ? AND s.param = ? LIMIT ?", "SELECT 1 FROM t WHERE a = ? AND s.param = +? LIMIT +?"},
		{sqliteDialect, "SELECT 1 FROM s WHERE s.param = '_compartment' AND s.val = ?", "SELECT 1 FROM s WHERE s.param = '_compartment' AND s.val = ?"},
		{sqliteDialect, "SELECT 1 FROM s WHERE s.param IN (?, ?)", "SELECT 1 FROM s WHERE s.param IN (?, ?)"},
	}
	for _, tc := range tests {
		if got := tc.d.rebind(tc.in); got != tc.want {
			t.Errorf("%s rebind(%q) = %q; want %q", tc.d.name, tc.in, got, tc.want)
		}
	}
}

func TestProbeExpressions(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"s.param = ?", "s.param = ?"},
		{"s.sys = ? AND s.val = ?", "(s.sys || '') = ? AND (s.val || '') = ?"},
		{"(s.val >= ? AND s.val < ?)", "((s.val || '') >= ? AND (s.val || '') < ?)"},
		{"s.val", "(s.val || '')"},
		{"lower(s.val) LIKE ?", "lower((s.val || '')) LIKE ?"},
		// Not the columns: other aliases, longer names, other columns.
		{"cs.val = ? AND s.value = ? AND s.vals = ? AND s.sys_x = ? AND s1.val = ?", "cs.val = ? AND s.value = ? AND s.vals = ? AND s.sys_x = ? AND s1.val = ?"},
		{"s.raw <> '#identifier' AND s.dlow < ?", "s.raw <> '#identifier' AND s.dlow < ?"},
		{"x.s.val", "x.(s.val || '')"},
	}
	for _, tt := range tests {
		if got := probeExpressions(tt.in); got != tt.want {
			t.Errorf("probeExpressions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
