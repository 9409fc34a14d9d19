package resource

import "unicode/utf8"

// AppendString appends s as a JSON string escaped as encoding/json escapes
// it without HTML escaping: quote and backslash, control characters (\b,
// \f, \n, \r and \t by name, the others as \u00XX), U+2028 and U+2029, and
// invalid UTF-8 as U+FFFD.
func AppendString(b []byte, s string) []byte { return appendString(b, s, true) }

// AppendLogString appends s as a JSON string escaped as log/slog's JSON
// handler escapes it: as AppendString, but with \b and \f as \u0008 and
// \u000c.
func AppendLogString(b []byte, s string) []byte { return appendString(b, s, false) }

func appendString(b []byte, s string, namedBF bool) []byte {
	b = append(b, '"')
	i := plainPrefix(s)
	b = append(b, s[:i]...)
	if i < len(s) {
		b = appendEscaped(b, s[i:], namedBF)
	}
	return append(b, '"')
}

// plainPrefix returns the length of the longest prefix of s that needs no
// escaping in JSON: printable ASCII other than quote and backslash, which
// is all of nearly every string a server writes. It reads eight bytes at a
// time; a byte's high bit is set in the word test when the byte is below
// 0x20, is a quote or a backslash (its XOR with one is zero), or is not
// ASCII, and the test is exact for whether any of the eight is such.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[7])<<56 | uint64(w[6])<<48 | uint64(w[5])<<40 | uint64(w[4])<<32 |
			uint64(w[3])<<24 | uint64(w[2])<<16 | uint64(w[1])<<8 | uint64(w[0])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		if (x|(x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if !plainByte[s[i]] {
			break
		}
	}
	return i
}

// plainByte holds whether a byte needs no escaping in a JSON string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

func appendEscaped(b []byte, s string, namedBF bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainByte[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b' && namedBF:
				b = append(b, '\\', 'b')
			case c == '\f' && namedBF:
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}
