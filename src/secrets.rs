//! Secret hygiene shared by every resource: random names and salts, and keyed
//! fingerprints that let state notice a rotated secret without holding it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

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
