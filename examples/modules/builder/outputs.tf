output "builders" {
  description = "Each builder, by host name: what clients and other resources need."
  value = {
    for name, b in local.builders : name => {
      id                 = b.id
      host               = b.host
      store_uri          = b.store_uri
      host_key           = b.host_key
      host_key_base64    = b.host_key_base64
      system             = b.system
      systems            = b.systems
      nix_version        = b.nix_version
      cpus               = b.cpus
      max_jobs_effective = b.max_jobs_effective
      supported_features = b.supported_features
    }
  }
}

output "store_uris" {
  description = "ssh-ng:// store URI of each builder, by name."
  value       = { for name, b in local.builders : name => b.store_uri }
}

output "machines" {
  description = "One object per builder (sorted by name), with the arguments of a nixbuild_machines_file `machine` block: use it in a `dynamic \"machine\"`."
  value = [
    for name in sort(keys(local.builders)) : {
      uri                = local.builders[name].store_uri
      systems            = local.builders[name].systems
      ssh_key            = var.machine_ssh_key
      max_jobs           = local.builders[name].max_jobs_effective
      speed_factor       = var.speed_factor
      supported_features = local.builders[name].supported_features
      public_host_key    = local.builders[name].host_key_base64
    }
  ]
}
