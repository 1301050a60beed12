# Prod: an x86 + aarch64 builder fleet on Hetzner Cloud reachable over SSH only
# from CI and the bastion, every build pushed to Cachix by watch-store, the
# CI runner's machines file, and release pushes (to Cachix and an optional
# mirror).

provider "hcloud" {
  token = var.hcloud_token
}

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_ssh_private_key_file
    connect_timeout  = "5m"
  }
  # Cachix token: CACHIX_AUTH_TOKEN from CI secrets (it never reaches the state).
}

locals {
  labels = {
    environment = "prod"
    managed_by  = "terraform"
  }
  # The first builder of each system does the release pushes.
  x86_builder = "x86-1"
  arm_builder = "arm-1"
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

module "builders" {
  source = "../../modules/builder"

  hosts = {
    for name, server in hcloud_server.builder : name => { address = server.ipv4_address }
  }
  install         = "official"
  max_jobs        = var.max_jobs
  cores           = 0
  system_features = ["big-parallel", "kvm", "nixos-test", "benchmark"]
  extra_config    = "min-free = ${5 * 1024 * 1024 * 1024}"
  authorized_keys = var.ci_public_keys
  machine_ssh_key = var.ci_ssh_key_path
  cachix = {
    cache       = var.cachix_cache
    public_key  = var.cachix_public_key
    install     = true
    watch_store = true
  }
}

# The CI runner's /etc/nix/machines, written over SSH. A hand-written file
# there is never replaced (overwrite = false).
resource "nixbuild_machines_file" "ci" {
  target {
    host = var.ci_runner_host
  }

  dynamic "machine" {
    for_each = module.builders.machines
    content {
      uri                = machine.value.uri
      systems            = machine.value.systems
      ssh_key            = machine.value.ssh_key
      max_jobs           = machine.value.max_jobs
      supported_features = machine.value.supported_features
      public_host_key    = machine.value.public_host_key
    }
  }
}

# Release pushes: each installable is built on a builder of its system.
resource "nixbuild_cache_push" "release" {
  for_each = var.release_installables

  host         = module.builders.builders[strcontains(each.value, "aarch64-linux") ? local.arm_builder : local.x86_builder].host
  flake        = var.release_flake
  installables = [each.value]

  cachix {
    cache = var.cachix_cache
  }

  timeouts {
    create = "2h"
  }
}

resource "nixbuild_cache_push" "mirror" {
  for_each = var.mirror_store == null ? {} : var.release_installables

  host         = nixbuild_cache_push.release[each.key].host
  flake        = var.release_flake
  installables = [each.value]

  store {
    uri        = var.mirror_store.uri
    public_url = var.mirror_store.public_url
    secret_key = var.mirror_secret_key
  }
}
