# The local demo: two loopback test hosts (started by `make world`) become
# Nix remote builders, a machines file for this machine lists them, and a small
# flake shipped in ./flake is built on a builder and pushed to a signed binary
# cache. `make demo` (scripts/demo.sh) runs it end to end.

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_private_key_file
    connect_timeout  = "30s"
  }
}

module "builders" {
  source = "../../modules/builder"

  hosts           = var.builders
  install         = "none" # the test hosts come with a multi-user Nix
  on_destroy      = "clean"
  authorized_keys = [var.client_public_key]
  machine_ssh_key = var.client_private_key_file

  # Builders substitute from the cache the pushes below fill.
  substituters        = [var.cache_url]
  trusted_public_keys = [var.cache_public_key]
}

# Remote builders for this machine: `nix-build --builders @<path>`, or
# `builders = @<path>` in nix.conf (see the nix_conf output).
resource "nixbuild_machines_file" "local" {
  path = var.machines_file_path

  dynamic "machine" {
    for_each = module.builders.machines
    content {
      uri                = machine.value.uri
      systems            = machine.value.systems
      ssh_key            = machine.value.ssh_key
      max_jobs           = 1 # one build at a time each, so parallel builds spread
      speed_factor       = machine.value.speed_factor
      supported_features = machine.value.supported_features
      public_host_key    = machine.value.public_host_key
    }
  }
}

# Build ./flake on the first builder (uploaded from this machine: its content
# hash is in the plan) and push the closure, signed, to the cache.
resource "nixbuild_cache_push" "demo" {
  host         = module.builders.builders[local.push_builder].host
  source       = "${path.module}/flake"
  installables = ["default"]

  ssh {
    host_key = module.builders.builders[local.push_builder].host_key
  }

  store {
    uri        = var.cache_url
    secret_key = var.cache_secret_key
  }
}

locals {
  push_builder = sort(keys(var.builders))[0]
}
