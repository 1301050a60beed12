# Bootstrap a fresh Debian host into a remote builder: install Nix, write the
# managed config (/etc/nix/nixbuild.conf), create the build user `nixbuild`
# that CI runners log in as, and trust a Cachix cache.
resource "nixbuild_builder" "x86" {
  host = "203.0.113.7"

  ssh {
    # Optional: refuse any other host key (otherwise the first one seen is pinned).
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICg40T5igF8XtZmxReeyxVeDs6+GKEmcyWMBLbF2QZTR"
  }

  nix {
    install  = "auto" # keep an existing Nix, else the official installer
    max_jobs = 8
    cores    = 2
    # Replaces Nix's detection: add "kvm" and "nixos-test" only on hosts with
    # /dev/kvm (bare metal; most cloud VMs have none). Omit the list to let Nix
    # detect them.
    system_features = ["big-parallel", "benchmark"]
    extra_platforms = ["i686-linux"]
    extra_config    = "keep-outputs = true"
  }

  build_user {
    authorized_keys = [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfzgQsOIHu2+G5p+T3SWfDiaJm4k5A+lrYQYaOEPJLV ci-runner",
    ]
  }

  cachix {
    cache       = "my-cache"
    install     = true # a fresh Debian has no cachix CLI; watch_store needs it
    watch_store = true # push every new store path (systemd service)
  }

  # Disk policy: during builds, Nix collects garbage when less than 10 GiB
  # are free, until 50 GiB are; every week a systemd timer also deletes
  # profile generations older than 30 days and collects what they held.
  gc {
    min_free          = "10G"
    max_free          = "50G"
    schedule          = "weekly"
    delete_older_than = "30d"
  }

  on_destroy = "keep" # the host is destroyed with it

  timeouts {
    create = "20m"
  }
}

# A host without systemd (Alpine, OpenRC) with Nix already installed: say how
# to restart the daemon, and remove what was added on destroy. Alpine's
# busybox has no `useradd`, which creates the build user: install `shadow`
# first, with Nix (`apk add nix shadow`, then `rc-update add nix-daemon` and
# `rc-service nix-daemon start`).
resource "nixbuild_builder" "alpine" {
  host = "203.0.113.8"

  nix {
    install                = "none"
    daemon_restart_command = "rc-service nix-daemon restart"
  }

  build_user {
    name            = "builder"
    authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfzgQsOIHu2+G5p+T3SWfDiaJm4k5A+lrYQYaOEPJLV ci-runner"]
  }

  on_destroy = "clean"
}

# Push every path the builder builds (also for the clients of its machines
# file) to an S3 binary cache, signed with the cache's key: a post-build hook
# queues each build, a worker uploads it, and no build waits for the cache.
variable "cache_secret_key" {
  type      = string
  sensitive = true # `nix-store --generate-binary-cache-key` output
}

resource "nixbuild_builder" "pushing" {
  host = "203.0.113.11"

  push {
    store_uri  = "s3://my-nix-cache?region=eu-central-1"
    secret_key = var.cache_secret_key
    exclude    = ["-doc$", "-man$"] # outputs not worth caching
  }
}

output "x86_builder" {
  value = {
    store_uri       = nixbuild_builder.x86.store_uri       # "ssh-ng://nixbuild@203.0.113.7"
    host_key_base64 = nixbuild_builder.x86.host_key_base64 # machines-file column 8
    systems         = nixbuild_builder.x86.systems         # ["x86_64-linux", "i686-linux"]
  }
}

# A builder whose sshd listens on port 2222, with build keys restricted to
# building (the default). Its `ssh_config` and `known_hosts` go into the
# machines file's companion files, so clients reach port 2222 and verify the
# host key strictly (see the remote-builders guide).
resource "nixbuild_builder" "port_2222" {
  host = "203.0.113.10"

  ssh {
    port = 2222
  }

  build_user {
    authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfzgQsOIHu2+G5p+T3SWfDiaJm4k5A+lrYQYaOEPJLV ci-runner"]
    protocol        = "ssh-ng" # the key may run `nix-daemon --stdio` only
    allow_shell     = false    # true: plain key lines, a shell for the key
  }
}

resource "nixbuild_machines_file" "port_2222" {
  path = "/etc/nix/machines"

  machine {
    uri         = nixbuild_builder.port_2222.store_uri
    systems     = nixbuild_builder.port_2222.systems
    ssh_key     = "/root/.ssh/nixbuild"
    ssh_config  = nixbuild_builder.port_2222.ssh_config
    known_hosts = nixbuild_builder.port_2222.known_hosts
  }
}

output "client_ssh_config" {
  # /etc/nix/machines.ssh_config: Include it from /root/.ssh/config, or
  # NIX_SSHOPTS="-F /etc/nix/machines.ssh_config".
  value = nixbuild_machines_file.port_2222.ssh_config_path
}
