//! Nix formats and commands the provider renders or parses locally: the machines
//! file, `nix.conf` fragments, store paths and narinfo. Nothing here runs Nix.
pub mod attr_path;
pub mod build_output;
pub mod conf;
pub mod credentials;
pub mod machines;
pub mod narinfo;
pub mod ssh_config;
pub mod store_path;
