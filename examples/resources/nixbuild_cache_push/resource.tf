variable "cache_secret_key" {
  description = "Binary-cache secret key (name:base64), e.g. from a secret store"
  type        = string
  sensitive   = true
}

# Build two packages of a pinned flake on a builder and push their closures to
# an S3 binary cache, signed; presence is checked at the bucket's website.
resource "nixbuild_cache_push" "release" {
  host = "203.0.113.7"

  flake        = "git+https://git.example.com/infra/packages.git?ref=main&rev=4f1c0d3e9b6a7c2d1e0f9a8b7c6d5e4f3a2b1c0d"
  installables = ["packages.x86_64-linux.api", "packages.x86_64-linux.worker"]

  store {
    uri        = "s3://nix-cache?region=eu-central-1"
    public_url = "https://nix-cache.s3.eu-central-1.amazonaws.com"
    secret_key = var.cache_secret_key # sensitive; never on a command line
  }
}

# Push a flake from this repository (uploaded to the builder) to Cachix; the
# token comes from the provider's cachix block or CACHIX_AUTH_TOKEN, so it stays
# out of the state.
resource "nixbuild_cache_push" "local" {
  host         = "203.0.113.7"
  source       = "${path.module}/flake"
  installables = ["default"]

  cachix {
    cache = "my-cache"
  }

  triggers = {
    nightly = "2026-11-26"
  }
}

output "pushed" {
  value = {
    release_paths = nixbuild_cache_push.release.out_paths
    uploaded      = nixbuild_cache_push.release.pushed_paths
    cache_url     = nixbuild_cache_push.local.cache_url
  }
}
