package resource

import (
	"strings"
	"testing"
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
