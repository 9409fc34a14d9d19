package hcvault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/vaulttest"
)

// serviceAccountToken is a Kubernetes service account token (a JWT, ES256)
// for namespace/name, signed with key.
func serviceAccountToken(t *testing.T, key *ecdsa.PrivateKey, namespace, name string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]string{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + namespace + ":" + name,
		"kubernetes.io/serviceaccount/namespace": namespace,
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-" + name,
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

// tokenReviewServer answers the Kubernetes TokenReview API
// (POST /apis/authentication.k8s.io/v1/tokenreviews) as an API server
// does: a token it issued is authenticated as its service account, any
// other is not.
func tokenReviewServer(t *testing.T, issued map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := map[string]any{"authenticated": false}
		if user, ok := issued[review.Spec.Token]; ok {
			name := user[strings.LastIndex(user, ":")+1:]
			status = map[string]any{"authenticated": true, "user": map[string]any{"username": user, "uid": "uid-" + name}}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The gateway logs in with its Kubernetes service account token, which
// Vault checks with the API server; a token of another namespace, or one
// the API server did not issue, is refused.
func TestKubernetesLogin(t *testing.T) {
	s := vaulttest.Start(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := serviceAccountToken(t, key, "proms", "gateway")
	otherNS := serviceAccountToken(t, key, "elsewhere", "gateway")
	forged := serviceAccountToken(t, key, "proms", "gateway") // a valid shape, never issued
	api := tokenReviewServer(t, map[string]string{
		good:    "system:serviceaccount:proms:gateway",
		otherNS: "system:serviceaccount:elsewhere:gateway",
	})
	s.Setup("kubernetes", api.URL, "proms", "gateway")

	login := func(token string) (*hcvault.Client, error) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := approleConfig(s)
		cfg.Auth, cfg.RoleID, cfg.SecretIDFile = "kubernetes", "", ""
		cfg.K8sRole, cfg.K8sTokenFile = "gateway", file
		return hcvault.Connect(context.Background(), cfg, nil)
	}
	c, err := login(good)
	if err != nil {
		t.Fatalf("login with the gateway's service account: %v", err)
	}
	defer c.Close()
	if _, err := c.NewDataKey(context.Background()); err != nil {
		t.Errorf("the Kubernetes login's token cannot use the gateway's keys: %v", err)
	}
	for name, token := range map[string]string{"another namespace": otherNS, "a token the API server did not issue": forged} {
		if c, err := login(token); err == nil {
			c.Close()
			t.Errorf("%s: login succeeded", name)
		}
	}
}
