# Everything machine-specific; scripts/demo.sh fills these from the test
# world's world.json (`make world`).

variable "builders" {
  description = "Builder hosts by name: address, the host's public key line (pinned) and how to restart its nix-daemon (the test hosts have no systemd)."
  type = map(object({
    address                = string
    host_key               = string
    daemon_restart_command = string
  }))
}

variable "admin_private_key_file" {
  description = "Private key that logs in as root on the builder hosts."
  type        = string
}

variable "client_public_key" {
  description = "Public key of the Nix client (this machine) that builds on the builders as the build user."
  type        = string
}

variable "client_private_key_file" {
  description = "Its private key, written into the machines file for Nix to log in with."
  type        = string
}

variable "machines_file_path" {
  description = "Where to write the machines file on this machine, e.g. /etc/nix/machines. Null: `machines` next to this configuration."
  type        = string
  default     = null
}

variable "cache_url" {
  description = "Writable HTTP binary cache (HTTP PUT) the flake is pushed to."
  type        = string
}

variable "cache_secret_key" {
  description = "Signing key of that cache (name:base64), from nix-store --generate-binary-cache-key."
  type        = string
  sensitive   = true
}

variable "cache_public_key" {
  description = "Its public key, trusted by the builders so they substitute from the cache."
  type        = string
}
