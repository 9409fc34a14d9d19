package devkeystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/vault"
)

func TestKeyFileIsPrivateAndPersistent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "keys.json")
	var logs bytes.Buffer
	ks, err := Open(path, false, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "DEVELOPMENT KEYSTORE") {
		t.Errorf("no loud development warning in logs: %q", logs.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v; want 0600", fi.Mode().Perm())
	}
	dk, err := ks.NewDataKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := again.Unwrap(context.Background(), dk.Wrapped)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("reopened keystore cannot unwrap: %v", err)
	}
	other, _ := Open(filepath.Join(t.TempDir(), "other.json"), false, nil)
	if _, err := other.Unwrap(context.Background(), dk.Wrapped); !errors.Is(err, vault.ErrInvalidCiphertext) {
		t.Errorf("another keystore unwrapped the key: %v", err)
	}
}

func TestRefusedInProduction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := Open(path, true, nil); !errors.Is(err, ErrProduction) {
		t.Fatalf("err = %v; want ErrProduction", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a refused keystore still created its key file")
	}
}

func TestCorruptKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(path, []byte(`{"kek":"c2hvcnQ="}`), 0o600)
	if _, err := Open(path, false, nil); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	ks, err := Open(filepath.Join(t.TempDir(), "k.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := [][]byte{[]byte("a"), []byte("b")}
	sigs, err := ks.Sign(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inputs [][]byte
		sigs   []string
		want   []bool
	}{
		{"own signatures", in, sigs, []bool{true, true}},
		{"swapped", in, []string{sigs[1], sigs[0]}, []bool{false, false}},
		{"garbage", in[:1], []string{"devks:v1:!!"}, []bool{false}},
	}
	for _, tc := range tests {
		got, err := ks.Verify(ctx, tc.inputs, tc.sigs)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
