//! Client credentials: private keys (OpenSSH or PEM, optionally encrypted) and the
//! SSH agent. Loading happens before any connection, so a bad key is reported
//! against its attribute without touching a host. Decoded keys are cached for
//! the life of the provider process: an encrypted key's passphrase KDF (bcrypt,
//! deliberately slow) runs once, not once per resource and plan step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use russh::keys::{decode_secret_key, Error as KeyError, PrivateKey};

/// Why a key cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyLoadError {
    #[error("cannot read private key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the private key is encrypted; set `private_key_passphrase`")]
    NeedsPassphrase,
    #[error("the private key passphrase is wrong, or the key is corrupt")]
    WrongPassphrase,
    #[error("not a private key this provider can read (OpenSSH or PEM): {0}")]
    Invalid(String),
}

/// Read a key file. Only the file's readability is checked here.
pub fn read_key_file(path: &str) -> Result<String, KeyLoadError> {
    let expanded = expand_home(path);
    std::fs::read_to_string(&expanded).map_err(|e| KeyLoadError::Unreadable {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// `~/x` means the home of the user running Terraform, as in OpenSSH.
pub fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

type KeyCache = Mutex<HashMap<[u8; 32], Result<Arc<PrivateKey>, KeyLoadError>>>;

/// Decode (and decrypt) a private key, once per (key, passphrase) per process.
/// The cache is keyed by a hash, so it holds no key text or passphrase.
pub fn decode_key(pem: &str, passphrase: Option<&str>) -> Result<Arc<PrivateKey>, KeyLoadError> {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    let mut id = Sha256::new();
    id.update(pem.as_bytes());
    match passphrase {
        Some(p) => {
            id.update(b"\x01");
            id.update(p.as_bytes());
        }
        None => id.update(b"\x00"),
    }
    let id: [u8; 32] = id.finalize().into();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("key cache lock").get(&id) {
        return hit.clone();
    }
    // Decoded outside the lock: other keys need not wait for this KDF.
    let result = decode_uncached(pem, passphrase).map(Arc::new);
    cache
        .lock()
        .expect("key cache lock")
        .insert(id, result.clone());
    result
}

fn decode_uncached(pem: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyLoadError> {
    match decode_secret_key(pem, passphrase) {
        Ok(key) => Ok(key),
        Err(KeyError::KeyIsEncrypted) => Err(KeyLoadError::NeedsPassphrase),
        Err(e) => {
            if passphrase.is_some() && looks_encrypted(pem) {
                Err(KeyLoadError::WrongPassphrase)
            } else if passphrase.is_none() && looks_encrypted(pem) {
                Err(KeyLoadError::NeedsPassphrase)
            } else {
                Err(KeyLoadError::Invalid(e.to_string()))
            }
        }
    }
}

/// OpenSSH keys name their cipher inside the base64 body; PEM keys say
/// `ENCRYPTED` in a header. Used only to pick the clearer message.
fn looks_encrypted(pem: &str) -> bool {
    if pem.contains("ENCRYPTED") {
        return true;
    }
    russh::keys::ssh_key::PrivateKey::from_openssh(pem)
        .map(|k| k.is_encrypted())
        .unwrap_or(false)
}

/// The credentials one connection may try, in order: keys first, then the agent.
#[derive(Clone, Default)]
pub struct Credentials {
    pub keys: Vec<Arc<PrivateKey>>,
    pub agent: bool,
}

impl Credentials {
    /// Which credentials these are, without their secrets: a SHA-256 over
    /// the public keys (in order) and whether the agent is asked. Two
    /// settings share a pooled connection only when this matches, so a key
    /// the host refuses never rides on another key's login.
    pub fn identity(&self) -> [u8; 32] {
        let mut id = Sha256::new();
        for key in &self.keys {
            let public = key.public_key().to_bytes().unwrap_or_default();
            id.update((public.len() as u64).to_be_bytes());
            id.update(&public);
        }
        id.update([u8::from(self.agent)]);
        if self.agent {
            // Another agent may hold other keys.
            id.update(
                std::env::var("SSH_AUTH_SOCK")
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        id.finalize().into()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Credentials")
            .field("keys", &self.keys.len())
            .field("agent", &self.agent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn keygen(dir: &std::path::Path, name: &str, args: &[&str]) -> String {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(args)
            .arg("-q")
            .arg("-f")
            .arg(&path)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn decodes_plain_encrypted_and_pem_keys() {
        let dir = tempfile::tempdir().unwrap();
        let plain = keygen(dir.path(), "plain", &["-t", "ed25519", "-N", ""]);
        assert!(decode_key(&plain, None).is_ok());

        let enc = keygen(dir.path(), "enc", &["-t", "ed25519", "-N", "s3cret"]);
        assert_eq!(
            decode_key(&enc, None).unwrap_err(),
            KeyLoadError::NeedsPassphrase
        );
        assert_eq!(
            decode_key(&enc, Some("wrong")).unwrap_err(),
            KeyLoadError::WrongPassphrase
        );
        assert!(decode_key(&enc, Some("s3cret")).is_ok());
        // The second use of the same key and passphrase is a cache hit: no KDF.
        let first = decode_key(&enc, Some("s3cret")).unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &decode_key(&enc, Some("s3cret")).unwrap()
        ));

        let pem = keygen(
            dir.path(),
            "pem",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
        );
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(decode_key(&pem, None).is_ok());

        assert!(matches!(
            decode_key("not a key", None),
            Err(KeyLoadError::Invalid(_))
        ));
        assert!(matches!(
            read_key_file("/nonexistent/key"),
            Err(KeyLoadError::Unreadable { .. })
        ));
    }
}
