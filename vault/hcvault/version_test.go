package hcvault

import "testing"

func TestWrappedVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"vault:v1:abc", 1},
		{"vault:v12:abc", 12},
		{"vault:v:abc", 0},
		{"vault:vx:abc", 0},
		{"devks:v1:abc", 0},
		{"", 0},
	} {
		if got := WrappedVersion([]byte(tc.in)); got != tc.want {
			t.Errorf("WrappedVersion(%q) = %d; want %d", tc.in, got, tc.want)
		}
	}
}
