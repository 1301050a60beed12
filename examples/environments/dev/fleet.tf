# The builders, the machines file and the pushes: modules/fleet over the
# servers of main.tf (local.builder_hosts). Only variables and that local
# are used here.

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_ssh_private_key_file
    connect_timeout  = "5m" # new servers take a minute to boot
  }
  # Cachix token: export CACHIX_AUTH_TOKEN (it never reaches the state).
}

module "fleet" {
  source = "../../modules/fleet"

  hosts               = local.builder_hosts
  install             = "auto" # the official installer on a fresh Debian
  client_public_keys  = var.client_public_keys
  client_ssh_key_path = var.client_ssh_key_path
  # system_features: Nix's detection (kvm only where /dev/kvm exists; Hetzner
  # Cloud VMs have none).

  cachix = {
    cache       = var.cachix_cache
    public_key  = var.cachix_public_key
    install     = true # the CLI, for watch-store and the pushes below
    watch_store = true # every build sent through the builders is pushed
  }

  machines_file_path = var.machines_file_path

  # Private flakes (the pushes below fetch var.flake_ref on the builders).
  nix_access_tokens = var.nix_access_tokens
  nix_netrc         = var.nix_netrc

  # Build each installable (heavy packages and activation packages) on the
  # first builder; push what Cachix lacks.
  pushes = {
    for installable in var.push_installables : installable => {
      flake          = var.flake_ref
      installables   = [installable]
      cachix         = var.cachix_cache
      create_timeout = var.push_create_timeout
    }
  }
  # on_destroy = "keep": the servers are destroyed with the builders.
}
