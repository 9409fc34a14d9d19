package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresAdminURL is the server the tests use: GATEWAY_TEST_POSTGRES, or the
// CI machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth).
func PostgresAdminURL() string {
	if u := os.Getenv("GATEWAY_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// PostgresDSN creates a fresh, uniquely named database for one test and
// drops it when the test ends. Without a reachable PostgreSQL it skips the
// test, except under CI=true, where a missing PostgreSQL is a failure.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := PostgresAdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI and is not reachable at %s: %v", admin, err)
		}
		t.Skipf("PostgreSQL not reachable at %s (set GATEWAY_TEST_POSTGRES): %v", admin, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "gateway_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("GATEWAY_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
