# The local demo: loopback test hosts started by `make world`
# (scripts/testworld/up.sh). `make demo` runs it end to end.

terraform {
  required_version = ">= 1.6"
  required_providers {
    nixbuild = {
      source = "my-modular-workspace/nixbuild"
    }
  }
}

variable "hosts" {
  description = "Addresses of the builder hosts (loopback test hosts in the demo)."
  type        = list(string)
}

variable "private_key_file" {
  description = "Private key that logs in as root on the hosts."
  type        = string
}

provider "nixbuild" {
  ssh {
    private_key_file = var.private_key_file
    connect_timeout  = "30s"
  }
}

data "nixbuild_host" "builder" {
  for_each = toset(var.hosts)
  host     = each.value
}

output "builders" {
  description = "What each host reports: Nix system, Nix version, CPUs and its pinned host key."
  value = {
    for address, h in data.nixbuild_host.builder : address => {
      system      = h.system
      nix_version = h.nix_version
      cpus        = h.cpus
      host_key    = h.host_key
    }
  }
}
