#!/usr/bin/env bash
# Sets up a Vault for the gateway, idempotently: the transit and KV v2
# engines, the gateway's keys with their types, the policies in policies/,
# and the AppRoles. Needs VAULT_ADDR and a VAULT_TOKEN allowed to do all
# that (a root or admin token, used once).
#
#   setup.sh                  engines, keys, policies, AppRoles
#   setup.sh domain DOMAIN    a pseudonym domain (study-<id>, site-<code>,
#                             registry-<name>): its escrow key reid-DOMAIN and
#                             the policy keyholder-DOMAIN for its key holders
#   setup.sh kubernetes HOST NAMESPACE [SERVICE_ACCOUNT]
#                             the Kubernetes auth method against the API server
#                             at HOST, and the role gateway for the gateway's
#                             service account (default gateway) in NAMESPACE.
#                             Vault checks each login's token with the API
#                             server's TokenReview. KUBERNETES_CA_CERT names
#                             the API server's CA file; with Vault outside the
#                             cluster set KUBERNETES_REVIEWER_JWT to a token
#                             allowed to create TokenReviews.
#
# With GATEWAY_VAULT_SETUP_OUT=DIR the gateway's AppRole role id and a new
# secret id are written to DIR/gateway-role-id and DIR/gateway-secret-id
# (mode 0600). VAULT_BIN names the vault binary (default: vault on PATH).
set -euo pipefail

: "${VAULT_ADDR:?set VAULT_ADDR}"
: "${VAULT_TOKEN:?set VAULT_TOKEN}"
vault=${VAULT_BIN:-vault}
here=$(cd "$(dirname "$0")" && pwd)

# key NAME TYPE [PARAM=VALUE...]: create a transit key unless it exists.
# Keys are never exportable and cannot be deleted (deletion_allowed stays
# false).
key() {
  local name=$1 type=$2
  shift 2
  if ! "$vault" read -format=json "transit/keys/$name" >/dev/null 2>&1; then
    "$vault" write -f "transit/keys/$name" type="$type" "$@" >/dev/null
    echo "created transit key $name ($type)"
  fi
}

if [ "${1:-}" = domain ]; then
  domain=${2:?usage: setup.sh domain DOMAIN}
  case $domain in
    study-* | site-* | registry-*) ;;
    *) echo "domain must be study-<id>, site-<code> or registry-<name>" >&2; exit 2 ;;
  esac
  key "reid-$domain" aes256-gcm96
  sed "s/DOMAIN/$domain/" "$here/policies/keyholder.hcl.tmpl" | "$vault" policy write "keyholder-$domain" - >/dev/null
  echo "policy keyholder-$domain written"
  exit 0
fi

if [ "${1:-}" = kubernetes ]; then
  host=${2:?usage: setup.sh kubernetes HOST NAMESPACE [SERVICE_ACCOUNT]}
  namespace=${3:?usage: setup.sh kubernetes HOST NAMESPACE [SERVICE_ACCOUNT]}
  sa=${4:-gateway}
  "$vault" auth list -format=json | grep -q '"kubernetes/"' || "$vault" auth enable kubernetes >/dev/null
  args=(kubernetes_host="$host" disable_local_ca_jwt=true)
  [ -n "${KUBERNETES_CA_CERT:-}" ] && args+=(kubernetes_ca_cert=@"$KUBERNETES_CA_CERT")
  [ -n "${KUBERNETES_REVIEWER_JWT:-}" ] && args+=(token_reviewer_jwt="$KUBERNETES_REVIEWER_JWT")
  "$vault" write auth/kubernetes/config "${args[@]}" >/dev/null
  # The same token lifetimes as the gateway's AppRole.
  "$vault" write auth/kubernetes/role/gateway bound_service_account_names="$sa" \
    bound_service_account_namespaces="$namespace" token_policies=gateway \
    token_ttl=1h token_max_ttl=24h token_type=service >/dev/null
  echo "kubernetes role gateway written for $namespace/$sa"
  exit 0
fi

engines=$("$vault" secrets list -format=json)
grep -q '"transit/"' <<<"$engines" || "$vault" secrets enable -path=transit transit >/dev/null
grep -q '"secret/"' <<<"$engines" || "$vault" secrets enable -path=secret -version=2 kv >/dev/null

key gateway-data aes256-gcm96     # wraps data keys (envelope encryption)
key gateway-blind hmac key_size=32      # blind indexes; used at a pinned version
key gateway-pseudonym hmac key_size=32  # pseudonyms; used at a pinned version
key gateway-signing ecdsa-p256    # signs submissions and receipts

for p in gateway operator superadmin; do
  "$vault" policy write "$p" "$here/policies/$p.hcl" >/dev/null
done
echo "policies written: gateway operator superadmin"

"$vault" auth list -format=json | grep -q '"approle/"' || "$vault" auth enable approle >/dev/null
# Gateway tokens live an hour, renewed up to a day; then the gateway logs
# in again with its secret id.
"$vault" write auth/approle/role/gateway token_policies=gateway \
  token_ttl=1h token_max_ttl=24h secret_id_ttl=0 token_type=service >/dev/null
"$vault" write auth/approle/role/operator token_policies=operator \
  token_ttl=15m token_max_ttl=1h secret_id_ttl=24h secret_id_num_uses=1 >/dev/null
echo "approles written: gateway operator"

if [ -n "${GATEWAY_VAULT_SETUP_OUT:-}" ]; then
  out=$GATEWAY_VAULT_SETUP_OUT
  mkdir -p "$out"
  umask 077
  "$vault" read -field=role_id auth/approle/role/gateway/role-id >"$out/gateway-role-id"
  "$vault" write -f -field=secret_id auth/approle/role/gateway/secret-id >"$out/gateway-secret-id"
  echo "gateway credentials written to $out"
fi
