// Package devkeystore is the embedded development keystore: a single key
// encryption key in a local file (mode 0600, created on first use) that wraps
// the data keys of vault.Envelope. It exists so that a first run needs no
// Vault server. It is not a place to keep real patient data: the key sits on
// the same disk as the database it protects. The gateway refuses it when
// GATEWAY_ENV=production.
package devkeystore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/promsgateway/gateway/vault"
)

// ErrProduction is returned when the development keystore is asked for in a
// production deployment.
var ErrProduction = errors.New("the development keystore is refused when GATEWAY_ENV=production; configure Vault")

// wrapPrefix marks keys wrapped by this keystore, so a key wrapped elsewhere
// is recognised as foreign instead of failing obscurely.
const wrapPrefix = "devks:v1:"

// Keystore implements vault.Keys with a local key encryption key.
type Keystore struct {
	kek       cipher.AEAD
	mac       []byte // blind-index key, derived from the key file's key
	pseudonym []byte // pseudonym key, derived likewise
	root      []byte // the key file's key, for per-domain escrow keys
	path      string
}

var (
	_ vault.Keys       = (*Keystore)(nil)
	_ vault.Pseudonyms = (*Keystore)(nil)
	_ vault.Signer     = (*Keystore)(nil)
)

type keyFile struct {
	Warning string    `json:"warning"`
	Created time.Time `json:"created"`
	KEK     string    `json:"kek"`
}

// Open loads the keystore at path, creating it (and its directory) with a
// fresh random key on first use. production must be true when the gateway
// runs with GATEWAY_ENV=production; Open then refuses. Every successful Open
// logs a warning that this keystore is for development only.
func Open(path string, production bool, log *slog.Logger) (*Keystore, error) {
	if production {
		return nil, ErrProduction
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("development keystore %s: %w", path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		return nil, fmt.Errorf("development keystore %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(kf.KEK)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("development keystore %s: key is not 32 base64-encoded bytes", path)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if log != nil {
		log.Warn("DEVELOPMENT KEYSTORE IN USE: keys are in a local file beside the data; not for real patient data; use Vault in production",
			"keystore", path)
	}
	mac, err := hkdf.Key(sha256.New, key, nil, "promsgateway development keystore: blind index", 32)
	if err != nil {
		return nil, err
	}
	pseudonym, err := hkdf.Key(sha256.New, key, nil, "promsgateway development keystore: pseudonym", 32)
	if err != nil {
		return nil, err
	}
	return &Keystore{kek: aead, mac: mac, pseudonym: pseudonym, root: key, path: path}, nil
}

func create(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(keyFile{
		Warning: "development keystore: not for real patient data",
		Created: time.Now().UTC(),
		KEK:     base64.StdEncoding.EncodeToString(key),
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	// O_EXCL: two processes starting at once must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return nil, err
	}
	return raw, f.Close()
}

// NewDataKey returns a fresh random data key wrapped under the key file's key.
func (k *Keystore) NewDataKey(ctx context.Context) (vault.DataKey, error) {
	dk := make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		return vault.DataKey{}, err
	}
	nonce := make([]byte, k.kek.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return vault.DataKey{}, err
	}
	wrapped := append([]byte(wrapPrefix), nonce...)
	wrapped = k.kek.Seal(wrapped, nonce, dk, []byte(wrapPrefix))
	return vault.DataKey{Plaintext: dk, Wrapped: wrapped}, nil
}

// Unwrap returns the plaintext of a key wrapped by this keystore.
func (k *Keystore) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	p := len(wrapPrefix)
	n := k.kek.NonceSize()
	if len(wrapped) < p+n || string(wrapped[:p]) != wrapPrefix {
		return nil, fmt.Errorf("unwrap: not a development keystore key: %w", vault.ErrInvalidCiphertext)
	}
	pt, err := k.kek.Open(nil, wrapped[p:p+n], wrapped[p+n:], []byte(wrapPrefix))
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", vault.ErrInvalidCiphertext)
	}
	return pt, nil
}

// HMAC returns HMAC-SHA256 of each input under a key derived from the key
// file's key.
func (k *Keystore) HMAC(ctx context.Context, inputs [][]byte) ([][]byte, error) {
	return hmacAll(k.mac, inputs), nil
}

// PseudonymHMAC returns HMAC-SHA256 of each input under the derived
// pseudonym key.
func (k *Keystore) PseudonymHMAC(ctx context.Context, inputs [][]byte) ([][]byte, error) {
	return hmacAll(k.pseudonym, inputs), nil
}

// DevelopmentHolder is the only key holder credential the development
// keystore accepts. It stands in for Vault's policies, which this keystore
// cannot enforce: anyone who can read its key file can re-identify.
const DevelopmentHolder = "development-key-holder"

func (k *Keystore) escrowAEAD(domain string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, k.root, nil, "promsgateway development keystore: escrow "+domain, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealEscrow encrypts each plaintext under a key derived for domain.
func (k *Keystore) SealEscrow(ctx context.Context, domain string, plaintexts [][]byte) ([]string, error) {
	aead, err := k.escrowAEAD(domain)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(plaintexts))
	for i, p := range plaintexts {
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = wrapPrefix + base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, p, []byte(domain)))
	}
	return out, nil
}

// OpenEscrow decrypts an escrow for the development key holder.
func (k *Keystore) OpenEscrow(ctx context.Context, holder, domain, sealed string) ([]byte, error) {
	if holder != DevelopmentHolder {
		return nil, fmt.Errorf("%w: the development keystore accepts only %q", vault.ErrDenied, DevelopmentHolder)
	}
	aead, err := k.escrowAEAD(domain)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, wrapPrefix))
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, fmt.Errorf("open escrow: %w", vault.ErrInvalidCiphertext)
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(domain))
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w", vault.ErrInvalidCiphertext)
	}
	return pt, nil
}

// Holder names the development key holder.
func (k *Keystore) Holder(ctx context.Context, holder string) (string, error) {
	if holder != DevelopmentHolder {
		return "", fmt.Errorf("%w: unknown key holder", vault.ErrDenied)
	}
	return "development key holder", nil
}

// signingKey derives the keystore's Ed25519 signing key.
func (k *Keystore) signingKey() (ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, k.root, nil, "promsgateway development keystore: signing", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Sign signs each input's SHA-256 with a derived Ed25519 key.
func (k *Keystore) Sign(ctx context.Context, inputs [][]byte) ([]string, error) {
	key, err := k.signingKey()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(inputs))
	for i, in := range inputs {
		sum := sha256.Sum256(in)
		out[i] = wrapPrefix + base64.StdEncoding.EncodeToString(ed25519.Sign(key, sum[:]))
	}
	return out, nil
}

// Verify checks signatures made by Sign.
func (k *Keystore) Verify(ctx context.Context, inputs [][]byte, signatures []string) ([]bool, error) {
	if len(inputs) != len(signatures) {
		return nil, fmt.Errorf("verify: %d inputs, %d signatures", len(inputs), len(signatures))
	}
	key, err := k.signingKey()
	if err != nil {
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	out := make([]bool, len(inputs))
	for i, in := range inputs {
		sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(signatures[i], wrapPrefix))
		sum := sha256.Sum256(in)
		out[i] = err == nil && strings.HasPrefix(signatures[i], wrapPrefix) && ed25519.Verify(pub, sum[:], sig)
	}
	return out, nil
}

func hmacAll(key []byte, inputs [][]byte) [][]byte {
	out := make([][]byte, len(inputs))
	m := hmac.New(sha256.New, key)
	for i, in := range inputs {
		m.Reset()
		m.Write(in)
		out[i] = m.Sum(nil)
	}
	return out
}

// Ping always succeeds: the key is in memory.
func (k *Keystore) Ping(context.Context) error { return nil }

// Name identifies the keystore in logs and readiness reports.
func (k *Keystore) Name() string { return "development keystore (" + k.path + ")" }
