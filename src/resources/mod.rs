//! One module per resource and data source.

pub mod builder;
pub mod cache_proxy;
pub mod cache_push;
pub mod cachix_cache;
pub mod flake_outputs;
pub mod host;
pub mod machines_file;
pub mod state_upgrade;
pub mod timeouts;
