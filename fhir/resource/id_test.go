package resource

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestValidID(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"Patient-1.2", true},
		{"0f3a2b7c-9d1e-4c55-8a7b-2e6f1d0c9b8a", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"a_b", false},
		{"a b", false},
		{"a/b", false},
		{"Zoë", false},
		{"a\x00", false},
		{"a\xff", false},
		{"$everything", false},
	}
	for _, c := range cases {
		if got := ValidID(c.id); got != c.want {
			t.Errorf("ValidID(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}

// NewID's ids are valid FHIR ids, UUIDs of version 7 and the RFC 9562
// variant, distinct, and, made one after another, in increasing order as
// text: what the database indexes keyed by id rely on to append.
func TestNewID(t *testing.T) {
	const n = 10000
	prev := ""
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		id := NewID()
		if !ValidID(id) || len(id) != 36 {
			t.Fatalf("NewID() = %q: not a valid 36-character FHIR id", id)
		}
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("NewID() = %q: version %d, variant %v, error %v; want a version 7 UUID", id, u.Version(), u.Variant(), err)
		}
		if seen[id] {
			t.Fatalf("NewID() returned %q twice", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("NewID() = %q after %q: not increasing", id, prev)
		}
		prev = id
	}
}
