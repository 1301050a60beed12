terraform {
  required_version = ">= 1.6"

  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.49"
    }
    nixbuild = {
      source = "my-modular-workspace/nixbuild"
    }
  }
}
