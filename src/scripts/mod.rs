//! Remote scripts, kept as `.sh` files so shellcheck lints them, and included at
//! compile time. Rust passes them values only as quoted positional arguments or
//! on stdin.

/// Write stdin to a file atomically with a mode: `upload.sh PATH MODE`.
pub const UPLOAD: &str = include_str!("upload.sh");

/// Describe a host as `key=value` lines (system, CPUs, Nix version, …).
pub const PROBE: &str = include_str!("probe.sh");
