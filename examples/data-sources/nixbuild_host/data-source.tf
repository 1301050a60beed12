# Probe a host over SSH before deciding what to do with it.
data "nixbuild_host" "candidate" {
  host = "203.0.113.7"

  ssh {
    user = "admin" # privileged steps elsewhere use sudo -n
    port = 2222
  }
}

output "candidate" {
  value = {
    system      = data.nixbuild_host.candidate.system      # "x86_64-linux"
    nix_version = data.nixbuild_host.candidate.nix_version # null when Nix is missing
    cpus        = data.nixbuild_host.candidate.cpus
    init_system = data.nixbuild_host.candidate.init_system # "systemd" or "other"
    host_key    = data.nixbuild_host.candidate.host_key    # pin it in resources' ssh.host_key
  }
}
