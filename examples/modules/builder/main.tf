# One nixbuild_builder per host, all configured alike. The module uses only the
# nixbuild provider: the caller configures it (SSH credentials, Cachix token)
# and creates the hosts with whatever provider it likes.
#
# Builders with and without a Cachix cache are two resources rather than one
# with a `dynamic "cachix"` block: tf-provider 0.2.2 rejects a nested block
# that is wholly unknown, which a dynamic block over a module input is while
# Terraform validates the module.

locals {
  plain_hosts  = var.cachix == null ? var.hosts : {}
  cachix_hosts = var.cachix == null ? {} : var.hosts
  builders     = merge(nixbuild_builder.this, nixbuild_builder.cachix)
}

resource "nixbuild_builder" "this" {
  for_each = local.plain_hosts

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
  }

  build_user {
    name            = var.build_user
    authorized_keys = var.authorized_keys
  }
}

resource "nixbuild_builder" "cachix" {
  for_each = local.cachix_hosts

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
  }

  build_user {
    name            = var.build_user
    authorized_keys = var.authorized_keys
  }

  cachix {
    cache       = var.cachix.cache
    public_key  = var.cachix.public_key
    install     = var.cachix.install
    watch_store = var.cachix.watch_store
  }
}
