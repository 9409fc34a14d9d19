package pseudonym_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/pseudonym"
	"github.com/promsgateway/gateway/vault/vaulttest"
)

var codeShape = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z*~$=U]$`)

func service(t *testing.T, keys vault.Pseudonyms) (*pseudonym.Service, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "gw.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return pseudonym.New(keys, st), st
}

func TestNormalize(t *testing.T) {
	ks, _ := devkeystore.Open(filepath.Join(t.TempDir(), "k.json"), false, nil)
	svc, _ := service(t, ks)
	codes, err := svc.Pseudonyms(context.Background(), "study-S1", []string{"p1"})
	if err != nil {
		t.Fatal(err)
	}
	code := codes[0]
	if !codeShape.MatchString(code) {
		t.Fatalf("pseudonym %q is not 12 Crockford characters and a check", code)
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", ""))
	tests := []struct {
		in string
		ok bool
	}{
		{code, true},
		{typed, true},
		{strings.ReplaceAll(code, "-", " "), true},
		{code[:len(code)-1] + string(other(code[len(code)-1])), false}, // wrong check
		{swap(code), false}, // two characters swapped
		{code[:10], false},
		{"ÅÅÅÅ-ÅÅÅÅ-ÅÅÅÅ-Å", false},
		{"", false},
	}
	for _, tc := range tests {
		got, err := pseudonym.Normalize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != code) {
			t.Errorf("Normalize(%q) = %q, %v; want ok=%v", tc.in, got, err, tc.ok)
		}
	}
	// Crockford's reading of look-alikes: O is 0, I and L are 1.
	if strings.ContainsAny(code[:14], "01") {
		lookalike := strings.NewReplacer("0", "O", "1", "l").Replace(code[:14]) + code[14:]
		if got, err := pseudonym.Normalize(lookalike); err != nil || got != code {
			t.Errorf("Normalize(%q) = %q, %v", lookalike, got, err)
		}
	}
}

func other(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

func swap(code string) string {
	b := []byte(code)
	for i := 0; i+1 < 4; i++ {
		if b[i] != b[i+1] {
			b[i], b[i+1] = b[i+1], b[i]
			return string(b)
		}
	}
	return code[:0]
}

// The properties docs/pseudonymisation.md promises, on the development
// keystore.
func TestPseudonyms(t *testing.T) {
	ks, _ := devkeystore.Open(filepath.Join(t.TempDir(), "k.json"), false, nil)
	svc, st := service(t, ks)
	ctx := context.Background()
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("patient-%d", i)
	}
	s1, err := svc.Pseudonyms(ctx, "study-S1", ids)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := svc.Pseudonyms(ctx, "study-S1", ids[:10])
	site, _ := svc.Pseudonyms(ctx, "site-RXY01", ids)
	seen := map[string]bool{}
	for i := range ids {
		if seen[s1[i]] {
			t.Errorf("two patients share %s", s1[i])
		}
		seen[s1[i]] = true
		if i < 10 && again[i] != s1[i] {
			t.Errorf("patient %d: %s then %s in one domain", i, s1[i], again[i])
		}
		if site[i] == s1[i] {
			t.Errorf("patient %d has one pseudonym in two domains", i)
		}
	}
	held, err := st.Escrows(ctx, "study-S1", s1)
	if err != nil || len(held) != len(ids) {
		t.Fatalf("%d escrows for %d pseudonyms: %v", len(held), len(ids), err)
	}

	got, holder, err := svc.Reidentify(ctx, devkeystore.DevelopmentHolder, "study-S1", strings.ToLower(s1[7]))
	if err != nil || got != "Patient/patient-7" || holder == "" {
		t.Errorf("reidentify: %q %q %v", got, holder, err)
	}
	for _, tc := range []struct {
		name, cred, domain, code string
		want                     error
	}{
		{"wrong credential", "someone", "study-S1", s1[7], vault.ErrDenied},
		{"no credential", "", "study-S1", s1[7], vault.ErrDenied},
		{"another domain's pseudonym", devkeystore.DevelopmentHolder, "site-RXY01", s1[7], pseudonym.ErrUnknown},
		{"bad domain", devkeystore.DevelopmentHolder, "S1", s1[7], pseudonym.ErrDomain},
		{"bad code", devkeystore.DevelopmentHolder, "study-S1", "XXXX", pseudonym.ErrCode},
	} {
		if _, _, err := svc.Reidentify(ctx, tc.cred, tc.domain, tc.code); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	if _, err := svc.Pseudonyms(ctx, "nonsense", ids[:1]); !errors.Is(err, pseudonym.ErrDomain) {
		t.Errorf("bad domain: %v", err)
	}
}

// With Vault, re-identification is decided by Vault's policies: the
// domain's key holder and the super-administrator may, the gateway's own
// token and other domains' key holders may not; and no key rotation
// changes a pseudonym.
func TestReidentifyWithVault(t *testing.T) {
	v := vaulttest.Start(t)
	v.Setup("domain", "study-S1")
	v.Setup("domain", "site-RXY01")
	connect := func() *hcvault.Client {
		c, err := hcvault.Connect(context.Background(), hcvault.Config{
			Address: v.Addr, Auth: "approle", RoleID: v.RoleID, SecretIDFile: v.SecretIDFile,
			TransitMount: "transit", DataKey: hcvault.DefaultDataKey, BlindKey: hcvault.DefaultBlindKey, BlindKeyVersion: 1,
			PseudonymKey: hcvault.DefaultPseudonymKey, KVMount: "secret", Timeout: 5e9, MaxRetries: 1,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	svc, st := service(t, connect())
	ctx := context.Background()
	s1, err := svc.Pseudonyms(ctx, "study-S1", []string{"p1", "p2"})
	if err != nil {
		t.Fatal(err)
	}
	site, err := svc.Pseudonyms(ctx, "site-RXY01", []string{"p1"})
	if err != nil {
		t.Fatal(err)
	}
	gatewayToken := v.Token("gateway")
	tests := []struct {
		who, token, domain, code string
		want                     string
	}{
		{"lead investigator of S1", v.Token("keyholder-study-S1"), "study-S1", s1[1], "Patient/p2"},
		{"facility coordinator of RXY01", v.Token("keyholder-site-RXY01"), "site-RXY01", site[0], "Patient/p1"},
		{"super-administrator", v.Token("superadmin"), "study-S1", s1[0], "Patient/p1"},
		{"the gateway itself", gatewayToken, "study-S1", s1[0], ""},
		{"lead investigator of S1, a site pseudonym", v.Token("keyholder-study-S1"), "site-RXY01", site[0], ""},
		{"the operator", v.Token("operator"), "study-S1", s1[0], ""},
	}
	for _, tc := range tests {
		got, holder, err := svc.Reidentify(ctx, tc.token, tc.domain, tc.code)
		if tc.want == "" {
			if !errors.Is(err, vault.ErrDenied) {
				t.Errorf("%s: %q, %v; want ErrDenied", tc.who, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || !strings.HasPrefix(holder, "token") {
			t.Errorf("%s: %q (holder %q), %v; want %s", tc.who, got, holder, err, tc.want)
		}
	}
	// Rotating every key the administrator can rotate changes no pseudonym.
	for _, k := range []string{"gateway-data", "gateway-pseudonym", "gateway-blind"} {
		if out, err := v.Run(v.RootToken, "write", "-f", "transit/keys/"+k+"/rotate"); err != nil {
			t.Fatal(out)
		}
	}
	// A new client, so that no cached digest answers.
	after, err := pseudonym.New(connect(), st).Pseudonyms(ctx, "study-S1", []string{"p1", "p2"})
	if err != nil || after[0] != s1[0] || after[1] != s1[1] {
		t.Errorf("after rotation %v, before %v (%v)", after, s1, err)
	}
}
