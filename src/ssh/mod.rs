//! The one way the provider reaches hosts: SSH over russh. Knows nothing of
//! Terraform: the context layer turns arguments into [`Settings`] and errors
//! into diagnostics.
//!
//! - [`settings`]: what one connection needs (endpoint, credentials, keys), resolved;
//! - [`auth`]: private keys and the agent;
//! - [`hostkey`]: public key lines;
//! - [`connect`]: one verified, authenticated connection, with retries;
//! - [`pool`]: pooled connections, channel limits and pinned host keys;
//! - [`exec`]: commands, scripts and uploads on a connected host;
//! - [`exchange`]: a protocol greeting written and answered before end of input;
//! - [`socket`]: the TCP stream under a connection (immediate ACKs);
//! - [`steps`]: several scripts as one remote command;
//! - [`quote`]: the one shell-quoting function.

pub mod auth;
pub mod connect;
pub mod error;
pub mod exchange;
pub mod exec;
pub mod hostkey;
pub mod pool;
pub mod quote;
pub mod settings;
pub mod socket;
pub mod steps;

pub use error::SshError;
pub use exec::Remote;
pub use hostkey::HostKey;
pub use pool::Pool;
pub use settings::Settings;
