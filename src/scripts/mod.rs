//! Remote scripts, kept as `.sh` files so shellcheck lints them, and included at
//! compile time. Rust passes them values only as quoted positional arguments or
//! on stdin.

/// Write stdin to a file atomically with a mode: `upload.sh PATH MODE`.
pub const UPLOAD: &str = include_str!("upload.sh");

/// Describe a host as `key=value` lines (system, CPUs, Nix version, …).
pub const PROBE: &str = include_str!("probe.sh");

/// Install Nix by a method unless present: `install_nix.sh METHOD URL DAEMON`.
pub const INSTALL_NIX: &str = include_str!("install_nix.sh");

/// Write the managed Nix config from stdin and include it from nix.conf.
pub const WRITE_CONFIG: &str = include_str!("write_config.sh");

/// Create the build user; authorized_keys on stdin.
pub const BUILD_USER: &str = include_str!("build_user.sh");

/// Cachix CLI and the watch-store service; env file on stdin.
pub const CACHIX: &str = include_str!("cachix.sh");

/// Restart the Nix daemon (systemd or a user command).
pub const RESTART_DAEMON: &str = include_str!("restart_daemon.sh");

/// Read-only report of a builder's managed pieces.
pub const BUILDER_CHECK: &str = include_str!("builder_check.sh");

/// Remove what nixbuild_builder added.
pub const BUILDER_CLEAN: &str = include_str!("builder_clean.sh");
