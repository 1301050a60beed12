# Health of the fleet in every plan: a `check` block whose assertion fails
# is a warning naming the builder and its problems, not a failed plan (and an
# unreachable builder is `healthy = false`, not an error).
locals {
  builders = {
    x86 = {
      host     = "203.0.113.7"
      host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICg40T5igF8XtZmxReeyxVeDs6+GKEmcyWMBLbF2QZTR"
    }
  }
}

check "builder_x86_healthy" {
  data "nixbuild_builder_status" "x86" {
    host = local.builders.x86.host

    ssh {
      # The builder's pin (e.g. nixbuild_builder.x86.host_key).
      host_key = local.builders.x86.host_key
    }

    build_user {
      # A client key from the builder's build_user.authorized_keys: the
      # status logs in with it and opens the store protocol, as Nix does.
      private_key_file = "/root/.ssh/nixbuild"
    }

    min_store_free = "10G" # less free space is a problem
  }

  assert {
    condition     = data.nixbuild_builder_status.x86.healthy
    error_message = "builder x86 (${data.nixbuild_builder_status.x86.host}) is unhealthy: ${join("; ", data.nixbuild_builder_status.x86.problems)}"
  }
}
