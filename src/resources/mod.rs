//! One module per resource and data source.

pub mod host;
pub mod machines_file;
