//! The `nixbuild` Terraform provider as a library: the binary in `main.rs` only
//! serves it. Integration tests and benchmarks use the same modules.

pub mod cache;
pub mod context;
pub mod docs;
pub mod host;
pub mod interrupt;
pub mod logging;
pub mod nix;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod schema;
pub mod scripts;
pub mod secrets;
pub mod ssh;
pub mod tfschema;
pub mod write_only;
