# The local demo: two loopback test hosts (started by `make world`) become
# Nix remote builders through the same modules/fleet that environments/dev and
# prod use: a machines file for this machine lists them, and a small flake
# shipped in ./flake is built on a builder and pushed to a signed binary cache.
# `make demo` (scripts/demo.sh) and tests/environments.rs apply it.

provider "nixbuild" {
  ssh {
    private_key_file = var.admin_private_key_file
    connect_timeout  = "30s"
  }
}

module "fleet" {
  source = "../../modules/fleet"

  hosts               = var.builders
  install             = "none" # the test hosts come with a multi-user Nix
  on_destroy          = "clean"
  client_public_keys  = [var.client_public_key]
  client_ssh_key_path = var.client_private_key_file

  # Builders substitute from the cache the push below fills.
  substituters        = [var.cache_url]
  trusted_public_keys = [var.cache_public_key]

  machines_file_path = var.machines_file_path
  machine_max_jobs   = 1 # one build at a time each, so parallel builds spread

  # ./flake is uploaded from this machine (its content hash is in the plan),
  # built on the first builder, and its closure pushed, signed, to the cache.
  pushes = {
    demo = {
      source       = abspath("${path.module}/flake")
      installables = ["default"]
      store        = var.cache_url
    }
  }
  store_secret_key = var.cache_secret_key
}
