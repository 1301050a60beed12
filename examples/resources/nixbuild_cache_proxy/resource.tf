# A caching proxy on a systemd host in front of cache.nixos.org and a public
# Cachix cache; builders substitute through it with the upstreams' keys (the
# proxy does not re-sign anything).
resource "nixbuild_cache_proxy" "eu" {
  host     = "203.0.113.10"
  listen   = "0.0.0.0:8080"
  max_size = "200G"

  upstream {
    url        = "https://cache.nixos.org"
    public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
  }
  upstream {
    url        = "https://nix-community.cachix.org"
    public_key = "nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="
  }

  on_destroy = "clean"
}

resource "nixbuild_builder" "x86" {
  host = "203.0.113.7"

  nix {
    substituters        = [nixbuild_cache_proxy.eu.substituter_url]
    trusted_public_keys = nixbuild_cache_proxy.eu.trusted_public_keys
  }
}
