# The super-administrator: may re-identify in every pseudonym domain.
path "transit/decrypt/reid-*" {
  capabilities = ["update"]
}
path "transit/keys/reid-*" {
  capabilities = ["read"]
}
