terraform {
  required_version = ">= 1.6"

  required_providers {
    nixbuild = {
      source = "my-modular-workspace/nixbuild"
    }
  }
}

variable "ssh_private_key_file" {
  description = "Private key that logs in to the hosts as root (or a sudoer)."
  type        = string
}

provider "nixbuild" {
  # Defaults for every connection; resources can override them in their own
  # `ssh` block.
  ssh {
    user             = "root"
    private_key_file = var.ssh_private_key_file
    connect_timeout  = "5m" # keep retrying while a fresh host boots

    # Reach private hosts through a jump host (like `ssh -J`).
    # bastion_host = "bastion.example.com"
  }

  # Cachix credentials for builders and pushes. Leave them unset here and
  # export CACHIX_AUTH_TOKEN / CACHIX_SIGNING_KEY: provider configuration is
  # never written to the state.
  cachix {}

  max_sessions_per_host = 4
}
