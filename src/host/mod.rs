//! Host facts: what the provider's read-only scripts report about a host
//! (`probe.sh`, `builder_check.sh`), parsed from their `key=value` lines.
//! Used by resources and data sources; knows nothing of Terraform.
//!
//! - [`probe`]: system, CPUs, OS, init system, Nix version;
//! - [`facts`]: the builder check (managed config, build user, services),
//!   with Nix's own facts reused while the host's Nix fingerprint holds.

pub mod facts;
pub mod probe;

use std::collections::BTreeMap;

pub use facts::{Facts, NixSnapshot};
pub use probe::Probe;

/// The one parser of the scripts' `key=value` lines: keys and values trimmed,
/// lines without `=` ignored, the last of repeated keys wins.
pub fn fields(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines() {
        let f = fields("a=1\n b = two words \nnoise\nc=\na=3\nd=x=y\n");
        assert_eq!(f.get("a"), Some(&"3"));
        assert_eq!(f.get("b"), Some(&"two words"));
        assert_eq!(f.get("c"), Some(&""));
        assert_eq!(f.get("d"), Some(&"x=y"));
        assert!(!f.contains_key("noise"));
    }
}
