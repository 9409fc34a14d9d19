package hcvault_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/promsgateway/gateway/vault/vaulttest"
)

// The policies in deploy/vault, applied by setup.sh to a real Vault, allow
// each role what it needs and deny the rest; above all, the gateway's own
// token cannot re-identify, export or reconfigure keys.
func TestPolicies(t *testing.T) {
	s := vaulttest.Start(t)
	s.Setup("domain", "study-S1")
	s.Setup("domain", "site-RXY01")
	root := s.Client(s.RootToken)

	// The gateway logs in with its AppRole, as in production.
	login, err := root.Logical().Write("auth/approle/login", map[string]any{"role_id": s.RoleID, "secret_id": readFile(t, s.SecretIDFile)})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{
		"gateway":         login.Auth.ClientToken,
		"operator":        s.Token("operator"),
		"keyholder-S1":    s.Token("keyholder-study-S1"),
		"keyholder-RXY01": s.Token("keyholder-site-RXY01"),
		"superadmin":      s.Token("superadmin"),
	}
	b64 := base64.StdEncoding.EncodeToString
	escrow := func(domain string) string {
		sec, err := s.Client(tokens["gateway"]).Logical().Write("transit/encrypt/reid-"+domain, map[string]any{"plaintext": b64([]byte("Patient/p1"))})
		if err != nil {
			t.Fatalf("gateway escrow for %s: %v", domain, err)
		}
		return sec.Data["ciphertext"].(string)
	}
	s1, site := escrow("study-S1"), escrow("site-RXY01")
	dataKey, err := s.Client(tokens["gateway"]).Logical().Write("transit/datakey/wrapped/gateway-data", map[string]any{"bits": 256})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := dataKey.Data["ciphertext"].(string)
	if _, err := root.Logical().Write("secret/data/registries/njr", map[string]any{"data": map[string]any{"api_key": "k"}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		who, path string
		data      map[string]any
		read      bool
		allowed   bool
	}{
		// The gateway uses keys...
		{"gateway", "transit/decrypt/gateway-data", map[string]any{"ciphertext": wrapped}, false, true},
		{"gateway", "transit/hmac/gateway-blind/sha2-256", map[string]any{"input": b64([]byte("x")), "key_version": 1}, false, true},
		{"gateway", "transit/hmac/gateway-pseudonym/sha2-256", map[string]any{"input": b64([]byte("x"))}, false, true},
		{"gateway", "transit/rewrap/gateway-data", map[string]any{"ciphertext": wrapped}, false, true},
		{"gateway", "transit/keys/gateway-data/config", map[string]any{"min_decryption_version": 1}, false, true},
		{"gateway", "transit/sign/gateway-signing/sha2-256", map[string]any{"input": b64([]byte("x"))}, false, true},
		{"gateway", "secret/data/registries/njr", nil, true, true},
		// ...and cannot re-identify, see or change them.
		{"gateway", "transit/decrypt/reid-study-S1", map[string]any{"ciphertext": s1}, false, false},
		{"gateway", "transit/decrypt/reid-site-RXY01", map[string]any{"ciphertext": site}, false, false},
		{"gateway", "transit/encrypt/reid-study-NEW", map[string]any{"plaintext": b64([]byte("x"))}, false, false},
		{"gateway", "transit/datakey/plaintext/gateway-data", map[string]any{"bits": 256}, false, false},
		{"gateway", "transit/keys/gateway-data/rotate", map[string]any{}, false, false},
		{"gateway", "transit/keys/gateway-data/config", map[string]any{"exportable": true}, false, false},
		{"gateway", "transit/keys/gateway-data/config", map[string]any{"deletion_allowed": true}, false, false},
		{"gateway", "transit/export/encryption-key/gateway-data", nil, true, false},
		{"gateway", "transit/keys/gateway-other", map[string]any{}, false, false},
		{"gateway", "transit/hmac/gateway-data/sha2-256", map[string]any{"input": b64([]byte("x"))}, false, false},
		{"gateway", "secret/data/registries/njr", map[string]any{"data": map[string]any{"api_key": "stolen"}}, false, false},
		{"gateway", "secret/data/other", nil, true, false},
		{"gateway", "sys/policies/acl/gateway", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`}, false, false},
		{"gateway", "auth/approle/role/gateway/secret-id", map[string]any{}, false, false},
		// The operator rotates and provisions, and cannot decrypt or read secrets.
		{"operator", "transit/keys/gateway-data/rotate", map[string]any{}, false, true},
		{"operator", "transit/keys/gateway-signing/rotate", map[string]any{}, false, true},
		{"operator", "secret/data/registries/mesh", map[string]any{"data": map[string]any{"shared_secret": "s"}}, false, true},
		{"operator", "transit/decrypt/gateway-data", map[string]any{"ciphertext": wrapped}, false, false},
		{"operator", "transit/decrypt/reid-study-S1", map[string]any{"ciphertext": s1}, false, false},
		{"operator", "transit/hmac/gateway-blind/sha2-256", map[string]any{"input": b64([]byte("x"))}, false, false},
		{"operator", "transit/keys/reid-study-S3", map[string]any{}, false, false},
		{"operator", "transit/keys/gateway-data/config", map[string]any{"min_decryption_version": 2}, false, false},
		{"operator", "sys/policies/acl/operator", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`}, false, false},
		{"operator", "secret/data/registries/njr", nil, true, false},
		// Key holders re-identify in their own domain only.
		{"keyholder-S1", "transit/decrypt/reid-study-S1", map[string]any{"ciphertext": s1}, false, true},
		{"keyholder-S1", "transit/decrypt/reid-site-RXY01", map[string]any{"ciphertext": site}, false, false},
		{"keyholder-S1", "transit/decrypt/gateway-data", map[string]any{"ciphertext": wrapped}, false, false},
		{"keyholder-RXY01", "transit/decrypt/reid-site-RXY01", map[string]any{"ciphertext": site}, false, true},
		{"keyholder-RXY01", "transit/decrypt/reid-study-S1", map[string]any{"ciphertext": s1}, false, false},
		{"superadmin", "transit/decrypt/reid-study-S1", map[string]any{"ciphertext": s1}, false, true},
		{"superadmin", "transit/decrypt/reid-site-RXY01", map[string]any{"ciphertext": site}, false, true},
		{"superadmin", "transit/decrypt/gateway-data", map[string]any{"ciphertext": wrapped}, false, false},
	}
	for _, tc := range tests {
		verb := "write"
		if tc.read {
			verb = "read"
		}
		t.Run(tc.who+" "+verb+" "+tc.path, func(t *testing.T) {
			c := s.Client(tokens[tc.who])
			var err error
			if tc.read {
				_, err = c.Logical().Read(tc.path)
			} else {
				_, err = c.Logical().Write(tc.path, tc.data)
			}
			denied := isDenied(err)
			if err != nil && !denied {
				t.Fatalf("unexpected error: %v", err)
			}
			if denied == tc.allowed {
				t.Errorf("allowed = %v; want %v (%v)", !denied, tc.allowed, err)
			}
		})
	}
}

func isDenied(err error) bool {
	re, ok := err.(*api.ResponseError)
	return ok && re.StatusCode == 403 && strings.Contains(strings.Join(re.Errors, " "), "permission denied")
}
