# The builders, the CI runner's machines file and the release pushes:
# modules/fleet over the servers of main.tf (local.builder_hosts).

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_ssh_private_key_file
    connect_timeout  = "5m"
  }
  # Cachix token: CACHIX_AUTH_TOKEN from CI secrets (it never reaches the state).
}

locals {
  # The first builder of each system does the release pushes.
  x86_builder = "x86-1"
  arm_builder = "arm-1"

  release_pushes = {
    for name, installable in var.release_installables : name => {
      flake          = var.release_flake
      installables   = [installable]
      builder        = strcontains(installable, "aarch64-linux") ? local.arm_builder : local.x86_builder
      cachix         = var.cachix_cache
      store          = null
      public_url     = null
      create_timeout = "2h"
    }
  }
  # The same builds, copied to the mirror too (already built: no rebuild).
  mirror_pushes = var.mirror_store == null ? {} : {
    for name, push in local.release_pushes : "${name}-mirror" => merge(push, {
      cachix     = null
      store      = var.mirror_store.uri
      public_url = var.mirror_store.public_url
    })
  }
}

module "fleet" {
  source = "../../modules/fleet"

  hosts        = local.builder_hosts
  install      = "official"
  max_jobs     = var.max_jobs
  cores        = 0
  extra_config = "min-free = ${5 * 1024 * 1024 * 1024}"
  # cache.nixos.org through the proxy of cache_proxy.tf (preferred: priority 30).
  substituters        = local.builder_substituters
  trusted_public_keys = local.builder_trusted_public_keys
  client_public_keys  = var.ci_public_keys
  client_ssh_key_path = var.ci_ssh_key_path
  # system_features: Nix's detection, so `kvm` (and with it NixOS tests) is
  # advertised only by hosts with /dev/kvm; Hetzner Cloud VMs have none.

  cachix = {
    cache       = var.cachix_cache
    public_key  = var.cachix_public_key
    install     = true
    watch_store = true # every build on the fleet goes to Cachix
  }

  machines_file_target = {
    host = var.ci_runner_host
  }

  pushes           = merge(local.release_pushes, local.mirror_pushes)
  store_secret_key = var.mirror_secret_key
}
