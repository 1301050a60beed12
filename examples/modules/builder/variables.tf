variable "hosts" {
  description = <<-EOT
    Hosts to bootstrap into builders, keyed by a stable name (the key is used in
    resource addresses, so renaming a key replaces that builder). `address` is
    the host name or IP; `host_key` optionally pins the expected SSH host key
    line (otherwise the key seen on create is pinned); `daemon_restart_command`
    restarts nix-daemon on hosts without systemd.
  EOT
  type = map(object({
    address                = string
    host_key               = optional(string)
    daemon_restart_command = optional(string)
  }))
}

variable "ssh_user" {
  description = "Administrative SSH user (root, or a user with passwordless sudo). Null: the provider's ssh.user."
  type        = string
  default     = null
}

variable "ssh_port" {
  description = "Administrative SSH port. Null: the provider's ssh.port."
  type        = number
  default     = null
}

variable "authorized_keys" {
  description = "OpenSSH public keys of the Nix clients (CI runners, workstations) allowed to build on the builders."
  type        = list(string)
}

variable "build_user" {
  description = "Name of the SSH user clients build as."
  type        = string
  default     = "nixbuild"
}

variable "install" {
  description = "How to get Nix: auto, official, determinate, distro or none."
  type        = string
  default     = "auto"
}

variable "installer_url" {
  description = "Installer script for the official or determinate method. Null: upstream's."
  type        = string
  default     = null
}

variable "max_jobs" {
  description = "max-jobs on each builder. Null: one per CPU."
  type        = number
  default     = null
}

variable "cores" {
  description = "CPUs each build may use (0 = all). Null: Nix's default."
  type        = number
  default     = null
}

variable "system_features" {
  description = "system-features of the builders, e.g. [\"big-parallel\", \"kvm\"]. Null: what Nix detects."
  type        = list(string)
  default     = null
}

variable "extra_platforms" {
  description = "Further systems the builders build for, e.g. [\"i686-linux\"]."
  type        = list(string)
  default     = null
}

variable "substituters" {
  description = "Binary caches the builders substitute from."
  type        = list(string)
  default     = null
}

variable "trusted_public_keys" {
  description = "Signing keys (name:base64) of those caches."
  type        = list(string)
  default     = null
}

variable "extra_config" {
  description = "Raw nix.conf lines appended to the managed config."
  type        = string
  default     = null
}

variable "cachix" {
  description = "A Cachix cache the builders substitute from; watch_store pushes every new store path (needs systemd). The token comes from the provider's cachix block."
  type = object({
    cache       = string
    public_key  = optional(string)
    install     = optional(bool, false)
    watch_store = optional(bool, false)
  })
  default = null
}

variable "on_destroy" {
  description = "keep (the hosts are destroyed anyway) or clean (remove the build user and the managed config)."
  type        = string
  default     = "keep"
}

variable "machine_ssh_key" {
  description = "Path, on the clients, of the private key they log in to the builders with; goes into the machines output. Null: ssh's defaults."
  type        = string
  default     = null
}

variable "speed_factor" {
  description = "speed-factor of these builders in the machines output."
  type        = number
  default     = 1
}

variable "nix_access_tokens" {
  description = "Access tokens for private github:/gitlab:/sourcehut: flakes on the builders, by host name (e.g. { \"github.com\" = var.github_token }). Written to a root-only file; in the state as a sensitive value."
  type        = map(string)
  default     = null
  sensitive   = true
}

variable "nix_netrc" {
  description = "netrc content for private tarball flakes and binary caches on the builders (machine HOST login USER password SECRET). Written to a root-only file; in the state as a sensitive value."
  type        = string
  default     = null
  sensitive   = true
}
