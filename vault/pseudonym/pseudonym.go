// Package pseudonym gives patients pseudonyms for pseudonymised exports and
// registry submissions, and links a pseudonym back to its patient for key
// holders only. The construction and its threat model are in
// docs/pseudonymisation.md.
//
// A pseudonym is the HMAC-SHA256 of (domain, patient), under the key
// holder's pseudonym key at a fixed version, cut to 60 bits and written as
// 12 Crockford base32 characters with a check character ("7K3Q-M2XD-9T4B-R").
// The same patient gets the same pseudonym in a domain, unrelated ones in
// different domains, and the same one after any key rotation. Beside each
// pseudonym the gateway keeps an escrow: the patient reference encrypted
// with the domain's escrow key, which the gateway can seal but only the
// domain's key holders can open.
package pseudonym

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/promsgateway/gateway/vault"
)

// EscrowStore keeps the escrows of pseudonyms.
type EscrowStore interface {
	// Escrows returns the escrows held for pseudonyms of domain; pseudonyms
	// without one are absent from the map.
	Escrows(ctx context.Context, domain string, pseudonyms []string) (map[string]string, error)
	// PutEscrows records escrows; an escrow already held is kept.
	PutEscrows(ctx context.Context, domain string, escrows map[string]string) error
}

// Service computes pseudonyms and re-identifies them.
type Service struct {
	keys  vault.Pseudonyms
	store EscrowStore
}

// New returns a Service.
func New(keys vault.Pseudonyms, store EscrowStore) *Service {
	return &Service{keys: keys, store: store}
}

// Errors a caller can act on.
var (
	ErrDomain  = errors.New("a pseudonym domain is study-<id>, site-<code> or registry-<name> (letters, digits, '.', '_' and '-')")
	ErrCode    = errors.New("not a pseudonym: 12 Crockford base32 characters and a check character, such as 7K3Q-M2XD-9T4B-R")
	ErrUnknown = errors.New("no patient has this pseudonym in this domain")
)

// ValidDomain reports whether d names a pseudonym domain.
func ValidDomain(d string) bool {
	kind, name, ok := strings.Cut(d, "-")
	if !ok || name == "" || len(d) > 100 || (kind != "study" && kind != "site" && kind != "registry") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Pseudonyms returns the pseudonym of each patient id in domain, recording
// the escrows of those not seen before (one escrow call for all of them).
func (s *Service) Pseudonyms(ctx context.Context, domain string, patientIDs []string) ([]string, error) {
	if !ValidDomain(domain) {
		return nil, ErrDomain
	}
	inputs := make([][]byte, len(patientIDs))
	for i, id := range patientIDs {
		inputs[i] = digestInput(domain, id)
	}
	digests, err := s.keys.PseudonymHMAC(ctx, inputs)
	if err != nil {
		return nil, fmt.Errorf("pseudonyms: %w", err)
	}
	codes := make([]string, len(digests))
	for i, d := range digests {
		codes[i] = encode(d)
	}
	held, err := s.store.Escrows(ctx, domain, codes)
	if err != nil {
		return nil, fmt.Errorf("pseudonyms: %w", err)
	}
	var (
		missing []string
		refs    [][]byte
	)
	seen := map[string]bool{}
	for i, c := range codes {
		if _, ok := held[c]; !ok && !seen[c] {
			seen[c] = true
			missing = append(missing, c)
			refs = append(refs, []byte("Patient/"+patientIDs[i]))
		}
	}
	if len(missing) > 0 {
		sealed, err := s.keys.SealEscrow(ctx, domain, refs)
		if err != nil {
			return nil, fmt.Errorf("pseudonyms: %w", err)
		}
		escrows := make(map[string]string, len(missing))
		for i, c := range missing {
			escrows[c] = sealed[i]
		}
		if err := s.store.PutEscrows(ctx, domain, escrows); err != nil {
			return nil, fmt.Errorf("pseudonyms: %w", err)
		}
	}
	return codes, nil
}

// Reidentify returns the patient reference ("Patient/<id>") behind a
// pseudonym, opened with the key holder's own credential, and the holder's
// name for the audit trail. The key holder (Vault policy) decides; the
// gateway's own credential cannot open escrows. A credential that may not
// is vault.ErrDenied.
func (s *Service) Reidentify(ctx context.Context, credential, domain, code string) (patient, holder string, err error) {
	holder, herr := s.keys.Holder(ctx, credential)
	if herr != nil {
		holder = "unidentified caller"
	}
	if !ValidDomain(domain) {
		return "", holder, ErrDomain
	}
	code, err = Normalize(code)
	if err != nil {
		return "", holder, err
	}
	if herr != nil {
		return "", holder, herr
	}
	held, err := s.store.Escrows(ctx, domain, []string{code})
	if err != nil {
		return "", holder, err
	}
	escrow, ok := held[code]
	if !ok {
		return "", holder, ErrUnknown
	}
	ref, err := s.keys.OpenEscrow(ctx, credential, domain, escrow)
	if err != nil {
		return "", holder, err
	}
	return string(ref), holder, nil
}

func digestInput(domain, patientID string) []byte {
	return []byte("pseudonym\x00" + domain + "\x00" + patientID)
}

// Crockford's base32 alphabet, and the check alphabet (mod 37).
const (
	alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	checks   = alphabet + "*~$=U"
)

// codeLen is the number of base32 characters (60 bits).
const codeLen = 12

// encode writes the first 60 bits of a digest as a pseudonym.
func encode(digest []byte) string {
	var v uint64
	for _, b := range digest[:8] {
		v = v<<8 | uint64(b)
	}
	v >>= 4 // 60 bits
	raw := make([]byte, codeLen)
	for i := codeLen - 1; i >= 0; i-- {
		raw[i] = alphabet[v&31]
		v >>= 5
	}
	return format(string(raw))
}

// format groups 12 characters in fours and appends the check character.
func format(raw string) string {
	return raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + string(checks[checksum(raw)])
}

// checksum is Crockford's check value: the number mod 37.
func checksum(raw string) int {
	m := 0
	for i := 0; i < len(raw); i++ {
		m = (m*32 + strings.IndexByte(alphabet, raw[i])) % 37
	}
	return m
}

// Normalize reads a pseudonym as a person may type it (any case, with or
// without hyphens and spaces, I and L for 1, O for 0), checks its check
// character, and returns it in canonical form.
func Normalize(code string) (string, error) {
	var raw []byte
	for _, c := range strings.ToUpper(code) {
		switch {
		case c == '-' || c == ' ':
			continue
		case c == 'I' || c == 'L':
			c = '1'
		case c == 'O':
			c = '0'
		}
		if c > 127 {
			return "", ErrCode
		}
		raw = append(raw, byte(c))
	}
	if len(raw) != codeLen+1 {
		return "", ErrCode
	}
	for _, c := range raw[:codeLen] {
		if strings.IndexByte(alphabet, c) < 0 {
			return "", ErrCode
		}
	}
	if checks[checksum(string(raw[:codeLen]))] != raw[codeLen] {
		return "", fmt.Errorf("%w (the check character does not match: mistyped?)", ErrCode)
	}
	return format(string(raw[:codeLen])), nil
}
