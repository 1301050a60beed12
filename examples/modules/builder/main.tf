# One nixbuild_builder per host, all configured alike. The module uses only the
# nixbuild provider: the caller configures it (SSH credentials, Cachix token)
# and creates the hosts with whatever provider it likes.

locals {
  builders = nixbuild_builder.this
}

resource "nixbuild_builder" "this" {
  for_each = var.hosts

  host       = each.value.address
  on_destroy = var.on_destroy

  ssh {
    user     = var.ssh_user
    port     = var.ssh_port
    host_key = each.value.host_key
  }

  nix {
    install                = var.install
    installer_url          = var.installer_url
    max_jobs               = var.max_jobs
    cores                  = var.cores
    system_features        = var.system_features
    extra_platforms        = var.extra_platforms
    substituters           = var.substituters
    trusted_public_keys    = var.trusted_public_keys
    extra_config           = var.extra_config
    daemon_restart_command = each.value.daemon_restart_command
    access_tokens          = var.nix_access_tokens
    netrc                  = var.nix_netrc
  }

  build_user {
    name            = var.build_user
    authorized_keys = var.authorized_keys
  }

  # Only when a cache is given.
  dynamic "cachix" {
    for_each = var.cachix == null ? [] : [var.cachix]
    content {
      cache       = cachix.value.cache
      public_key  = cachix.value.public_key
      install     = cachix.value.install
      watch_store = cachix.value.watch_store
    }
  }
}
