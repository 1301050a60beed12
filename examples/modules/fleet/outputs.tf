output "builders" {
  description = "Each builder, by name (store URI, systems, Nix version, host key, features): see modules/builder."
  value       = module.builders.builders
}

output "machines" {
  description = "The machines as a list of objects (the arguments of a nixbuild_machines_file `machine` block), sorted by builder name."
  value       = module.builders.machines
}

output "machines_file" {
  description = "Where the machines file was written (an absolute local path, or `path on host`) and its content."
  value = {
    path    = var.machines_file_target == null ? local.machines_file_path : "${coalesce(var.machines_file_target.path, "/etc/nix/machines")} on ${var.machines_file_target.host}"
    content = nixbuild_machines_file.this.content
  }
}

output "builders_line" {
  description = "The builders in one line, for `--option builders '…'` or `builders = …` in nix.conf (`terraform output -raw builders_line`)."
  value       = nixbuild_machines_file.this.builders
}

output "nix_build_command" {
  description = "A complete `nix build` that builds only on these builders; append the installable (`terraform output -raw nix_build_command` then ` .#package`)."
  value       = nixbuild_machines_file.this.nix_build_command
}

output "nix_build_machines" {
  description = "The builders as a `nix.buildMachines` value for a NixOS or nix-darwin client configuration."
  value       = nixbuild_machines_file.this.nix_build_machines
}

output "nix_conf" {
  description = "nix.conf lines for a client that reads the written machines file."
  value       = nixbuild_machines_file.this.nix_conf
}

output "pushes" {
  description = "Per push: out paths, how many paths it uploaded (0: the cache had them, e.g. from watch-store) and the cache URL."
  value = {
    for name, push in nixbuild_cache_push.this : name => {
      out_paths        = push.out_paths
      pushed_paths     = push.pushed_paths
      closure_paths    = push.closure_paths
      closure_nar_size = push.closure_nar_size
      cache_url        = push.cache_url
    }
  }
}
