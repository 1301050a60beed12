output "substituter_url" {
  description = "URL builders substitute from (nix.substituters)."
  value       = nixbuild_cache_proxy.this.substituter_url
}

output "trusted_public_keys" {
  description = "The upstreams' public keys (nix.trusted_public_keys); the proxy does not re-sign."
  value       = nixbuild_cache_proxy.this.trusted_public_keys
}

output "address" {
  description = "Public IPv4 address of the proxy server."
  value       = hcloud_server.proxy.ipv4_address
}
