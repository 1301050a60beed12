variable "builders" {
  description = "Builders, e.g. from the builder module's `machines` output."
  type = list(object({
    uri             = string
    systems         = list(string)
    max_jobs        = number
    public_host_key = string
  }))
}

# /etc/nix/machines on the machine running Terraform, one line per builder.
# An existing hand-written file is never replaced (unless overwrite = true).
resource "nixbuild_machines_file" "workstation" {
  path = "/etc/nix/machines"

  dynamic "machine" {
    for_each = var.builders
    content {
      uri                = machine.value.uri
      systems            = machine.value.systems
      ssh_key            = "/root/.ssh/nixbuild"
      max_jobs           = machine.value.max_jobs
      supported_features = ["big-parallel"]
      public_host_key    = machine.value.public_host_key
    }
  }

  # A fixed extra line: a fast builder only for builds that require kvm.
  machine {
    uri                = "ssh-ng://nixbuild@203.0.113.9"
    systems            = ["x86_64-linux"]
    ssh_key            = "/root/.ssh/nixbuild"
    max_jobs           = 16
    speed_factor       = 4
    supported_features = ["kvm", "nixos-test"]
    mandatory_features = ["kvm"]
    public_host_key    = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUNnNDBUNWlnRjhYdFpteFJlZXl4VmVEczYrR0tFbWN5V01CTGJGMlFaVFI="
  }
}

# The same builders written on a CI runner over SSH instead.
resource "nixbuild_machines_file" "ci_runner" {
  target {
    host = "198.51.100.20"
    path = "/etc/nix/machines"
  }

  dynamic "machine" {
    for_each = var.builders
    content {
      uri             = machine.value.uri
      systems         = machine.value.systems
      ssh_key         = "/var/lib/ci/.ssh/nixbuild"
      public_host_key = machine.value.public_host_key
    }
  }
}

output "nix_conf" {
  # "builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n"
  value = nixbuild_machines_file.workstation.nix_conf
}
