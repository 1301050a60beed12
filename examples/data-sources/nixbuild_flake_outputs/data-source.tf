# Evaluate a pinned flake's home-manager activation package on a builder
# (nothing is built) and ask the team's caches whether they hold it.
data "nixbuild_flake_outputs" "workstation" {
  host = "203.0.113.7"

  flake        = "github:example/dotfiles/4f1c0d3e9b6a7c2d1e0f9a8b7c6d5e4f3a2b1c0d"
  installables = ["homeConfigurations.\"dev@workstation\".activationPackage"]
  caches       = ["https://example.cachix.org"]
}

# A failed check is a warning in the plan, naming what is not cached yet.
check "workstation_is_cached" {
  assert {
    condition     = data.nixbuild_flake_outputs.workstation.all_cached
    error_message = "Not cached yet: ${join(", ", data.nixbuild_flake_outputs.workstation.missing_paths_by_cache["https://example.cachix.org"])}"
  }
}

output "activation_package" {
  value = data.nixbuild_flake_outputs.workstation.out_paths[0]
}
