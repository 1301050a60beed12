# A caching binary-cache proxy next to the builders: a Hetzner server (Debian,
# systemd) made into a nixbuild_cache_proxy in front of `upstreams`. Builders
# use the outputs `substituter_url` and `trusted_public_keys` in their `nix`
# block, so each store path crosses the internet once per location.

resource "hcloud_firewall" "proxy" {
  name   = "${var.name}-proxy"
  labels = var.labels

  rule {
    description = "SSH for Terraform"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.ssh_allowed_cidrs
  }

  rule {
    description = "The cache proxy, for the builders"
    direction   = "in"
    protocol    = "tcp"
    port        = tostring(var.port)
    source_ips  = var.client_cidrs
  }
}

resource "hcloud_server" "proxy" {
  name         = var.name
  server_type  = var.server_type
  location     = var.location
  image        = var.image
  ssh_keys     = var.ssh_key_ids
  firewall_ids = [hcloud_firewall.proxy.id]
  labels       = merge(var.labels, { role = "nix-cache-proxy" })

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }
}

resource "nixbuild_cache_proxy" "this" {
  host     = hcloud_server.proxy.ipv4_address
  listen   = "0.0.0.0:${var.port}"
  max_size = var.max_size

  dynamic "upstream" {
    for_each = var.upstreams
    content {
      url        = upstream.value.url
      public_key = upstream.value.public_key
    }
  }

  # The server goes with the proxy: nothing to clean on it.
  on_destroy = "keep"
}
