//! Secret hygiene shared by every resource: the [`Secret`] type that carries
//! every secret (its `Debug` prints no value), the one validator for
//! single-line secrets (tokens, signing keys), random names and salts, and
//! keyed fingerprints that let state notice a rotated secret without holding it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A secret value: auth tokens, signing keys, private keys and passphrases.
/// `Debug` never shows it; [`expose`](Self::expose) is the one way to read it.
/// Serialized as the plain string, because Terraform hands secrets over as strings.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A token or signing key: checked by [`check_single_line`], surrounding
    /// whitespace (e.g. the newline `file()` keeps) dropped.
    pub fn single_line(value: &str) -> Result<Self, String> {
        check_single_line(value)?;
        Ok(Self(value.trim().to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The one check for single-line secrets (tokens and signing keys), wherever
/// they come from: a resource, the provider block or the environment. A
/// newline or control character would end up as an extra line in an
/// environment or credentials file on the builder.
pub fn check_single_line(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = value
        .trim_end_matches('\n')
        .chars()
        .find(|c| c.is_control())
    {
        return Err(format!(
            "contains a control character ({}); give the value on one line, without newlines",
            c.escape_default()
        ));
    }
    Ok(())
}

/// 16 random bytes as hex (from /dev/urandom; the clock only if that fails).
pub fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes.copy_from_slice(&now.to_le_bytes()[..16]);
    }
    hex::encode(bytes)
}

/// A per-resource salt for [`fingerprint`], kept in private state.
pub fn random_salt() -> String {
    random_hex()
}

/// HMAC-SHA256, keyed by the resource's salt, over named secrets (absent ones
/// count too). Equal for the same secrets, useless to recover them.
pub fn fingerprint(salt: &str, secrets: &[(&str, Option<String>)]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key");
    for (name, value) in secrets {
        mac.update(name.as_bytes());
        mac.update(b"\0");
        match value {
            Some(v) => {
                mac.update(b"1");
                mac.update(v.as_bytes());
            }
            None => mac.update(b"0"),
        }
        mac.update(b"\0");
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(token: &str) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("cachix_auth_token", Some(token.to_string())),
            ("cachix_signing_key", None),
        ]
    }

    #[test]
    fn secrets_never_debug_print_and_single_line_check() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(Secret::single_line(" tok\n").unwrap().expose(), "tok");
        assert!(check_single_line("eyJhbGciOi.token-1").is_ok());
        // A trailing newline (e.g. from `file()`) is tolerated; an inner one is not.
        assert!(check_single_line("token\n").is_ok());
        for bad in ["", "  ", "a\nb", "a\rb", "a\u{1b}[0m", "tab\there"] {
            assert!(check_single_line(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"hunter2\"");
    }

    #[test]
    fn fingerprint_detects_rotation_without_holding_the_secret() {
        let salt = random_salt();
        assert_eq!(salt.len(), 32);
        assert_ne!(salt, random_salt());
        let a = fingerprint(&salt, &secrets("token-one"));
        assert_eq!(a, fingerprint(&salt, &secrets("token-one")));
        assert_ne!(a, fingerprint(&salt, &secrets("token-two")));
        assert_ne!(a, fingerprint(&random_salt(), &secrets("token-one")));
        assert!(!a.contains("token-one"));
        assert_ne!(
            fingerprint(&salt, &[("k", None)]),
            fingerprint(&salt, &[("k", Some(String::new()))])
        );
    }
}
