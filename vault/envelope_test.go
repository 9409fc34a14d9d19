package vault_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

// countingKeys counts calls to the key holder, to prove the envelope caches.
type countingKeys struct {
	vault.Keys
	issued, unwrapped atomic.Int32
}

func (c *countingKeys) NewDataKey(ctx context.Context) (vault.DataKey, error) {
	c.issued.Add(1)
	return c.Keys.NewDataKey(ctx)
}

func (c *countingKeys) Unwrap(ctx context.Context, w []byte) ([]byte, error) {
	c.unwrapped.Add(1)
	return c.Keys.Unwrap(ctx, w)
}

func keystore(t *testing.T) vault.Keys {
	t.Helper()
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "k.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestEnvelopeRoundTripAndBinding(t *testing.T) {
	ctx := context.Background()
	env := vault.NewEnvelope(keystore(t))
	pt := []byte(`{"resourceType":"Patient"}`)
	sealed, err := env.Seal(ctx, pt, []byte("Patient/a/_history/1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed record contains the plaintext")
	}
	got, err := env.Open(ctx, sealed, []byte("Patient/a/_history/1"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open = %s, %v", got, err)
	}
	tests := []struct {
		name   string
		sealed []byte
		aad    string
	}{
		{"other row", sealed, "Patient/b/_history/1"},
		{"other version", sealed, "Patient/a/_history/2"},
		{"flipped bit", flip(sealed, len(sealed)-1), "Patient/a/_history/1"},
		{"flipped wrapped key", flip(sealed, 5), "Patient/a/_history/1"},
		{"truncated", sealed[:10], "Patient/a/_history/1"},
		{"unknown format", append([]byte{9}, sealed[1:]...), "Patient/a/_history/1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := env.Open(ctx, tc.sealed, []byte(tc.aad)); !errors.Is(err, vault.ErrInvalidCiphertext) {
				t.Errorf("err = %v; want ErrInvalidCiphertext", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func TestEnvelopeReusesDataKeys(t *testing.T) {
	ctx := context.Background()
	keys := &countingKeys{Keys: keystore(t)}
	env := vault.NewEnvelope(keys)
	var sealed [][]byte
	for i := 0; i < 100; i++ {
		s, err := env.Seal(ctx, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	if keys.issued.Load() != 1 {
		t.Errorf("%d data keys issued for 100 records; want 1", keys.issued.Load())
	}
	// A fresh envelope (another replica) must unwrap once, then use its cache.
	other := vault.NewEnvelope(keys)
	for _, s := range sealed {
		if _, err := other.Open(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if keys.unwrapped.Load() != 1 {
		t.Errorf("%d unwraps for 100 records under one key; want 1", keys.unwrapped.Load())
	}
}

func BenchmarkEnvelope(b *testing.B) {
	ks, err := devkeystore.Open(filepath.Join(b.TempDir(), "k.json"), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	env := vault.NewEnvelope(ks)
	ctx := context.Background()
	pt := bytes.Repeat([]byte("x"), 1024)
	aad := []byte("Patient/a/_history/1")
	sealed, _ := env.Seal(ctx, pt, aad)
	b.Run("seal 1KiB", func(b *testing.B) {
		for b.Loop() {
			if _, err := env.Seal(ctx, pt, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open 1KiB", func(b *testing.B) {
		for b.Loop() {
			if _, err := env.Open(ctx, sealed, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// versionedKeys wraps keys in the clear behind a version tag, so that a
// test can rewrap one (it stands in for transit's rewrap; never a real key
// holder).
type versionedKeys struct{ vault.Keys }

func (versionedKeys) NewDataKey(context.Context) (vault.DataKey, error) {
	k := bytes.Repeat([]byte{7}, 32)
	return vault.DataKey{Plaintext: k, Wrapped: append([]byte("v1:"), k...)}, nil
}

func (versionedKeys) Unwrap(_ context.Context, w []byte) ([]byte, error) {
	if len(w) != 35 {
		return nil, vault.ErrInvalidCiphertext
	}
	return w[3:], nil
}

// A rewrapped record (new wrapped key, same data key) opens as before, and
// its AAD binding still holds.
func TestWithSealedKey(t *testing.T) {
	ctx := context.Background()
	sealed, err := vault.NewEnvelope(versionedKeys{}).Seal(ctx, []byte("body"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := vault.SealedKey(sealed)
	if err != nil || string(old[:3]) != "v1:" {
		t.Fatalf("sealed key %q %v", old, err)
	}
	rewrapped := append([]byte("v2:"), old[3:]...)
	moved, err := vault.WithSealedKey(sealed, rewrapped)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := vault.SealedKey(moved); !bytes.Equal(got, rewrapped) {
		t.Fatal("wrapped key not replaced")
	}
	fresh := vault.NewEnvelope(versionedKeys{}) // no cached keys
	if got, err := fresh.Open(ctx, moved, []byte("aad")); err != nil || string(got) != "body" {
		t.Fatalf("open after rewrap: %q %v", got, err)
	}
	if _, err := fresh.Open(ctx, moved, []byte("other")); err == nil {
		t.Error("opened with the wrong AAD")
	}
	if _, err := vault.SealedKey([]byte{9, 0}); err == nil {
		t.Error("a short record has a key")
	}
}

// An unwrapped data key serves a bounded number of records from the cache
// before it is unwrapped again.
func TestUnwrappedKeyUseCount(t *testing.T) {
	ctx := context.Background()
	keys := &countingKeys{Keys: keystore(t)}
	sealed, err := vault.NewEnvelope(keys).Seal(ctx, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reader := vault.NewEnvelope(keys)
	for i := 0; i < 100_001; i++ {
		if _, err := reader.Open(ctx, sealed, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.unwrapped.Load(); n != 2 {
		t.Errorf("%d unwraps for 100,001 opens; want 2 (one per 100,000 uses)", n)
	}
}
