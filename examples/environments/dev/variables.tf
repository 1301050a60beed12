variable "hcloud_token" {
  description = "Hetzner Cloud API token (read/write), e.g. TF_VAR_hcloud_token from a secret store."
  type        = string
  sensitive   = true
}

variable "name_prefix" {
  description = "Prefix of every Hetzner resource name, and the `fleet` label. CI sets one per run (e.g. ci-<run id>-<attempt>)."
  type        = string
  default     = "nixbuild-dev"
}

variable "labels" {
  description = "Extra labels on every Hetzner resource, e.g. { cleanup = \"ci\" } for the scheduled cleanup of leftover CI servers."
  type        = map(string)
  default     = {}
}

variable "builder_names" {
  description = "One small x86 builder per name."
  type        = set(string)
  default     = ["b1"]
}

variable "server_type" {
  description = "Hetzner server type of the builders. The default, cx43 (8 vCPU, 16 GB RAM), fits ADR-018's heavy builds (~12 GB RAM each); cx23 (4 GB) runs them out of memory."
  type        = string
  default     = "cx43"
}

variable "location" {
  description = "Hetzner location."
  type        = string
  default     = "fsn1"
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
  description = "Networks allowed to reach SSH on the builders (your office, your CI runners)."
  type        = list(string)
}

variable "client_public_keys" {
  description = "Public keys of the Nix clients that build on the builders."
  type        = list(string)
}

variable "client_ssh_key_path" {
  description = "Path, on the clients, of the private key they log in to the builders with."
  type        = string
  default     = "/root/.ssh/nixbuild"
}

variable "machines_file_path" {
  description = "Where to write the machines file on the machine running Terraform (relative paths are made absolute). Null: `machines` in this directory, as an absolute path."
  type        = string
  default     = null
}

variable "cachix_cache" {
  description = "Cachix cache the builders substitute from and the pushes upload to. Its token comes from CACHIX_AUTH_TOKEN."
  type        = string
}

variable "cachix_public_key" {
  description = "Public signing key of that cache (name:base64). Null: looked up in the Cachix API at plan time."
  type        = string
  default     = null
}

variable "flake_ref" {
  description = "Flake the pushes build, pinned to a revision: github:OWNER/REPO/<sha> (any commit, pull request heads included; private repositories with nix_access_tokens), or git+https://git.example.com/infra/packages.git?ref=<branch or refs/pull/N/head>&rev=<sha> (Nix looks for a bare rev in HEAD only)."
  type        = string
}

variable "push_create_timeout" {
  description = "How long one push (build on a builder and upload) may take. ADR-018's heavy packages take 1-2 hours cold; keep it below the CI job's timeout."
  type        = string
  default     = "3h"
}

variable "nix_access_tokens" {
  description = "Access tokens for private github:/gitlab: flakes, by host (e.g. { \"github.com\" = <token> }; in CI the run's GITHUB_TOKEN). Written to a root-only file on the builders; sensitive in the state. Tokens apply to github:/gitlab:/sourcehut: references, not git+https."
  type        = map(string)
  default     = null
  sensitive   = true
}

variable "nix_netrc" {
  description = "netrc content for private tarball flakes and binary caches on the builders (machine HOST login USER password SECRET). Written to a root-only file; sensitive in the state."
  type        = string
  default     = null
  sensitive   = true
}

variable "push_installables" {
  description = "Attributes of that flake to build and push, one push each: the heavy packages, and each home-manager activation package (a quoted \"user@host\" name, as in the Nix language; rename it to your own)."
  type        = set(string)
  default = [
    "packages.x86_64-linux.default",
    "homeConfigurations.\"dev@workstation\".activationPackage",
  ]
}
