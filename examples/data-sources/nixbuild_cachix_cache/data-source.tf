# Trust a Cachix cache on builders: its URL and signing keys come from the
# Cachix API (the token, for a private cache, from the provider's cachix block).
data "nixbuild_cachix_cache" "team" {
  name = "my-team"
}

output "team_cache" {
  value = {
    substituter = data.nixbuild_cachix_cache.team.uri
    keys        = data.nixbuild_cachix_cache.team.public_signing_keys
  }
}
