//! Client credentials: private keys (OpenSSH or PEM, optionally encrypted) and the
//! SSH agent. Loading happens before any connection, so a bad key is reported
//! against its attribute without touching a host.

use std::sync::Arc;

use russh::keys::{decode_secret_key, Error as KeyError, PrivateKey};

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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

/// Decode (and decrypt) a private key.
pub fn decode_key(pem: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyLoadError> {
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
