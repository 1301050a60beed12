output "servers" {
  description = "Public IPv4 address of each builder server."
  value       = { for name, server in hcloud_server.builder : name => server.ipv4_address }
}

output "builders" {
  description = "The bootstrapped builders (store URI, systems, Nix version, host key)."
  value       = module.builders.builders
}

output "machines_file" {
  description = "Content of the machines file."
  value       = nixbuild_machines_file.workstation.content
}

output "nix_conf" {
  description = "nix.conf lines that make the workstation use the builders."
  value       = nixbuild_machines_file.workstation.nix_conf
}

output "pushed" {
  description = "Out paths of each push, by installable."
  value       = { for installable, push in nixbuild_cache_push.packages : installable => push.out_paths }
}
