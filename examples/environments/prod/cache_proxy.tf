# A caching proxy for cache.nixos.org next to the builders (modules/cache-proxy):
# the fleet substitutes through it (fleet.tf), so each path crosses the
# internet once, not once per builder.

module "cache_proxy" {
  source = "../../modules/cache-proxy"

  name              = "${var.name_prefix}-cache-proxy"
  location          = var.cache_proxy_location
  image             = var.image
  ssh_key_ids       = [hcloud_ssh_key.admin.id]
  ssh_allowed_cidrs = var.ssh_allowed_cidrs
  client_cidrs      = [for server in hcloud_server.builder : "${server.ipv4_address}/32"]
  max_size          = var.cache_proxy_max_size
  labels            = local.labels
}

# What the fleet substitutes through (fleet.tf).
locals {
  builder_substituters        = [module.cache_proxy.substituter_url]
  builder_trusted_public_keys = module.cache_proxy.trusted_public_keys
}

output "cache_proxy" {
  description = "The builders' substituter in front of cache.nixos.org, and the keys it serves."
  value = {
    url  = module.cache_proxy.substituter_url
    keys = module.cache_proxy.trusted_public_keys
  }
}
