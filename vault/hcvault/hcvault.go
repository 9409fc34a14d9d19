// Package hcvault is the gateway's key holder in HashiCorp Vault: it logs in
// (token, AppRole or Kubernetes), keeps its token alive, and implements
// vault.Keys with the transit engine (data keys wrapped by a transit key,
// blind-index HMACs) and reads registry credentials from KV v2.
//
// Every call has a timeout and is retried with backoff on connection errors
// and 5xx answers; when Vault cannot be reached the error wraps
// vault.ErrUnavailable so that callers fail closed (503).
package hcvault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/promsgateway/gateway/vault"
)

// Client is a logged-in Vault client. It implements vault.Keys.
type Client struct {
	cfg Config
	api *api.Client
	log *slog.Logger

	loggedIn atomic.Bool
	// down is set while Vault does not answer (a failed call or health
	// check) and cleared by the next success.
	down    atomic.Bool
	loginMu sync.Mutex
	stop    chan struct{}
	done    chan struct{}

	macMu    sync.Mutex
	macCache map[string][]byte

	calls atomic.Int64
}

var (
	_ vault.Keys       = (*Client)(nil)
	_ vault.Pseudonyms = (*Client)(nil)
	_ vault.Signer     = (*Client)(nil)
)

// maxCachedDigests bounds the blind-index digest cache; past it the cache
// is cleared.
const maxCachedDigests = 100_000

// Connect builds a client and logs in. Bad credentials are an error; an
// unreachable Vault is not: the client keeps trying in the background, its
// calls fail with vault.ErrUnavailable meanwhile, and Ping reports it.
func Connect(ctx context.Context, cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("vault: %w", ac.Error)
	}
	if cfg.Address != "" {
		ac.Address = cfg.Address
	}
	ac.Timeout = cfg.Timeout
	ac.MaxRetries = cfg.MaxRetries
	ac.MinRetryWait = 100 * time.Millisecond
	ac.MaxRetryWait = time.Second
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	client.ClearToken()
	c := &Client{cfg: cfg, api: client, log: log, stop: make(chan struct{}), done: make(chan struct{}), macCache: map[string][]byte{}}
	secret, err := c.login(ctx)
	if err != nil && !errors.Is(err, vault.ErrUnavailable) {
		return nil, err
	}
	if err != nil {
		log.Error("vault unreachable at start; retrying in the background", "addr", ac.Address, "error", err)
	}
	c.down.Store(err != nil)
	go c.keepLoggedIn(secret)
	go c.watchHealth()
	return c, nil
}

// HealthInterval is how often the client checks that Vault answers, so that
// writes stop within it after Vault goes away.
const HealthInterval = 2 * time.Second

// watchHealth pings Vault every HealthInterval until Close.
func (c *Client) watchHealth() {
	t := time.NewTicker(HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.Ping(context.Background())
		}
	}
}

// Available reports whether Vault answered the last call or health check.
func (c *Client) Available() error {
	if !c.loggedIn.Load() {
		return fmt.Errorf("%w: not logged in to vault", vault.ErrUnavailable)
	}
	if c.down.Load() {
		return fmt.Errorf("%w: vault does not answer", vault.ErrUnavailable)
	}
	return nil
}

// observe records whether a call reached Vault.
func (c *Client) observe(err error) error {
	if err == nil {
		c.down.Store(false)
	} else if errors.Is(err, vault.ErrUnavailable) {
		c.down.Store(true)
	}
	return err
}

// Close stops token renewal.
func (c *Client) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// Calls reports how many key and secret requests the client has sent to
// Vault (logins and token renewals are not counted).
func (c *Client) Calls() int64 { return c.calls.Load() }

// login logs in with the configured method and returns the auth secret.
func (c *Client) login(ctx context.Context) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var (
		s   *api.Secret
		err error
	)
	switch c.cfg.Auth {
	case "token":
		c.api.SetToken(c.cfg.Token)
		s, err = c.lookupSelf(ctx)
	case "approle":
		sid := &approle.SecretID{FromFile: c.cfg.SecretIDFile}
		if sid.FromFile == "" {
			sid.FromString = c.cfg.SecretID
		}
		var opts []approle.LoginOption
		if c.cfg.AuthMount != "" {
			opts = append(opts, approle.WithMountPath(c.cfg.AuthMount))
		}
		if c.cfg.SecretIDWrapped {
			opts = append(opts, approle.WithWrappingToken())
		}
		var a *approle.AppRoleAuth
		if a, err = approle.NewAppRoleAuth(c.cfg.RoleID, sid, opts...); err == nil {
			s, err = c.api.Auth().Login(ctx, a)
		}
	case "kubernetes":
		var opts []kubernetes.LoginOption
		if c.cfg.AuthMount != "" {
			opts = append(opts, kubernetes.WithMountPath(c.cfg.AuthMount))
		}
		if c.cfg.K8sTokenFile != "" {
			opts = append(opts, kubernetes.WithServiceAccountTokenPath(c.cfg.K8sTokenFile))
		}
		var a *kubernetes.KubernetesAuth
		if a, err = kubernetes.NewKubernetesAuth(c.cfg.K8sRole, opts...); err == nil {
			s, err = c.api.Auth().Login(ctx, a)
		}
	}
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 && re.StatusCode != http.StatusTooManyRequests {
			// The credentials were refused (a wrong role, a service account
			// token the API server does not vouch for): waiting will not help.
			return nil, fmt.Errorf("vault %s login refused: %d %s", c.cfg.Auth, re.StatusCode, strings.Join(re.Errors, "; "))
		}
		return nil, fmt.Errorf("vault %s login: %w", c.cfg.Auth, classify(err))
	}
	if s == nil || s.Auth == nil {
		return nil, fmt.Errorf("vault %s login: no token in the answer", c.cfg.Auth)
	}
	c.loggedIn.Store(true)
	c.log.Info("vault login", "method", c.cfg.Auth, "ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable)
	return s, nil
}

// lookupSelf describes the current token as an auth secret, for renewal.
func (c *Client) lookupSelf(ctx context.Context) (*api.Secret, error) {
	s, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("empty token lookup")
	}
	ttl, _ := s.TokenTTL()
	renewable, _ := s.TokenIsRenewable()
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: c.api.Token(), LeaseDuration: int(ttl.Seconds()), Renewable: renewable}}, nil
}

// keepLoggedIn renews the token while it can and logs in again when renewal
// ends (max TTL reached, token revoked, Vault back after an outage).
func (c *Client) keepLoggedIn(secret *api.Secret) {
	defer close(c.done)
	backoff := 200 * time.Millisecond
	for {
		if secret != nil {
			if !c.hold(secret) {
				return
			}
			secret = nil
		}
		var (
			s   *api.Secret
			err error
		)
		if c.cfg.Auth == "token" {
			// A given token cannot be replaced: is it still good (Vault
			// was away), or has it ended?
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
			s, err = c.lookupSelf(ctx)
			cancel()
			if err != nil && !errors.Is(classify(err), vault.ErrUnavailable) {
				c.loggedIn.Store(false)
				c.log.Error("vault token is no longer valid and token login cannot renew itself; set a new VAULT_TOKEN or use AppRole", "error", err)
				<-c.stop
				return
			}
			if err == nil {
				c.loggedIn.Store(true)
			}
		} else {
			c.loginMu.Lock()
			s, err = c.login(context.Background())
			c.loginMu.Unlock()
		}
		if err == nil {
			secret, backoff = s, 200*time.Millisecond
			continue
		}
		c.loggedIn.Store(false)
		c.log.Warn("vault login failed; retrying", "error", err, "in", backoff)
		select {
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// hold keeps secret's token alive until it can no longer be renewed; false
// means the client was closed.
func (c *Client) hold(secret *api.Secret) bool {
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	if ttl == 0 {
		<-c.stop // a token without expiry (a root token in development)
		return false
	}
	if !secret.Auth.Renewable {
		select {
		case <-c.stop:
			return false
		case <-time.After(ttl * 2 / 3):
			return true
		}
	}
	w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		c.log.Error("vault token watcher", "error", err)
		return true
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-c.stop:
			return false
		case err := <-w.DoneCh():
			if err != nil {
				c.log.Warn("vault token renewal ended", "error", err)
			} else {
				c.log.Info("vault token reached its maximum lifetime; logging in again")
			}
			return true
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.log.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

// classify marks the errors that mean "Vault cannot serve us now" (no
// connection, timeout, 5xx, sealed, our token refused) with
// vault.ErrUnavailable, and a ciphertext Vault refused with
// vault.ErrInvalidCiphertext.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode >= 500, re.StatusCode == http.StatusForbidden, re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: %d %s", vault.ErrUnavailable, re.StatusCode, msg)
		case re.StatusCode == http.StatusBadRequest && (strings.Contains(msg, "authentication failed") || strings.Contains(msg, "invalid ciphertext") || strings.Contains(msg, "decrypt")):
			return fmt.Errorf("%w: %s", vault.ErrInvalidCiphertext, msg)
		}
		return fmt.Errorf("vault answered %d: %s", re.StatusCode, msg)
	}
	if errors.Is(err, vault.ErrUnavailable) || errors.Is(err, vault.ErrInvalidCiphertext) {
		return err
	}
	// Anything else is transport: refused, reset, timed out.
	return fmt.Errorf("%w: %v", vault.ErrUnavailable, err)
}

// write sends one request with the call timeout. A token that expired
// before the renewal loop replaced it (its max TTL fell between two
// renewals) is replaced at once and the request sent again.
func (c *Client) write(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	if !c.loggedIn.Load() {
		return nil, fmt.Errorf("%w: not logged in to vault", vault.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.calls.Add(1)
	token := c.api.Token()
	s, err := c.api.Logical().WriteWithContext(ctx, path, data)
	if err != nil && invalidToken(err) && c.cfg.Auth != "token" {
		if lerr := c.relogin(ctx, token); lerr != nil {
			return nil, lerr
		}
		c.calls.Add(1)
		s, err = c.api.Logical().WriteWithContext(ctx, path, data)
	}
	if err != nil {
		return nil, c.observe(classify(err))
	}
	c.observe(nil)
	if s == nil {
		// Endpoints that change settings answer 204 with no body.
		s = &api.Secret{Data: map[string]any{}}
	}
	return s, nil
}

// invalidToken reports Vault's answer to an expired or revoked token.
func invalidToken(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden && strings.Contains(strings.Join(re.Errors, " "), "invalid token")
}

// relogin logs in again unless another caller already replaced the failed
// token.
func (c *Client) relogin(ctx context.Context, failed string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.api.Token() != failed {
		return nil
	}
	_, err := c.login(ctx)
	return err
}

func (c *Client) transit(op, key string) string {
	return c.cfg.TransitMount + "/" + op + "/" + key
}

// NewDataKey asks transit for a new 256-bit data key in wrapped form
// (datakey/wrapped: Vault returns only the ciphertext) and unwraps it
// once to use it.
func (c *Client) NewDataKey(ctx context.Context) (vault.DataKey, error) {
	s, err := c.write(ctx, c.transit("datakey/wrapped", c.cfg.DataKey), map[string]any{"bits": 256})
	if err != nil {
		return vault.DataKey{}, fmt.Errorf("new data key: %w", err)
	}
	ct, _ := s.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v") {
		return vault.DataKey{}, fmt.Errorf("new data key: unexpected ciphertext %.16q", ct)
	}
	pt, err := c.Unwrap(ctx, []byte(ct))
	if err != nil {
		return vault.DataKey{}, err
	}
	return vault.DataKey{Plaintext: pt, Wrapped: []byte(ct)}, nil
}

// Unwrap decrypts a wrapped data key with transit.
func (c *Client) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	if !strings.HasPrefix(string(wrapped), "vault:v") {
		return nil, fmt.Errorf("unwrap: not a Vault transit ciphertext: %w", vault.ErrInvalidCiphertext)
	}
	s, err := c.write(ctx, c.transit("decrypt", c.cfg.DataKey), map[string]any{"ciphertext": string(wrapped)})
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	b64, _ := s.Data["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(pt) != 32 {
		return nil, fmt.Errorf("unwrap: transit returned no 256-bit key")
	}
	return pt, nil
}

// Rewrap re-encrypts wrapped data keys under the latest version of the
// transit key, in one batch call; the data keys themselves do not change.
func (c *Client) Rewrap(ctx context.Context, wrapped [][]byte) ([][]byte, error) {
	items := make([]map[string]any, len(wrapped))
	for i, w := range wrapped {
		items[i] = map[string]any{"ciphertext": string(w)}
	}
	results, err := c.batch(ctx, c.transit("rewrap", c.cfg.DataKey), map[string]any{}, items)
	if err != nil {
		return nil, fmt.Errorf("rewrap: %w", err)
	}
	out := make([][]byte, len(results))
	for i, r := range results {
		ct, _ := r["ciphertext"].(string)
		out[i] = []byte(ct)
	}
	return out, nil
}

// maxBatch is the most items one transit batch call carries: a few hundred
// kilobytes of request, well inside Vault's 32 MB limit.
const maxBatch = 10_000

// batch sends items as batch_input in calls of at most maxBatch and returns
// batch_results in order; an item's own error fails the whole call.
func (c *Client) batch(ctx context.Context, path string, params map[string]any, items []map[string]any) ([]map[string]any, error) {
	var out []map[string]any
	for start := 0; start < len(items); start += maxBatch {
		part := items[start:min(start+maxBatch, len(items))]
		data := map[string]any{"batch_input": part}
		for k, v := range params {
			data[k] = v
		}
		s, err := c.write(ctx, path, data)
		if err != nil {
			return nil, err
		}
		raw, _ := s.Data["batch_results"].([]any)
		if len(raw) != len(part) {
			return nil, fmt.Errorf("%s: %d results for %d inputs", path, len(raw), len(part))
		}
		for i, r := range raw {
			m, _ := r.(map[string]any)
			if e, _ := m["error"].(string); e != "" {
				return nil, classify(&api.ResponseError{StatusCode: http.StatusBadRequest, Errors: []string{fmt.Sprintf("item %d: %s", start+i, e)}})
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// HMAC computes HMAC-SHA256 of each input with the blind-index key at its
// pinned version, in batch calls; digests are cached, so a value seen before
// costs no call.
func (c *Client) HMAC(ctx context.Context, inputs [][]byte) ([][]byte, error) {
	return c.hmac(ctx, c.cfg.BlindKey, c.cfg.BlindKeyVersion, inputs)
}

// PseudonymHMAC computes HMAC-SHA256 of each input with the pseudonym key
// at version 1.
func (c *Client) PseudonymHMAC(ctx context.Context, inputs [][]byte) ([][]byte, error) {
	return c.hmac(ctx, or(c.cfg.PseudonymKey, DefaultPseudonymKey), 1, inputs)
}

func (c *Client) hmac(ctx context.Context, key string, version int, inputs [][]byte) ([][]byte, error) {
	out := make([][]byte, len(inputs))
	var (
		missing []int
		items   []map[string]any
	)
	cacheKey := func(in []byte) string { return key + "\x00" + string(in) }
	c.macMu.Lock()
	for i, in := range inputs {
		if d, ok := c.macCache[cacheKey(in)]; ok {
			out[i] = d
			continue
		}
		missing = append(missing, i)
		items = append(items, map[string]any{"input": base64.StdEncoding.EncodeToString(in)})
	}
	c.macMu.Unlock()
	if len(items) == 0 {
		return out, nil
	}
	results, err := c.batch(ctx, c.transit("hmac", key)+"/sha2-256", map[string]any{"key_version": version}, items)
	if err != nil {
		return nil, fmt.Errorf("hmac: %w", err)
	}
	c.macMu.Lock()
	defer c.macMu.Unlock()
	if len(c.macCache)+len(results) > maxCachedDigests {
		clear(c.macCache)
	}
	for j, r := range results {
		h, _ := r["hmac"].(string)
		d, err := decodeVaultValue(h)
		if err != nil {
			return nil, fmt.Errorf("hmac: %w", err)
		}
		i := missing[j]
		out[i] = d
		c.macCache[cacheKey(inputs[i])] = d
	}
	return out, nil
}

// escrowKey is the transit key of a pseudonym domain (deploy/vault/setup.sh
// domain creates it).
func escrowKey(domain string) string { return "reid-" + domain }

// SealEscrow encrypts each plaintext with the domain's escrow key, in batch
// calls. The gateway's policy allows encrypt and not decrypt.
func (c *Client) SealEscrow(ctx context.Context, domain string, plaintexts [][]byte) ([]string, error) {
	items := make([]map[string]any, len(plaintexts))
	for i, p := range plaintexts {
		items[i] = map[string]any{"plaintext": base64.StdEncoding.EncodeToString(p)}
	}
	results, err := c.batch(ctx, c.transit("encrypt", escrowKey(domain)), map[string]any{}, items)
	if err != nil {
		return nil, fmt.Errorf("escrow for %s: %w", domain, err)
	}
	out := make([]string, len(results))
	for i, r := range results {
		out[i], _ = r["ciphertext"].(string)
	}
	return out, nil
}

// holderClient is a client that acts with a key holder's token.
func (c *Client) holderClient(token string) (*api.Client, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no key holder token", vault.ErrDenied)
	}
	hc, err := c.api.Clone()
	if err != nil {
		return nil, err
	}
	hc.SetToken(token)
	return hc, nil
}

// holderError maps Vault's refusal of a key holder's token to ErrDenied.
func holderError(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized) {
		return fmt.Errorf("%w: %s", vault.ErrDenied, strings.Join(re.Errors, "; "))
	}
	return classify(err)
}

// OpenEscrow decrypts an escrow with the key holder's token; Vault's policy
// decides whether that holder may open this domain's escrows.
func (c *Client) OpenEscrow(ctx context.Context, token, domain, sealed string) ([]byte, error) {
	hc, err := c.holderClient(token)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.calls.Add(1)
	s, err := hc.Logical().WriteWithContext(ctx, c.transit("decrypt", escrowKey(domain)), map[string]any{"ciphertext": sealed})
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w", holderError(err))
	}
	b64, _ := s.Data["plaintext"].(string)
	return base64.StdEncoding.DecodeString(b64)
}

// Holder names the owner of a key holder's token (its display name and
// entity), looked up with the token itself.
func (c *Client) Holder(ctx context.Context, token string) (string, error) {
	hc, err := c.holderClient(token)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := hc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("key holder: %w", holderError(err))
	}
	name, _ := s.Data["display_name"].(string)
	if entity, _ := s.Data["entity_id"].(string); entity != "" {
		name += " (entity " + entity + ")"
	}
	return name, nil
}

// decodeVaultValue reads "vault:vN:base64".
func decodeVaultValue(s string) ([]byte, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" {
		return nil, fmt.Errorf("unexpected transit value %.12q", s)
	}
	return base64.StdEncoding.DecodeString(parts[2])
}

// Secret reads a KV v2 secret (registry credentials) at path. Values are
// returned to the caller and never logged.
func (c *Client) Secret(ctx context.Context, path string) (map[string]any, error) {
	if !c.loggedIn.Load() {
		return nil, fmt.Errorf("%w: not logged in to vault", vault.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.calls.Add(1)
	s, err := c.api.KVv2(c.cfg.KVMount).Get(ctx, path)
	if errors.Is(err, api.ErrSecretNotFound) {
		return nil, fmt.Errorf("secret %s/%s: not found", c.cfg.KVMount, path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", c.cfg.KVMount, path, classify(err))
	}
	return s.Data, nil
}

// Ping reports whether Vault is reachable, unsealed, and the client holds a
// valid token. It is a health check and not counted in Calls.
func (c *Client) Ping(ctx context.Context) error {
	if !c.loggedIn.Load() {
		return fmt.Errorf("%w: not logged in to vault", vault.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	h, err := c.api.Sys().HealthWithContext(ctx)
	if err != nil {
		return c.observe(classify(err))
	}
	if h.Sealed {
		return c.observe(fmt.Errorf("%w: vault is sealed", vault.ErrUnavailable))
	}
	return c.observe(nil)
}

// Name describes the key holder for logs and readiness reports.
func (c *Client) Name() string {
	return fmt.Sprintf("vault transit %s (%s/%s)", c.api.Address(), c.cfg.TransitMount, c.cfg.DataKey)
}

// WrappedVersion returns the transit key version that wrapped a data key
// ("vault:v3:..." is 3), or 0 when wrapped is not a transit ciphertext.
func WrappedVersion(wrapped []byte) int {
	rest, ok := strings.CutPrefix(string(wrapped), "vault:v")
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i < len(rest) && rest[i] != ':'; i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0
		}
		n = n*10 + int(rest[i]-'0')
	}
	return n
}

// KeyVersions reads the data key's latest and minimum decryption versions.
func (c *Client) KeyVersions(ctx context.Context) (latest, minDecryption int, err error) {
	if !c.loggedIn.Load() {
		return 0, 0, fmt.Errorf("%w: not logged in to vault", vault.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.calls.Add(1)
	s, err := c.api.Logical().ReadWithContext(ctx, c.cfg.TransitMount+"/keys/"+c.cfg.DataKey)
	if err != nil {
		return 0, 0, c.observe(classify(err))
	}
	if s == nil {
		return 0, 0, fmt.Errorf("transit key %s not found", c.cfg.DataKey)
	}
	l, err1 := s.Data["latest_version"].(json.Number).Int64()
	m, err2 := s.Data["min_decryption_version"].(json.Number).Int64()
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("transit key %s: unreadable versions", c.cfg.DataKey)
	}
	return int(l), int(m), nil
}

// SetMinDecryptionVersion raises the data key's minimum decryption version,
// after every stored data key was rewrapped to at least v; the versions
// below can then decrypt nothing. The gateway's policy allows this one
// setting of the key.
func (c *Client) SetMinDecryptionVersion(ctx context.Context, v int) error {
	_, err := c.write(ctx, c.cfg.TransitMount+"/keys/"+c.cfg.DataKey+"/config", map[string]any{"min_decryption_version": v})
	return err
}

// Rotate makes a new version of the data key; new data keys are wrapped
// with it. It needs the operator's policy.
func (c *Client) Rotate(ctx context.Context) error {
	_, err := c.write(ctx, c.cfg.TransitMount+"/keys/"+c.cfg.DataKey+"/rotate", map[string]any{})
	return err
}

// Sign signs each input with the signing key (SHA-256), in batch calls.
// Signatures are "vault:vN:base64", N the key version.
func (c *Client) Sign(ctx context.Context, inputs [][]byte) ([]string, error) {
	items := make([]map[string]any, len(inputs))
	for i, in := range inputs {
		items[i] = map[string]any{"input": base64.StdEncoding.EncodeToString(in)}
	}
	results, err := c.batch(ctx, c.transit("sign", or(c.cfg.SigningKey, DefaultSigningKey))+"/sha2-256", map[string]any{}, items)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out := make([]string, len(results))
	for i, r := range results {
		out[i], _ = r["signature"].(string)
	}
	return out, nil
}

// Verify checks each input's signature, in batch calls.
func (c *Client) Verify(ctx context.Context, inputs [][]byte, signatures []string) ([]bool, error) {
	if len(inputs) != len(signatures) {
		return nil, fmt.Errorf("verify: %d inputs, %d signatures", len(inputs), len(signatures))
	}
	items := make([]map[string]any, len(inputs))
	for i, in := range inputs {
		items[i] = map[string]any{"input": base64.StdEncoding.EncodeToString(in), "signature": signatures[i]}
	}
	results, err := c.batch(ctx, c.transit("verify", or(c.cfg.SigningKey, DefaultSigningKey))+"/sha2-256", map[string]any{}, items)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	out := make([]bool, len(results))
	for i, r := range results {
		out[i], _ = r["valid"].(bool)
	}
	return out, nil
}
