//! Write-only twins of secret arguments (`<name>_wo` with `<name>_wo_version`,
//! Terraform ≥ 1.11): which value is in effect, the plan-time checks of a
//! pair, and the keyed fingerprint of a host file's SHA-256 that lets a
//! refresh check a file whose content the state does not hold.
//!
//! What a `_wo` attribute is to Terraform (write-only in the schema, copied
//! from the configuration into the proposed state for plan and apply, null in
//! every state sent back, refused below Terraform 1.11) is the plugin layer's
//! business, for every attribute whose name ends in `_wo`: resources see the
//! value in `proposed_state` and `planned_state` like any argument, and null
//! in `prior_state` and in `read`. Not here either: what each resource writes
//! where (its own module).

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

/// The suffix that makes an attribute write-only.
pub const SUFFIX: &str = "_wo";

/// The value in effect: `x_wo` when it is set (or unknown), else `x`.
pub fn effective<T: Clone>(plain: &Value<T>, write_only: &Value<T>) -> Value<T> {
    match write_only {
        Value::Null => plain.clone(),
        other => other.clone(),
    }
}

/// One secret argument and its write-only twin, for the plan-time checks
/// (the twin of a map is a string: write-only values are primitives).
pub struct Pair<'a, P, W = P> {
    /// The argument's name (`auth_token`); the twin is `<name>_wo`.
    pub name: &'static str,
    pub plain: &'a Value<P>,
    pub write_only: &'a Value<W>,
    pub version: &'a Value<i64>,
}

impl<P, W> Pair<'_, P, W> {
    /// Setting both `x` and `x_wo`, or `x_wo_version` without `x_wo`, is an
    /// error at the attribute's path (`at` turns a name into it). Unknown
    /// values wait for the plan.
    pub fn validate(&self, at: impl Fn(String) -> AttributePath, diags: &mut Diagnostics) {
        let name = self.name;
        if self.plain.is_value() && self.write_only.is_value() {
            diags.error(
                format!("Both `{name}` and `{name}{SUFFIX}` are set"),
                format!("set one of them: `{name}{SUFFIX}` (Terraform ≥ 1.11) keeps the value out of the state and the plan, `{name}` is stored in the state (marked sensitive)"),
                at(format!("{name}{SUFFIX}")),
            );
        }
        if self.version.is_value() && self.write_only.is_null() {
            diags.error(
                format!("`{name}{SUFFIX}_version` without `{name}{SUFFIX}`"),
                format!("the version only rotates `{name}{SUFFIX}`: set `{name}{SUFFIX}`, or remove `{name}{SUFFIX}_version`"),
                at(format!("{name}{SUFFIX}_version")),
            );
        }
    }
}

/// Keyed fingerprint of a file's content by its SHA-256 (lowercase hex, as
/// `sha256sum` prints it); empty for no file. An apply records it for the
/// content it wrote; a refresh computes it from the digest the host reports,
/// so the secret never has to come back, and the state holds neither the
/// secret nor an unkeyed hash of it.
pub fn file_fingerprint(salt: &str, sha256_hex: &str) -> String {
    if sha256_hex.is_empty() {
        return String::new();
    }
    crate::secrets::fingerprint(salt, &[("file_sha256", Some(sha256_hex.to_string()))])
}

/// [`file_fingerprint`] of `content` (`None`: no file).
pub fn content_fingerprint(salt: &str, content: Option<&str>) -> String {
    content.map_or_else(String::new, |c| {
        file_fingerprint(salt, &crate::nix::conf::sha256_hex(c.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn set(s: &str) -> Value<Secret> {
        Value::Value(Secret::new(s))
    }

    fn errors(plain: Value<Secret>, wo: Value<Secret>, version: Value<i64>) -> Vec<String> {
        let mut diags = Diagnostics::default();
        Pair {
            name: "netrc",
            plain: &plain,
            write_only: &wo,
            version: &version,
        }
        .validate(
            |name| AttributePath::new("nix").index(0).attribute(name),
            &mut diags,
        );
        diags
            .errors
            .iter()
            .map(|d| format!("{} @ {:?}", d.summary, d.attribute))
            .collect()
    }

    #[test]
    fn the_write_only_value_wins_when_set() {
        assert_eq!(effective(&set("a"), &Value::Null), set("a"));
        assert_eq!(effective(&set("a"), &set("b")), set("b"));
        assert_eq!(effective(&Value::Null, &set("b")), set("b"));
        assert_eq!(effective(&set("a"), &Value::Unknown), Value::Unknown);
        assert_eq!(effective::<Secret>(&Value::Null, &Value::Null), Value::Null);
    }

    #[test]
    fn pairs_are_checked_with_their_paths() {
        assert!(errors(set("a"), Value::Null, Value::Null).is_empty());
        assert!(errors(Value::Null, set("b"), Value::Value(1)).is_empty());
        assert!(errors(Value::Null, set("b"), Value::Null).is_empty());
        // Unknown: decided at plan time.
        assert!(errors(set("a"), Value::Unknown, Value::Value(1)).is_empty());
        let both = errors(set("a"), set("b"), Value::Null);
        assert_eq!(both.len(), 1, "{both:?}");
        assert!(
            both[0].contains("Both `netrc` and `netrc_wo`") && both[0].contains("netrc_wo"),
            "{both:?}"
        );
        let version = errors(Value::Null, Value::Null, Value::Value(2));
        assert_eq!(version.len(), 1, "{version:?}");
        assert!(version[0].contains("netrc_wo_version"), "{version:?}");
        let version = errors(set("a"), Value::Null, Value::Value(2));
        assert_eq!(version.len(), 1, "{version:?}");
    }

    #[test]
    fn file_fingerprints_match_the_reported_digest_and_hide_it() {
        let content = "machine h login u password hunter2\n";
        let digest = crate::nix::conf::sha256_hex(content.as_bytes());
        let fp = content_fingerprint("salt", Some(content));
        assert_eq!(fp, file_fingerprint("salt", &digest));
        assert_ne!(fp, file_fingerprint("other", &digest));
        assert_ne!(fp, content_fingerprint("salt", Some("another")));
        assert!(!fp.contains(&digest) && !fp.contains("hunter2"));
        assert_eq!(content_fingerprint("salt", None), "");
        assert_eq!(file_fingerprint("salt", ""), "");
    }
}
