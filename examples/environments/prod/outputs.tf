output "builders" {
  description = "The bootstrapped builders (store URI, systems, Nix version, host key)."
  value       = module.fleet.builders
}

output "machines_file" {
  description = "Where the CI runner's machines file is, and its content."
  value       = module.fleet.machines_file
}

output "builders_line" {
  description = "One line for `--option builders '…'`."
  value       = module.fleet.builders_line
}

output "nix_build_command" {
  description = "nix build through the builders only; append an installable."
  value       = module.fleet.nix_build_command
}

output "nix_build_machines" {
  description = "nix.buildMachines for NixOS / nix-darwin clients."
  value       = module.fleet.nix_build_machines
}

output "release_paths" {
  description = "Out paths of each release push, by name."
  value       = { for name, push in module.fleet.pushes : name => push.out_paths if !endswith(name, "-mirror") }
}

output "release_uploaded" {
  description = "How many paths each push uploaded (0: the cache had them all, e.g. from watch-store)."
  value       = { for name, push in module.fleet.pushes : name => push.pushed_paths }
}
