//! One module per resource and data source.

pub mod cache_push;
pub mod host;
