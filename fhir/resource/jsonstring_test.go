package resource

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlainPrefix puts every byte value at every place of strings longer
// and shorter than the eight bytes plainPrefix reads at once.
func TestPlainPrefix(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80 }
	for n := 1; n <= 19; n++ {
		for at := 0; at < n; at++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[at] = byte(c)
				want := n
				if !plain(byte(c)) {
					want = at
				}
				if got := plainPrefix(string(b)); got != want {
					t.Fatalf("plainPrefix(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
	if got := plainPrefix(""); got != 0 {
		t.Errorf("plainPrefix(\"\") = %d", got)
	}
}

// TestAppendStringMatchesEncodingJSON compares AppendString with
// encoding/json (HTML escaping off) over random strings drawn from every
// class the two treat apart. AppendLogString is compared with log/slog in
// cmd/gateway.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	pieces := []string{"a", "Z", "9", " ", "/", "<", ">", "&", "'", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f",
		"é", "日", "😀", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe6\x97", "\xed\xa0\x80", "https://fhir.nhs.uk/Id/nhs-number"}
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 5000; i++ {
		var sb strings.Builder
		for n := rng.IntN(12); n > 0; n-- {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := sb.String()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendString([]byte("x"), s)); got != "x"+strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("%q: AppendString wrote %s, encoding/json %s", s, got, want.String())
		}
	}
}
