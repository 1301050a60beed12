output "builders" {
  description = "The bootstrapped builders (store URI, systems, Nix version, host key)."
  value       = module.fleet.builders
}

output "machines_file" {
  description = "Absolute path and content of the machines file."
  value       = module.fleet.machines_file
}

output "builders_line" {
  description = "One line for `--option builders '…'` (terraform output -raw builders_line)."
  value       = module.fleet.builders_line
}

output "nix_build_command" {
  description = "nix build through the builders only; append an installable (terraform output -raw nix_build_command)."
  value       = module.fleet.nix_build_command
}

output "nix_build_machines" {
  description = "nix.buildMachines for NixOS / nix-darwin clients (terraform output -raw nix_build_machines)."
  value       = module.fleet.nix_build_machines
}

output "nix_conf" {
  description = "nix.conf lines that make the workstation use the builders."
  value       = module.fleet.nix_conf
}

output "pushed" {
  description = "Out paths of each push, by installable."
  value       = { for installable, push in module.fleet.pushes : installable => push.out_paths }
}
