package hcvault

import (
	"fmt"
	"strconv"
	"time"
)

// Config says how to reach and log in to Vault and which keys to use. The
// Vault client also reads the standard VAULT_* variables (VAULT_ADDR,
// VAULT_CACERT, VAULT_NAMESPACE, VAULT_CLIENT_CERT, ...) from the process
// environment; the fields here override them where set.
type Config struct {
	// Address is Vault's URL (VAULT_ADDR).
	Address string
	// Auth is the login method: "token", "approle" or "kubernetes".
	Auth string
	// Token is the token for Auth "token" (VAULT_TOKEN).
	Token string
	// AuthMount is the auth method's mount path (default: the method's name).
	AuthMount string
	// RoleID and SecretIDFile (or SecretID) log in with AppRole. With
	// SecretIDWrapped the file holds a response-wrapping token that wraps
	// the secret id; it is read again at every login.
	RoleID, SecretID, SecretIDFile string
	SecretIDWrapped                bool
	// K8sRole and K8sTokenFile log in with the Kubernetes method.
	K8sRole, K8sTokenFile string
	// TransitMount is the transit engine's mount path.
	TransitMount string
	// DataKey is the transit key that wraps data keys (aes256-gcm96).
	DataKey string
	// BlindKey is the transit key of blind-index HMACs (type hmac), used at
	// BlindKeyVersion so that rotation never changes a digest.
	BlindKey        string
	BlindKeyVersion int
	// PseudonymKey is the transit key of pseudonyms (type hmac), used at
	// version 1 always: rotating it would change every pseudonym.
	PseudonymKey string
	// SigningKey is the transit key that signs submissions (ecdsa-p256).
	SigningKey string
	// KVMount is the KV v2 mount holding registry credentials.
	KVMount string
	// Timeout bounds each call to Vault, retries included.
	Timeout time.Duration
	// MaxRetries is how often a call is retried after a connection error or
	// a 5xx answer, with backoff.
	MaxRetries int
}

// Default key and mount names; deploy/vault/setup.sh creates them.
const (
	DefaultTransitMount = "transit"
	DefaultDataKey      = "gateway-data"
	DefaultBlindKey     = "gateway-blind"
	DefaultPseudonymKey = "gateway-pseudonym"
	DefaultSigningKey   = "gateway-signing"
	DefaultKVMount      = "secret"
)

// ConfigFromEnv reads the configuration from the environment:
//
//	VAULT_ADDR, VAULT_TOKEN                  address and token (Auth "token")
//	GATEWAY_VAULT_AUTH                       token | approle | kubernetes (default token)
//	GATEWAY_VAULT_AUTH_MOUNT                 auth mount path (default approle / kubernetes)
//	GATEWAY_VAULT_ROLE_ID                    AppRole role id
//	GATEWAY_VAULT_SECRET_ID_FILE             file holding the AppRole secret id ...
//	GATEWAY_VAULT_SECRET_ID                  ... or the secret id itself
//	GATEWAY_VAULT_SECRET_ID_WRAPPED          true: the secret id is response-wrapped
//	GATEWAY_VAULT_K8S_ROLE                   Kubernetes role
//	GATEWAY_VAULT_K8S_TOKEN_FILE             service account token (default the pod's)
//	GATEWAY_VAULT_TRANSIT_MOUNT              default transit
//	GATEWAY_VAULT_DATA_KEY                   default gateway-data
//	GATEWAY_VAULT_BLIND_KEY                  default gateway-blind
//	GATEWAY_VAULT_BLIND_KEY_VERSION          default 1
//	GATEWAY_VAULT_PSEUDONYM_KEY              default gateway-pseudonym
//	GATEWAY_VAULT_SIGNING_KEY                default gateway-signing
//	GATEWAY_VAULT_KV_MOUNT                   default secret
//	GATEWAY_VAULT_TIMEOUT                    per call, Go duration (default 5s)
//	GATEWAY_VAULT_MAX_RETRIES                default 2
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Address:      getenv("VAULT_ADDR"),
		Auth:         or(getenv("GATEWAY_VAULT_AUTH"), "token"),
		Token:        getenv("VAULT_TOKEN"),
		AuthMount:    getenv("GATEWAY_VAULT_AUTH_MOUNT"),
		RoleID:       getenv("GATEWAY_VAULT_ROLE_ID"),
		SecretID:     getenv("GATEWAY_VAULT_SECRET_ID"),
		SecretIDFile: getenv("GATEWAY_VAULT_SECRET_ID_FILE"),
		K8sRole:      getenv("GATEWAY_VAULT_K8S_ROLE"),
		K8sTokenFile: getenv("GATEWAY_VAULT_K8S_TOKEN_FILE"),
		TransitMount: or(getenv("GATEWAY_VAULT_TRANSIT_MOUNT"), DefaultTransitMount),
		DataKey:      or(getenv("GATEWAY_VAULT_DATA_KEY"), DefaultDataKey),
		BlindKey:     or(getenv("GATEWAY_VAULT_BLIND_KEY"), DefaultBlindKey),
		PseudonymKey: or(getenv("GATEWAY_VAULT_PSEUDONYM_KEY"), DefaultPseudonymKey),
		SigningKey:   or(getenv("GATEWAY_VAULT_SIGNING_KEY"), DefaultSigningKey),
		KVMount:      or(getenv("GATEWAY_VAULT_KV_MOUNT"), DefaultKVMount),
	}
	var err error
	if c.SecretIDWrapped, err = strconv.ParseBool(or(getenv("GATEWAY_VAULT_SECRET_ID_WRAPPED"), "false")); err != nil {
		return c, fmt.Errorf("GATEWAY_VAULT_SECRET_ID_WRAPPED: want true or false")
	}
	if c.BlindKeyVersion, err = strconv.Atoi(or(getenv("GATEWAY_VAULT_BLIND_KEY_VERSION"), "1")); err != nil || c.BlindKeyVersion < 1 {
		return c, fmt.Errorf("GATEWAY_VAULT_BLIND_KEY_VERSION: want a positive integer")
	}
	if c.Timeout, err = time.ParseDuration(or(getenv("GATEWAY_VAULT_TIMEOUT"), "5s")); err != nil || c.Timeout <= 0 {
		return c, fmt.Errorf("GATEWAY_VAULT_TIMEOUT: want a positive Go duration such as 5s")
	}
	if c.MaxRetries, err = strconv.Atoi(or(getenv("GATEWAY_VAULT_MAX_RETRIES"), "2")); err != nil || c.MaxRetries < 0 {
		return c, fmt.Errorf("GATEWAY_VAULT_MAX_RETRIES: want a non-negative integer")
	}
	return c, c.check()
}

func (c Config) check() error {
	switch c.Auth {
	case "token":
		if c.Token == "" {
			return fmt.Errorf("vault: token login needs VAULT_TOKEN")
		}
	case "approle":
		if c.RoleID == "" || (c.SecretIDFile == "" && c.SecretID == "") {
			return fmt.Errorf("vault: AppRole login needs GATEWAY_VAULT_ROLE_ID and GATEWAY_VAULT_SECRET_ID_FILE (or GATEWAY_VAULT_SECRET_ID)")
		}
	case "kubernetes":
		if c.K8sRole == "" {
			return fmt.Errorf("vault: Kubernetes login needs GATEWAY_VAULT_K8S_ROLE")
		}
	default:
		return fmt.Errorf("vault: GATEWAY_VAULT_AUTH=%q: want token, approle or kubernetes", c.Auth)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
