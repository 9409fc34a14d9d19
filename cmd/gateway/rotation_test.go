package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store/storetest"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/vaulttest"
)

// Rotating the data key while clients read and write: nothing fails,
// every stored data key ends up wrapped by the new version, the old version
// is retired (min_decryption_version), and a fresh gateway with empty
// caches reads everything. On both databases.
func TestKeyRotationDuringLoad(t *testing.T) {
	v := vaulttest.Start(t)
	engines := []struct{ name, dsn string }{
		{"sqlite", filepath.Join(t.TempDir(), "gw.db")},
		{"postgres", storetest.PostgresDSN(t)},
	}
	for i, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			vars := vaultVars(v, e.dsn)
			vars["GATEWAY_DATA_KEY_MAX_AGE"] = "1s"
			base := startGateway(t, vars) + "/fhir"
			for j := 0; j < 300; j++ {
				if r := call(t, "PUT", fmt.Sprintf("%s/Observation/o%d", base, j), observation(j, 1)); r.status != 201 {
					t.Fatalf("seed: %d %s", r.status, r.body)
				}
			}
			// Load: readers and a writer, until the rotation is finished.
			var (
				stop     atomic.Bool
				failures atomic.Int64
				writes   atomic.Int64
				wg       sync.WaitGroup
			)
			for w := 0; w < 3; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for n := 0; !stop.Load(); n++ {
						r := call(t, "GET", fmt.Sprintf("%s/Observation/o%d", base, (n*7+w)%300), "")
						if r.status != 200 {
							failures.Add(1)
							t.Logf("read: %d %.200s", r.status, r.body)
						}
					}
				}(w)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 2; !stop.Load(); n++ {
					r := call(t, "PUT", fmt.Sprintf("%s/Observation/o%d", base, n%300), observation(n%300, n))
					if r.status != 200 {
						failures.Add(1)
						t.Logf("write: %d %.200s", r.status, r.body)
					}
					writes.Add(1)
				}
			}()

			operator := map[string]string{}
			for k, val := range vars {
				operator[k] = val
			}
			operator["GATEWAY_VAULT_AUTH"], operator["VAULT_TOKEN"] = "token", v.Token("operator")
			var out bytes.Buffer
			if err := run(context.Background(), []string{"keys", "rotate"}, env(operator), &out, &out); err != nil {
				t.Fatalf("keys rotate: %v", err)
			}
			if !strings.Contains(out.String(), fmt.Sprintf("to version %d", i+2)) {
				t.Errorf("keys rotate said %q", out.String())
			}
			if err := run(context.Background(), []string{"keys", "rotate"}, env(operator), &out, &out); err == nil {
				t.Error("a second rotation started while the first was rewrapping")
			}
			deadline := time.Now().Add(90 * time.Second)
			for {
				out.Reset()
				if err := run(context.Background(), []string{"keys", "status"}, env(operator), &out, &out); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(out.String(), "retired") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("rotation not finished: %s", out.String())
				}
				time.Sleep(250 * time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			t.Logf("%s; %d writes during the rotation", strings.TrimSpace(out.String()), writes.Load())
			if failures.Load() > 0 {
				t.Errorf("%d requests failed during the rotation", failures.Load())
			}

			key, err := v.Client(v.RootToken).Logical().Read("transit/keys/gateway-data")
			if err != nil {
				t.Fatal(err)
			}
			latest, _ := key.Data["latest_version"].(json.Number).Int64()
			minDec, _ := key.Data["min_decryption_version"].(json.Number).Int64()
			if minDec != latest || latest != int64(i+2) {
				t.Errorf("key versions: latest %d, min_decryption %d", latest, minDec)
			}
			if old := staleVersions(t, e.dsn, int(latest)); old != 0 {
				t.Errorf("%d stored versions still carry an older wrapped key", old)
			}
			// A new gateway: no cached data key; everything must unwrap with
			// the current key version alone.
			fresh := startGateway(t, vaultVars(v, e.dsn)) + "/fhir"
			for j := 0; j < 300; j += 7 {
				if r := call(t, "GET", fmt.Sprintf("%s/Observation/o%d/_history", fresh, j), ""); r.status != 200 {
					t.Fatalf("history after rotation: %d %.200s", r.status, r.body)
				}
			}
		})
	}
}

func observation(j, v int) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"Oxford Hip Score"},"valueInteger":%d}`, j, v%49)
}

// staleVersions counts stored versions whose data key is wrapped by a key
// version below latest.
func staleVersions(t *testing.T, dsn string, latest int) int {
	t.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT body FROM resource_version WHERE body IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stale, n := 0, 0
	for rows.Next() {
		var body []byte
		rows.Scan(&body)
		w, err := vault.SealedKey(body)
		if err != nil {
			t.Fatal(err)
		}
		if hcvault.WrappedVersion(w) < latest {
			stale++
		}
		n++
	}
	if n < 300 {
		t.Fatalf("only %d versions stored", n)
	}
	return stale
}
