output "builders" {
  description = "The bootstrapped builders."
  value = {
    for name, b in module.builders.builders : name => {
      store_uri   = b.store_uri
      system      = b.system
      nix_version = b.nix_version
      cpus        = b.cpus
      max_jobs    = b.max_jobs_effective
    }
  }
}

output "machines_file" {
  description = "Path and content of the written machines file."
  value = {
    path    = var.machines_file_path
    content = nixbuild_machines_file.local.content
  }
}

output "nix_conf" {
  description = "nix.conf lines that make this machine use the builders."
  value       = nixbuild_machines_file.local.nix_conf
}

output "cache_push" {
  description = "What was built from ./flake and pushed."
  value = {
    cache_url        = nixbuild_cache_push.demo.cache_url
    out_paths        = nixbuild_cache_push.demo.out_paths
    closure_paths    = nixbuild_cache_push.demo.closure_paths
    closure_nar_size = nixbuild_cache_push.demo.closure_nar_size
    pushed_paths     = nixbuild_cache_push.demo.pushed_paths
  }
}
