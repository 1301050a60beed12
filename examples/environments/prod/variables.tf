variable "hcloud_token" {
  description = "Hetzner Cloud API token (read/write), e.g. TF_VAR_hcloud_token from CI secrets."
  type        = string
  sensitive   = true
}

variable "name_prefix" {
  description = "Prefix of every Hetzner resource name."
  type        = string
  default     = "nixbuild-prod"
}

variable "builders" {
  description = "The fleet: server type and location of each builder, by name. cax* types are aarch64."
  type = map(object({
    server_type = string
    location    = string
  }))
  default = {
    x86-1 = { server_type = "ccx33", location = "fsn1" }
    x86-2 = { server_type = "ccx33", location = "nbg1" }
    arm-1 = { server_type = "cax31", location = "fsn1" }
  }
}

variable "image" {
  description = "OS image of the builders."
  type        = string
  default     = "debian-12"
}

variable "admin_ssh_public_key" {
  description = "Public key installed for root on the new servers."
  type        = string
}

variable "admin_ssh_private_key_file" {
  description = "Its private key, used by the nixbuild provider to bootstrap them."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Networks allowed to reach SSH on the builders: the CI runners and the ops bastion. Never the whole internet."
  type        = list(string)

  validation {
    condition     = length(var.ssh_allowed_cidrs) > 0 && !anytrue([for cidr in var.ssh_allowed_cidrs : contains(["0.0.0.0/0", "::/0"], cidr)])
    error_message = "Give the CI and bastion networks; SSH must not be open to the internet."
  }
}

variable "max_jobs" {
  description = "Builds each builder runs at once. Null: one per CPU."
  type        = number
  default     = null
}

variable "ci_public_keys" {
  description = "Public keys of the CI runners that build on the fleet."
  type        = list(string)
}

variable "ci_runner_host" {
  description = "The CI runner host the machines file is written to (over SSH, as root)."
  type        = string
}

variable "ci_ssh_key_path" {
  description = "Path, on the CI runner, of the private key it logs in to the builders with."
  type        = string
  default     = "/var/lib/ci/.ssh/nixbuild"
}

variable "cachix_cache" {
  description = "Cachix cache: every build on the fleet is pushed there (watch-store) and the releases below too. Token: CACHIX_AUTH_TOKEN."
  type        = string
}

variable "cachix_public_key" {
  description = "Public signing key of that cache (name:base64). Null: fetched from the Cachix API."
  type        = string
  default     = null
}

variable "release_flake" {
  description = "Flake of the release, pinned to a revision, e.g. git+https://git.example.com/infra/packages.git?ref=v1.4.0&rev=<sha>."
  type        = string
}

variable "release_installables" {
  description = "Attributes of that flake pushed on every release, by a short name: the heavy packages and the home-manager activation packages (quoted \"user@host\" names, as in the Nix language)."
  type        = map(string)
  default = {
    api-x86    = "packages.x86_64-linux.api"
    worker-x86 = "packages.x86_64-linux.worker"
    worker-arm = "packages.aarch64-linux.worker"
    home-ops   = "homeConfigurations.\"ops@bastion\".activationPackage"
  }
}

variable "mirror_store" {
  description = "A second binary cache the releases are mirrored to (any nix copy --to URI, e.g. s3://bucket?region=eu-central-1), with the HTTP URL it serves narinfos at. Null: no mirror."
  type = object({
    uri        = string
    public_url = string
  })
  default = null
}

variable "mirror_secret_key" {
  description = "Signing key (name:base64) of the mirror cache."
  type        = string
  sensitive   = true
  default     = null
}

variable "cache_proxy_location" {
  description = "Hetzner location of the cache proxy (where most builders are)."
  type        = string
  default     = "fsn1"
}

variable "cache_proxy_max_size" {
  description = "Size limit of the cache proxy's cache directory."
  type        = string
  default     = "60G"
}
