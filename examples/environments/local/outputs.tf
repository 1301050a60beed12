output "builders" {
  description = "The bootstrapped builders."
  value = {
    for name, b in module.fleet.builders : name => {
      store_uri   = b.store_uri
      system      = b.system
      nix_version = b.nix_version
      cpus        = b.cpus
      max_jobs    = b.max_jobs_effective
      features    = b.supported_features
    }
  }
}

output "machines_file" {
  description = "Path and content of the written machines file."
  value       = module.fleet.machines_file
}

output "builders_line" {
  description = "The builders in one line: nix-build --builders '…', or --option builders '…'."
  value       = module.fleet.builders_line
}

output "nix_build_command" {
  description = "nix build through the builders only; append an installable."
  value       = module.fleet.nix_build_command
}

output "nix_build_machines" {
  description = "The builders as nix.buildMachines for a NixOS or nix-darwin client."
  value       = module.fleet.nix_build_machines
}

output "nix_conf" {
  description = "nix.conf lines that make this machine use the builders."
  value       = module.fleet.nix_conf
}

output "cache_push" {
  description = "What was built from ./flake and pushed."
  value       = module.fleet.pushes["demo"]
}
