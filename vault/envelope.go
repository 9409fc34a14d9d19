package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// sealedFormat is the first byte of every sealed record, so the layout can
// change later without ambiguity.
const sealedFormat byte = 1

// Envelope encrypts records with AES-256-GCM under data keys issued by Keys
// (envelope encryption). A data key is reused for a bounded time and number of
// records before a new one is requested, and unwrapped keys are cached for a
// bounded time, so the key holder is not called for every record.
//
// A sealed record is: format byte, 2-byte big-endian wrapped-key length, the
// wrapped key, a 12-byte nonce, then the GCM ciphertext and tag. The caller's
// additional authenticated data (for resources: type, id and version) is bound
// into the tag, so a ciphertext cannot be moved to another row.
type Envelope struct {
	keys     Keys
	maxAge   time.Duration
	maxUses  int
	cacheTTL time.Duration

	mu      sync.Mutex
	current *activeKey
	cache   map[string]*cachedKey
}

type activeKey struct {
	wrapped []byte
	aead    cipher.AEAD
	issued  time.Time
	uses    int
}

type cachedKey struct {
	aead    cipher.AEAD
	expires time.Time
	uses    int
}

// maxCachedUses is how many records an unwrapped key opens before it is
// unwrapped again: with its lifetime, it bounds how long and how much a
// plaintext data key serves from memory.
const maxCachedUses = 100_000

// maxCachedKeys bounds the unwrapped-key cache; past it the cache is cleared.
const maxCachedKeys = 4096

// DataKeyMaxAge is how long the Envelope encrypts with one data key. A key
// rotation's rewrap waits this long before its final sweep, so that no
// record sealed under a data key wrapped before the rotation is missed.
const DataKeyMaxAge = 10 * time.Minute

// NewEnvelope returns an Envelope over keys. A data key encrypts at most
// 1,000,000 records or for DataKeyMaxAge, well inside GCM's random-nonce
// limits; unwrapped keys stay cached for 10 minutes.
func NewEnvelope(keys Keys) *Envelope {
	return NewEnvelopeMaxAge(keys, DataKeyMaxAge)
}

// NewEnvelopeMaxAge is NewEnvelope with another data-key lifetime (tests
// of key rotation shorten it).
func NewEnvelopeMaxAge(keys Keys, maxAge time.Duration) *Envelope {
	return &Envelope{
		keys:     keys,
		maxAge:   maxAge,
		maxUses:  1_000_000,
		cacheTTL: 10 * time.Minute,
		cache:    make(map[string]*cachedKey),
	}
}

// Seal encrypts plaintext, binding aad. It fails with ErrUnavailable while
// the key holder reports itself unavailable (Availability).
func (e *Envelope) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if a, ok := e.keys.(Availability); ok {
		if err := a.Available(); err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
	}
	k, err := e.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := make([]byte, 0, 3+len(k.wrapped)+12+len(plaintext)+16)
	out = append(out, sealedFormat)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.wrapped)))
	out = append(out, k.wrapped...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a record produced by Seal with the same aad.
func (e *Envelope) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 3 || sealed[0] != sealedFormat {
		return nil, fmt.Errorf("open: unknown record format: %w", ErrInvalidCiphertext)
	}
	n := int(binary.BigEndian.Uint16(sealed[1:3]))
	if len(sealed) < 3+n+12+16 {
		return nil, fmt.Errorf("open: record too short: %w", ErrInvalidCiphertext)
	}
	wrapped := sealed[3 : 3+n]
	nonce := sealed[3+n : 3+n+12]
	aead, err := e.aeadFor(ctx, wrapped)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, sealed[3+n+12:], aad)
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrInvalidCiphertext)
	}
	return pt, nil
}

func (e *Envelope) activeKey(ctx context.Context) (*activeKey, error) {
	e.mu.Lock()
	k := e.current
	if k != nil && k.uses < e.maxUses && time.Since(k.issued) < e.maxAge {
		k.uses++
		e.mu.Unlock()
		return k, nil
	}
	e.mu.Unlock()

	dk, err := e.keys.NewDataKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal: new data key: %w", err)
	}
	aead, err := newAEAD(dk.Plaintext)
	if err != nil {
		return nil, err
	}
	k = &activeKey{wrapped: dk.Wrapped, aead: aead, issued: time.Now(), uses: 1}
	e.mu.Lock()
	e.current = k
	e.remember(string(dk.Wrapped), aead)
	e.mu.Unlock()
	return k, nil
}

func (e *Envelope) aeadFor(ctx context.Context, wrapped []byte) (cipher.AEAD, error) {
	e.mu.Lock()
	// A pointer in the map: counting a use writes no map entry (which
	// would allocate the key's string on every open).
	c, ok := e.cache[string(wrapped)]
	if ok && time.Now().Before(c.expires) && c.uses < maxCachedUses {
		c.uses++
		e.mu.Unlock()
		return c.aead, nil
	}
	e.mu.Unlock()
	pt, err := e.keys.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("open: unwrap data key: %w", err)
	}
	aead, err := newAEAD(pt)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.remember(string(wrapped), aead)
	e.mu.Unlock()
	return aead, nil
}

// remember caches an unwrapped key; e.mu must be held.
func (e *Envelope) remember(wrapped string, aead cipher.AEAD) {
	if len(e.cache) >= maxCachedKeys {
		clear(e.cache)
	}
	e.cache[wrapped] = &cachedKey{aead: aead, expires: time.Now().Add(e.cacheTTL), uses: 1}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key is %d bytes, want 32: %w", len(key), ErrInvalidCiphertext)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealedKey returns the wrapped data key a sealed record carries.
func SealedKey(sealed []byte) ([]byte, error) {
	if len(sealed) < 3 || sealed[0] != sealedFormat {
		return nil, fmt.Errorf("sealed record: unknown format: %w", ErrInvalidCiphertext)
	}
	n := int(binary.BigEndian.Uint16(sealed[1:3]))
	if len(sealed) < 3+n+12+16 {
		return nil, fmt.Errorf("sealed record: too short: %w", ErrInvalidCiphertext)
	}
	return sealed[3 : 3+n], nil
}

// WithSealedKey returns the sealed record with its wrapped data key replaced
// (after a rewrap: the same data key, wrapped by a newer key version). The
// ciphertext is untouched, so the record opens exactly as before.
func WithSealedKey(sealed, wrapped []byte) ([]byte, error) {
	old, err := SealedKey(sealed)
	if err != nil {
		return nil, err
	}
	if len(wrapped) > 0xffff {
		return nil, fmt.Errorf("wrapped key of %d bytes", len(wrapped))
	}
	out := make([]byte, 0, len(sealed)-len(old)+len(wrapped))
	out = append(out, sealedFormat)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	return append(out, sealed[3+len(old):]...), nil
}
