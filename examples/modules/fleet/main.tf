# The whole fleet in one module: builders (modules/builder) -> the machines
# file clients use -> pushes of builds to a cache. environments/dev and prod
# create Hetzner servers and call it; environments/local calls it with the
# loopback test hosts, so `make demo` applies exactly this HCL. The caller
# configures the nixbuild provider (SSH key, Cachix token).

module "builders" {
  source = "../builder"

  hosts               = var.hosts
  install             = var.install
  max_jobs            = var.max_jobs
  cores               = var.cores
  system_features     = var.system_features
  extra_config        = var.extra_config
  substituters        = var.substituters
  trusted_public_keys = var.trusted_public_keys
  cachix              = var.cachix
  on_destroy          = var.on_destroy
  authorized_keys     = var.client_public_keys
  machine_ssh_key     = var.client_ssh_key_path
  speed_factor        = var.speed_factor
  nix_access_tokens   = var.nix_access_tokens
  nix_netrc           = var.nix_netrc
}

locals {
  # Nix needs an absolute path in `builders = @…`; path.root is relative.
  machines_file_path = abspath(coalesce(var.machines_file_path, "${path.root}/machines"))
  first_builder      = sort(keys(var.hosts))[0]
}

resource "nixbuild_machines_file" "this" {
  path = var.machines_file_target == null ? local.machines_file_path : null

  dynamic "target" {
    for_each = var.machines_file_target == null ? [] : [var.machines_file_target]
    content {
      host = target.value.host
      path = target.value.path
    }
  }

  dynamic "machine" {
    for_each = module.builders.machines
    content {
      uri                = machine.value.uri
      systems            = machine.value.systems
      ssh_key            = machine.value.ssh_key
      max_jobs           = coalesce(var.machine_max_jobs, machine.value.max_jobs)
      speed_factor       = machine.value.speed_factor
      supported_features = machine.value.supported_features
      public_host_key    = machine.value.public_host_key
    }
  }
}

# Each push builds on its builder, which is pinned by the host key the
# builder resource saw, and uploads what the cache lacks.
resource "nixbuild_cache_push" "this" {
  for_each = var.pushes

  host         = module.builders.builders[coalesce(each.value.builder, local.first_builder)].host
  flake        = each.value.flake
  source       = each.value.source
  installables = each.value.installables

  ssh {
    host_key = module.builders.builders[coalesce(each.value.builder, local.first_builder)].host_key
  }

  dynamic "cachix" {
    for_each = each.value.cachix == null ? [] : [each.value.cachix]
    content {
      cache = cachix.value
    }
  }

  dynamic "store" {
    for_each = each.value.store == null ? [] : [each.value.store]
    content {
      uri        = store.value
      public_url = each.value.public_url
      secret_key = var.store_secret_key
    }
  }

  dynamic "timeouts" {
    for_each = each.value.create_timeout == null ? [] : [each.value.create_timeout]
    content {
      create = timeouts.value
    }
  }
}
