# Dev: a small x86 builder fleet on Hetzner Cloud. This file creates the
# servers; fleet.tf turns them into builders (modules/fleet), writes the
# developer's machines file and pushes the team's packages to Cachix.
# CI (examples/ci/) applies it per run with its own name_prefix and state.

provider "hcloud" {
  token = var.hcloud_token
}

locals {
  # CI adds `cleanup = "ci"` (var.labels): its scheduled job deletes leftover
  # servers by that label.
  labels = merge({
    environment = "dev"
    managed_by  = "terraform"
    fleet       = var.name_prefix
  }, var.labels)
}

resource "hcloud_ssh_key" "admin" {
  name       = "${var.name_prefix}-admin"
  public_key = var.admin_ssh_public_key
  labels     = local.labels
}

# Only SSH, only from the given networks; outbound traffic is unrestricted.
resource "hcloud_firewall" "ssh" {
  name   = "${var.name_prefix}-ssh"
  labels = local.labels

  rule {
    description = "SSH from office and CI"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.ssh_allowed_cidrs
  }
}

resource "hcloud_server" "builder" {
  for_each = var.builder_names

  name         = "${var.name_prefix}-${each.key}"
  server_type  = var.server_type
  image        = var.image
  location     = var.location
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.ssh.id]
  labels       = merge(local.labels, { role = "nix-builder" })

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }
}

# What fleet.tf needs from the servers (tests/environments.rs gives the same
# shape with loopback hosts to check fleet.tf without Hetzner).
locals {
  builder_hosts = {
    for name, server in hcloud_server.builder : name => { address = server.ipv4_address }
  }
}

output "servers" {
  description = "Public IPv4 address of each builder server."
  value       = { for name, server in hcloud_server.builder : name => server.ipv4_address }
}
