# Prod: an x86 + aarch64 builder fleet on Hetzner Cloud reachable over SSH only
# from CI and the bastion. This file creates the servers; fleet.tf makes them
# builders (modules/fleet) with every build pushed to Cachix by watch-store,
# writes the CI runner's machines file, and runs the release pushes (to Cachix
# and an optional mirror).

provider "hcloud" {
  token = var.hcloud_token
}

locals {
  labels = {
    environment = "prod"
    managed_by  = "terraform"
  }
}

resource "hcloud_ssh_key" "admin" {
  name       = "${var.name_prefix}-admin"
  public_key = var.admin_ssh_public_key
  labels     = local.labels
}

resource "hcloud_firewall" "ssh" {
  name   = "${var.name_prefix}-ssh"
  labels = local.labels

  rule {
    description = "SSH from CI and the bastion only"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.ssh_allowed_cidrs
  }

  rule {
    description = "ping"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = var.ssh_allowed_cidrs
  }
}

resource "hcloud_server" "builder" {
  for_each = var.builders

  name         = "${var.name_prefix}-${each.key}"
  server_type  = each.value.server_type
  location     = each.value.location
  image        = var.image
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.ssh.id]
  labels       = merge(local.labels, { role = "nix-builder" })

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }
}

# What fleet.tf needs from the servers.
locals {
  builder_hosts = {
    for name, server in hcloud_server.builder : name => { address = server.ipv4_address }
  }
}

output "servers" {
  description = "Public IPv4 address of each builder server."
  value       = { for name, server in hcloud_server.builder : name => server.ipv4_address }
}
