# The operator's token: rotates and inspects the gateway's keys, issues
# AppRole secret ids for gateway instances and sets registry credentials.
# It can neither decrypt data keys nor re-identify, nor read the credentials
# it sets. New pseudonym domains (setup.sh domain) need the administrator
# who ran setup.sh, because they add a policy.

path "transit/keys/gateway-*" {
  capabilities = ["read"]
}
path "transit/keys/gateway-data/rotate" {
  capabilities = ["update"]
}
path "transit/keys/gateway-signing/rotate" {
  capabilities = ["update"]
}

path "auth/approle/role/gateway/secret-id" {
  capabilities = ["update"]
}
path "auth/approle/role/gateway/role-id" {
  capabilities = ["read"]
}

path "secret/data/registries/*" {
  capabilities = ["create", "update"]
}
path "secret/metadata/registries/*" {
  capabilities = ["list"]
}
