// Package vaulttest runs a real HashiCorp Vault server for tests: Vault
// 1.17.6 built by `make` into the tool cache, with file storage on a
// loopback port, initialised and unsealed, and set up by
// deploy/vault/setup.sh exactly as a deployment would be. It can be
// stopped and started again with its data, to test outages.
package vaulttest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Version is the Vault release the tests run against.
const Version = "1.17.6"

// Server is a running (or stopped) Vault.
type Server struct {
	Addr      string // http://127.0.0.1:port
	RootToken string
	// RoleID and SecretIDFile are the gateway's AppRole credentials that
	// setup.sh wrote.
	RoleID, SecretIDFile string

	t         testing.TB
	bin, dir  string
	unsealKey string
	cmd       *exec.Cmd
	logs      *bytes.Buffer
}

// Binary returns the Vault binary: $GATEWAY_TEST_VAULT (the Makefile sets
// it), or the tool cache. Without one the test is skipped, except under
// CI=true, where it fails.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("GATEWAY_TEST_VAULT")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "promsgateway", "tools", "vault-"+Version)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no Vault %s binary at %s: `make test` builds it once (about 14 minutes)", Version, bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start starts a Vault for the test, sets it up with deploy/vault/setup.sh
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.Addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	config := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address = "127.0.0.1:%d"
  tls_disable = true
}
disable_mlock = true
api_addr = %q
ui = false
`, filepath.Join(s.dir, "data"), port, s.Addr)
	if err := os.WriteFile(filepath.Join(s.dir, "vault.hcl"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.launch()

	c := s.Client("")
	init, err := c.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v\n%s", err, s.logs)
	}
	s.RootToken, s.unsealKey = init.RootToken, init.KeysB64[0]
	s.unseal()

	out := filepath.Join(s.dir, "approle")
	cmd := exec.Command("bash", filepath.Join(RepoRoot(t), "deploy", "vault", "setup.sh"))
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+s.RootToken, "VAULT_BIN="+s.bin, "GATEWAY_VAULT_SETUP_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/vault/setup.sh: %v\n%s", err, b)
	}
	role, err := os.ReadFile(filepath.Join(out, "gateway-role-id"))
	if err != nil {
		t.Fatal(err)
	}
	s.RoleID, s.SecretIDFile = strings.TrimSpace(string(role)), filepath.Join(out, "gateway-secret-id")
	return s
}

// launch starts the server process and waits until it answers.
func (s *Server) launch() {
	s.t.Helper()
	s.logs = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "server", "-config="+filepath.Join(s.dir, "vault.hcl"))
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := s.Client("")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Sys().SealStatus(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("vault did not start:\n%s", s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) unseal() {
	s.t.Helper()
	st, err := s.Client("").Sys().Unseal(s.unsealKey)
	if err != nil || st.Sealed {
		s.t.Fatalf("vault unseal: %v\n%s", err, s.logs)
	}
	// The active node needs a moment after unsealing to serve requests.
	c := s.Client(s.RootToken)
	for i := 0; i < 200; i++ {
		if _, err := c.Sys().ListMounts(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("vault not serving after unseal:\n%s", s.logs)
}

// Stop kills the server; its data stays for Restart.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the stopped server again on the same address and unseals it.
func (s *Server) Restart() {
	s.t.Helper()
	s.launch()
	s.unseal()
}

// Client returns an API client for the server with token (none if empty).
func (s *Server) Client(token string) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	c.SetToken(token)
	if token == "" {
		c.ClearToken()
	}
	return c
}

// Token creates a token with the named policies (and not the root's).
func (s *Server) Token(policies ...string) string {
	s.t.Helper()
	sec, err := s.Client(s.RootToken).Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoParent: true, TTL: "1h"})
	if err != nil {
		s.t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// Run runs the vault command line against the server with token.
func (s *Server) Run(token string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Setup runs deploy/vault/setup.sh with more arguments (setup.sh domain D).
func (s *Server) Setup(args ...string) {
	s.t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(RepoRoot(s.t), "deploy", "vault", "setup.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+s.RootToken, "VAULT_BIN="+s.bin)
	if b, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("setup.sh %v: %v\n%s", args, err, b)
	}
}

// RepoRoot finds the module root (the directory with go.mod) above the
// test's working directory.
func RepoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/promsgateway/gateway\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found")
		}
		dir = parent
	}
}
