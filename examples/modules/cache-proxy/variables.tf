variable "name" {
  description = "Name of the Hetzner server (and prefix of its firewall)."
  type        = string
}

variable "server_type" {
  description = "Hetzner server type; the cache lives on its disk."
  type        = string
  default     = "cx32"
}

variable "location" {
  description = "Hetzner location, e.g. fsn1 (close to the builders)."
  type        = string
}

variable "image" {
  description = "OS image with systemd and apt (the proxy installs the distribution's nginx)."
  type        = string
  default     = "debian-12"
}

variable "ssh_key_ids" {
  description = "hcloud_ssh_key IDs allowed to log in as root (the provider's SSH key)."
  type        = list(string)
}

variable "ssh_allowed_cidrs" {
  description = "Networks that may reach SSH (Terraform runners, the bastion)."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Networks of the builders that substitute through the proxy."
  type        = list(string)
}

variable "port" {
  description = "Port the proxy listens on."
  type        = number
  default     = 8080
}

variable "upstreams" {
  description = "Binary caches to front, in order, with their public signing keys."
  type = list(object({
    url        = string
    public_key = string
  }))
  default = [{
    url        = "https://cache.nixos.org"
    public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
  }]
}

variable "max_size" {
  description = "Size limit of the cache directory (nginx size, e.g. \"60G\")."
  type        = string
  default     = "60G"
}

variable "labels" {
  description = "Labels for the server and firewall."
  type        = map(string)
  default     = {}
}
