# Dev: a small x86 builder fleet on Hetzner Cloud, a machines file for the
# developer's workstation, and the team's packages pushed to a Cachix cache.

provider "hcloud" {
  token = var.hcloud_token
}

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_ssh_private_key_file
    connect_timeout  = "5m" # new servers take a minute to boot
  }
  # Cachix token: export CACHIX_AUTH_TOKEN (it never reaches the state).
}

locals {
  labels = {
    environment = "dev"
    managed_by  = "terraform"
  }
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
  labels       = local.labels

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
  install         = "auto" # the official installer on a fresh Debian
  system_features = ["big-parallel", "benchmark"]
  authorized_keys = var.client_public_keys
  machine_ssh_key = var.client_ssh_key_path
  cachix = {
    cache   = var.cachix_cache
    install = true # the pushes below run the cachix CLI on a builder
  }
  # on_destroy = "keep": the servers are destroyed with the builders.
}

resource "nixbuild_machines_file" "workstation" {
  path = coalesce(var.machines_file_path, "${path.root}/machines")

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

# Build each installable on the first builder and push what Cachix lacks.
resource "nixbuild_cache_push" "packages" {
  for_each = var.push_installables

  host         = module.builders.builders[local.push_builder].host
  flake        = var.flake_ref
  installables = [each.key]

  cachix {
    cache = var.cachix_cache
  }
}

locals {
  push_builder = sort(tolist(var.builder_names))[0]
}
