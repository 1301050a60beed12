output "servers" {
  description = "Public IPv4 address of each builder server."
  value       = { for name, server in hcloud_server.builder : name => server.ipv4_address }
}

output "builders" {
  description = "The bootstrapped builders (store URI, systems, Nix version, host key)."
  value       = module.builders.builders
}

output "machines_file" {
  description = "Content of the CI runner's machines file."
  value       = nixbuild_machines_file.ci.content
}

output "release_paths" {
  description = "Out paths of each release push, by name."
  value       = { for name, push in nixbuild_cache_push.release : name => push.out_paths }
}

output "release_uploaded" {
  description = "How many paths each release push uploaded (0: the cache had them all, e.g. from watch-store)."
  value       = { for name, push in nixbuild_cache_push.release : name => push.pushed_paths }
}
