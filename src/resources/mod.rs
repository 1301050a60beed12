//! One module per resource and data source.

pub mod builder;
pub mod host;
pub mod machines_file;
