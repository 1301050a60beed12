terraform {
  required_version = ">= 1.6"

  required_providers {
    nixbuild = {
      source = "my-modular-workspace/nixbuild"
    }
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = ">= 1.45"
    }
  }
}
