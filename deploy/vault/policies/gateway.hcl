# The gateway's own token (AppRole "gateway"). It may use the keys, never
# see, export, rotate or reconfigure them, and it cannot re-identify: it can
# encrypt re-identification escrows (transit/encrypt/reid-*) but not decrypt
# them. Token lookup and renewal come from Vault's default policy.

# Envelope encryption: new wrapped data keys, unwrap, rewrap after rotation.
path "transit/datakey/wrapped/gateway-data" {
  capabilities = ["update"]
}
path "transit/decrypt/gateway-data" {
  capabilities = ["update"]
}
path "transit/rewrap/gateway-data" {
  capabilities = ["update"]
}

# Key metadata (latest and minimum decryption version) for the rewrap job,
# which may raise min_decryption_version once every data key is rewrapped
# and may change nothing else about the key.
path "transit/keys/gateway-data" {
  capabilities = ["read"]
}
path "transit/keys/gateway-data/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_decryption_version" = []
  }
}

# Blind indexes and pseudonyms: keyed HMACs. The keys are of type hmac and
# cannot encrypt or sign.
path "transit/hmac/gateway-blind/*" {
  capabilities = ["update"]
}
path "transit/hmac/gateway-pseudonym/*" {
  capabilities = ["update"]
}

# Re-identification escrow: encrypt only, with the per-domain keys the
# operator created ("update" without "create" cannot create a new key).
path "transit/encrypt/reid-*" {
  capabilities = ["update"]
}

# Signing of registry submissions and receipts.
path "transit/sign/gateway-signing/*" {
  capabilities = ["update"]
}
path "transit/verify/gateway-signing/*" {
  capabilities = ["update"]
}

# Registry credentials (MESH shared secret and client certificates, API
# keys), read at use time.
path "secret/data/registries/*" {
  capabilities = ["read"]
}
