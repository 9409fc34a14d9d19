package hcvault_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/vaulttest"
)

func approleConfig(s *vaulttest.Server) hcvault.Config {
	return hcvault.Config{
		Address: s.Addr, Auth: "approle", RoleID: s.RoleID, SecretIDFile: s.SecretIDFile,
		TransitMount: "transit", DataKey: hcvault.DefaultDataKey, BlindKey: hcvault.DefaultBlindKey, BlindKeyVersion: 1,
		KVMount: "secret", Timeout: 2 * time.Second, MaxRetries: 1,
	}
}

func connect(t *testing.T, cfg hcvault.Config) *hcvault.Client {
	t.Helper()
	c, err := hcvault.Connect(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestTransitKeys(t *testing.T) {
	s := vaulttest.Start(t)
	c := connect(t, approleConfig(s))
	ctx := context.Background()
	dk, err := c.NewDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 || !bytes.HasPrefix(dk.Wrapped, []byte("vault:v1:")) {
		t.Fatalf("data key %d bytes, wrapped %.12q", len(dk.Plaintext), dk.Wrapped)
	}
	pt, err := c.Unwrap(ctx, dk.Wrapped)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("unwrap: %v", err)
	}
	bad := append([]byte{}, dk.Wrapped...)
	bad[len(bad)-3] ^= 1
	if _, err := c.Unwrap(ctx, bad); !errors.Is(err, vault.ErrInvalidCiphertext) {
		t.Errorf("tampered key: %v; want ErrInvalidCiphertext", err)
	}

	// Envelope over Vault: seal and open a record.
	env := vault.NewEnvelope(c)
	sealed, err := env.Seal(ctx, []byte(`{"resourceType":"Patient"}`), []byte("Patient/1/_history/1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := env.Open(ctx, sealed, []byte("Patient/1/_history/1")); err != nil || string(got) != `{"resourceType":"Patient"}` {
		t.Fatalf("open: %q %v", got, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestHMACBatchesAndCaches(t *testing.T) {
	s := vaulttest.Start(t)
	c := connect(t, approleConfig(s))
	ctx := context.Background()
	inputs := make([][]byte, 25000)
	for i := range inputs {
		inputs[i] = []byte(strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune(i)))
	}
	before := c.Calls()
	d1, err := c.HMAC(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if calls := c.Calls() - before; calls != 3 {
		t.Errorf("%d calls for 25,000 inputs; want 3 batches of at most 10,000", calls)
	}
	before = c.Calls()
	d2, err := c.HMAC(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Calls() != before {
		t.Errorf("cached digests cost %d calls", c.Calls()-before)
	}
	for i := range d1 {
		if len(d1[i]) != 32 || !bytes.Equal(d1[i], d2[i]) {
			t.Fatalf("digest %d: %x vs %x", i, d1[i], d2[i])
		}
	}
	// A second client (another gateway replica) computes the same digests.
	other := connect(t, approleConfig(s))
	d3, err := other.HMAC(ctx, inputs[:5])
	if err != nil || !bytes.Equal(d3[4], d1[4]) {
		t.Errorf("another client's digest differs: %v", err)
	}
}

func TestLoginMethods(t *testing.T) {
	s := vaulttest.Start(t)
	ctx := context.Background()
	t.Run("token", func(t *testing.T) {
		cfg := approleConfig(s)
		cfg.Auth, cfg.Token = "token", s.Token("gateway")
		if _, err := connect(t, cfg).NewDataKey(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("approle wrapped secret id", func(t *testing.T) {
		out, err := s.Run(s.RootToken, "write", "-f", "-wrap-ttl=60s", "-field=wrapping_token", "auth/approle/role/gateway/secret-id")
		if err != nil {
			t.Fatal(out)
		}
		file := t.TempDir() + "/wrapped"
		if err := writeFile(file, strings.TrimSpace(out)); err != nil {
			t.Fatal(err)
		}
		cfg := approleConfig(s)
		cfg.SecretIDFile, cfg.SecretIDWrapped = file, true
		if _, err := connect(t, cfg).NewDataKey(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad credentials are an error at start", func(t *testing.T) {
		cfg := approleConfig(s)
		cfg.RoleID = "not-a-role"
		if c, err := hcvault.Connect(ctx, cfg, nil); err == nil {
			c.Close()
			t.Fatal("login with a wrong role id succeeded")
		}
	})
}

// A short-lived token is renewed, and when it reaches its maximum lifetime
// the client logs in again by itself.
func TestRenewalAndRelogin(t *testing.T) {
	s := vaulttest.Start(t)
	if out, err := s.Run(s.RootToken, "write", "auth/approle/role/gateway", "token_policies=gateway", "token_ttl=2s", "token_max_ttl=5s"); err != nil {
		t.Fatal(out)
	}
	c := connect(t, approleConfig(s))
	ctx := context.Background()
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.HMAC(ctx, [][]byte{[]byte(time.Now().String())}); err != nil {
			t.Fatalf("at %s: %v", time.Until(deadline), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// With Vault down, calls fail with ErrUnavailable (quickly, after the
// retries) and Ping says so; when Vault is back the client recovers alone.
func TestOutageAndRecovery(t *testing.T) {
	s := vaulttest.Start(t)
	c := connect(t, approleConfig(s))
	ctx := context.Background()
	if _, err := c.NewDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	start := time.Now()
	if _, err := c.NewDataKey(ctx); !errors.Is(err, vault.ErrUnavailable) {
		t.Fatalf("with vault down: %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %s", d)
	}
	if err := c.Ping(ctx); !errors.Is(err, vault.ErrUnavailable) {
		t.Errorf("ping with vault down: %v", err)
	}
	s.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.NewDataKey(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping after recovery: %v", err)
	}
}

func TestSecretsFromKV(t *testing.T) {
	s := vaulttest.Start(t)
	if out, err := s.Run(s.Token("operator"), "kv", "put", "secret/registries/mesh", "shared_secret=s3cret", "mailbox=X26ABC1"); err != nil {
		t.Fatal(out)
	}
	c := connect(t, approleConfig(s))
	got, err := c.Secret(context.Background(), "registries/mesh")
	if err != nil || got["shared_secret"] != "s3cret" {
		t.Fatalf("secret: %v %v", got, err)
	}
	if _, err := c.Secret(context.Background(), "registries/none"); err == nil {
		t.Error("a missing secret read without error")
	}
}

func TestSignVerify(t *testing.T) {
	s := vaulttest.Start(t)
	c := connect(t, approleConfig(s))
	ctx := context.Background()
	inputs := [][]byte{[]byte("NJR submission 1"), []byte("HES submission 2")}
	sigs, err := c.Sign(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Verify(ctx, inputs, sigs)
	if err != nil || !ok[0] || !ok[1] {
		t.Fatalf("verify: %v %v", ok, err)
	}
	// A changed document or a swapped signature does not verify.
	ok, err = c.Verify(ctx, [][]byte{[]byte("NJR submission 1!"), inputs[1]}, []string{sigs[0], sigs[0]})
	if err != nil || ok[0] || ok[1] {
		t.Errorf("tampered: %v %v", ok, err)
	}
	// After the operator rotates the signing key, old signatures still verify.
	if out, err := s.Run(s.Token("operator"), "write", "-f", "transit/keys/gateway-signing/rotate"); err != nil {
		t.Fatal(out)
	}
	ok, err = c.Verify(ctx, inputs, sigs)
	if err != nil || !ok[0] {
		t.Errorf("after rotation: %v %v", ok, err)
	}
	if fresh, _ := c.Sign(ctx, inputs[:1]); len(fresh) != 1 || !strings.HasPrefix(fresh[0], "vault:v2:") {
		t.Errorf("new signature %v not made by version 2", fresh)
	}
}

// A gateway started while Vault is down comes up unready and logs in by
// itself when Vault arrives, with a token or with AppRole.
func TestStartWithVaultDown(t *testing.T) {
	s := vaulttest.Start(t)
	ctx := context.Background()
	for _, auth := range []string{"token", "approle"} {
		t.Run(auth, func(t *testing.T) {
			cfg := approleConfig(s)
			if auth == "token" {
				cfg.Auth, cfg.Token = "token", s.Token("gateway")
			}
			s.Stop()
			c := connect(t, cfg)
			if _, err := c.NewDataKey(ctx); !errors.Is(err, vault.ErrUnavailable) {
				t.Fatalf("with vault down: %v", err)
			}
			if err := c.Available(); err == nil {
				t.Error("available with vault down")
			}
			s.Restart()
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := c.NewDataKey(ctx)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no login after vault came back: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
