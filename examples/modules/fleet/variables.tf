# Builders

variable "hosts" {
  description = <<-EOT
    Hosts to bootstrap into builders, keyed by a stable name (see
    modules/builder). `address`: host name or IP; `host_key`: optional pinned
    SSH host key line; `daemon_restart_command`: for hosts without systemd.
  EOT
  type = map(object({
    address                = string
    host_key               = optional(string)
    daemon_restart_command = optional(string)
  }))
}

variable "client_public_keys" {
  description = "OpenSSH public keys of the Nix clients (workstations, CI runners) allowed to build on the builders."
  type        = list(string)
}

variable "client_ssh_key_path" {
  description = "Absolute path, on the clients, of the private key they log in to the builders with (machines-file column 3). Null: ssh's default keys."
  type        = string
  default     = null
}

variable "install" {
  description = "How the builders get Nix: auto, official, determinate, distro or none."
  type        = string
  default     = "auto"
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
  description = "system-features of the builders. Null (recommended): what Nix detects on each host, which includes `kvm` exactly where /dev/kvm exists. A list replaces the detection: list `kvm` only for hosts that have /dev/kvm."
  type        = list(string)
  default     = null
}

variable "extra_config" {
  description = "Raw nix.conf lines appended to the builders' managed config."
  type        = string
  default     = null
}

variable "substituters" {
  description = "Further binary caches the builders substitute from."
  type        = list(string)
  default     = null
}

variable "trusted_public_keys" {
  description = "Signing keys (name:base64) of those caches."
  type        = list(string)
  default     = null
}

variable "cachix" {
  description = "A Cachix cache the builders substitute from. `install` installs the cachix CLI (needed by `watch_store` and by Cachix pushes); `watch_store` pushes every path built on the builders (systemd hosts; token from the provider's cachix block or CACHIX_AUTH_TOKEN)."
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

# Machines file

variable "machines_file_path" {
  description = "Where to write the machines file on the machine running Terraform. Relative paths are taken from the root module (made absolute with abspath). Null: `machines` in the root module's directory. Ignored when machines_file_target is set."
  type        = string
  default     = null
}

variable "machines_file_target" {
  description = "Write the machines file on this host over SSH instead (e.g. a CI runner), at `path` (default /etc/nix/machines)."
  type = object({
    host = string
    path = optional(string)
  })
  default = null
}

variable "machine_max_jobs" {
  description = "Jobs per builder in the machines file. Null: each builder's effective max-jobs."
  type        = number
  default     = null
}

variable "speed_factor" {
  description = "speed-factor of these builders in the machines file."
  type        = number
  default     = 1
}

# Pushes

variable "pushes" {
  description = <<-EOT
    Builds to run on a builder and push to a cache, by a short name. Per push:
    `flake` (a pinned reference the builder fetches) or `source` (a local
    directory with a flake.nix, uploaded); `installables` (attributes of that
    flake); `builder` (a key of `hosts`; default: the first by name);
    destination `cachix` (a cache name; the cachix CLI must be on the builder)
    or `store` (any `nix copy --to` URI, with `public_url` for presence checks
    of a non-HTTP store; signed with store_secret_key); `create_timeout`.
  EOT
  type = map(object({
    flake          = optional(string)
    source         = optional(string)
    installables   = list(string)
    builder        = optional(string)
    cachix         = optional(string)
    store          = optional(string)
    public_url     = optional(string)
    create_timeout = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for p in values(var.pushes) : (p.cachix == null) != (p.store == null)])
    error_message = "Each push needs exactly one destination: cachix or store."
  }
}

variable "store_secret_key" {
  description = "Signing key (name:base64) for pushes to a `store`. Null: unsigned (the cache signs, or is trusted otherwise)."
  type        = string
  sensitive   = true
  default     = null
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
