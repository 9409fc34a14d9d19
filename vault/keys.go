// Package vault owns key management for the gateway. Callers never see a key
// encryption key: they ask a Keys implementation for fresh data keys (returned
// both in plaintext, for immediate use, and wrapped, for storage next to the
// ciphertext) and hand wrapped keys back to have them unwrapped.
//
// Two implementations exist: the embedded development keystore in
// vault/devkeystore (a local key file, refused in production) and the
// HashiCorp Vault transit implementation.
package vault

import (
	"context"
	"errors"
)

// DataKey is a 256-bit data encryption key as issued by Keys: Plaintext is
// used in memory to encrypt, Wrapped is stored beside the ciphertext and is
// useless without the key holder.
type DataKey struct {
	Plaintext []byte
	Wrapped   []byte
}

// Keys issues and unwraps data keys. Implementations must be safe for
// concurrent use and must never expose their key encryption keys.
type Keys interface {
	// NewDataKey returns a fresh random 256-bit data key with its wrapped form.
	NewDataKey(ctx context.Context) (DataKey, error)
	// Unwrap returns the plaintext of a data key previously issued by NewDataKey.
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
	// HMAC returns the HMAC-SHA256 of each input under the key holder's
	// blind-index key, in one call. Equal inputs give equal digests for the
	// life of that key; rotating the encryption key does not change them.
	HMAC(ctx context.Context, inputs [][]byte) ([][]byte, error)
	// Ping reports whether the key holder can be reached (used by /readyz).
	Ping(ctx context.Context) error
	// Name describes the implementation for logs and readiness reports.
	Name() string
}

// Pseudonyms is what a key holder offers for pseudonymisation
// (vault/pseudonym): a keyed digest separate from the blind-index one, and
// escrows that the gateway can seal for a pseudonym domain but only that
// domain's key holders can open, with their own credentials.
type Pseudonyms interface {
	// PseudonymHMAC is HMAC-SHA256 under the pseudonym key at a fixed
	// version, so pseudonyms survive key rotation.
	PseudonymHMAC(ctx context.Context, inputs [][]byte) ([][]byte, error)
	// SealEscrow encrypts each plaintext with the escrow key of domain.
	SealEscrow(ctx context.Context, domain string, plaintexts [][]byte) ([]string, error)
	// OpenEscrow decrypts an escrow with a key holder's own credential;
	// ErrDenied when that credential may not open domain's escrows.
	OpenEscrow(ctx context.Context, holderCredential, domain, sealed string) ([]byte, error)
	// Holder names the key holder a credential belongs to, for the audit
	// trail, without revealing the credential.
	Holder(ctx context.Context, holderCredential string) (string, error)
}

// Signer signs and verifies with the key holder's signing key (registry
// submissions and receipts). Signatures name the key version that made
// them, so they verify after the key is rotated.
type Signer interface {
	// Sign returns a signature of each input (SHA-256 prehash).
	Sign(ctx context.Context, inputs [][]byte) ([]string, error)
	// Verify reports, for each input, whether its signature is valid.
	Verify(ctx context.Context, inputs [][]byte, signatures []string) ([]bool, error)
}

// ErrDenied is returned (wrapped) when the key holder refuses a credential.
var ErrDenied = errors.New("permission denied by the key holder")

// Availability is implemented by key holders that can lose contact with
// their service. Envelope asks it before sealing with a cached data key, so
// that writes stop (fail closed) while the key service is down even though
// a key is still in memory; reads go on with cached keys.
type Availability interface {
	Available() error
}

// ErrUnavailable is returned (wrapped) when the key holder cannot be reached;
// callers fail closed and report 503.
var ErrUnavailable = errors.New("key service unavailable")

// ErrInvalidCiphertext is returned when a wrapped key or a sealed record fails
// authentication: it was tampered with, moved, or sealed under another key.
var ErrInvalidCiphertext = errors.New("ciphertext failed authentication")
