//! Remote scripts, kept as `.sh` files so shellcheck lints them, and included at
//! compile time. Rust passes them values only as quoted positional arguments or
//! on stdin.

/// Write stdin to a file atomically with a mode: `upload.sh PATH MODE`.
pub const UPLOAD: &str = include_str!("upload.sh");

/// Describe a host as `key=value` lines (system, CPUs, Nix version, …).
pub const PROBE: &str = include_str!("probe.sh");

/// `nix` with flakes enabled, wherever Nix is installed: `nix.sh ARGS...`.
pub const NIX: &str = include_str!("nix.sh");

/// `nix copy --to URI`, signing with a 0600 key file it removes afterwards:
/// `store-push.sh URI KEYFILE PATH...`.
pub const STORE_PUSH: &str = include_str!("store-push.sh");

/// `cachix push NAME` with paths on stdin and credentials from a 0600 file:
/// `cachix-push.sh CREDENTIALS_FILE NAME`.
pub const CACHIX_PUSH: &str = include_str!("cachix-push.sh");

/// Content-addressed `source` trees: `source.sh has|unpack HASH`.
pub const SOURCE: &str = include_str!("source.sh");
