//! OpenSSH public host key lines: parsing, comparison and the encodings users see
//! (`ssh-ed25519 AAAA…` in state, base64 of that line for column 8 of Nix's
//! machines file). Not for verification policy; that lives in `connect`.

use base64::Engine;
use russh::keys::{HashAlg, PublicKey};
use thiserror::Error;

/// Why a string is not a usable public key line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HostKeyParseError {
    #[error("the key is empty")]
    Empty,
    #[error("expected `<type> <base64> [comment]`, e.g. `ssh-ed25519 AAAAC3Nza…`")]
    Shape,
    #[error("`{0}` is not an SSH public key type this provider knows")]
    UnknownType(String),
    #[error("the base64 part does not decode to a `{0}` key")]
    BadKeyData(String),
}

/// A parsed OpenSSH public key (host key or user key), comment dropped.
#[derive(Clone, Debug)]
pub struct HostKey {
    key: PublicKey,
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.key.key_data() == other.key.key_data()
    }
}
impl Eq for HostKey {}

const KNOWN_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl HostKey {
    /// Parse `type base64 [comment]`, as in a `.pub` file or `ssh-keyscan` output
    /// without the host column. Surrounding whitespace is ignored.
    pub fn parse(line: &str) -> Result<Self, HostKeyParseError> {
        let line = line.trim();
        if line.is_empty() {
            return Err(HostKeyParseError::Empty);
        }
        let mut words = line.split_whitespace();
        let (Some(kind), Some(data)) = (words.next(), words.next()) else {
            return Err(HostKeyParseError::Shape);
        };
        if !KNOWN_TYPES.contains(&kind) {
            return Err(HostKeyParseError::UnknownType(kind.to_string()));
        }
        let key = PublicKey::from_openssh(&format!("{kind} {data}"))
            .map_err(|_| HostKeyParseError::BadKeyData(kind.to_string()))?;
        if key.algorithm().as_str() != kind {
            return Err(HostKeyParseError::BadKeyData(kind.to_string()));
        }
        Ok(Self { key })
    }

    /// Parse column 8 of a machines file: base64 of a public key line.
    pub fn from_base64_line(encoded: &str) -> Result<Self, HostKeyParseError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| HostKeyParseError::Shape)?;
        let line = String::from_utf8(bytes).map_err(|_| HostKeyParseError::Shape)?;
        Self::parse(&line)
    }

    pub fn from_public_key(key: &PublicKey) -> Self {
        let mut key = key.clone();
        key.set_comment("");
        Self { key }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// `type base64`, the canonical form kept in state and compared by users.
    pub fn openssh_line(&self) -> String {
        let mut key = self.key.clone();
        key.set_comment("");
        key.to_openssh()
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Base64 of the key line, as Nix expects in column 8 of the machines file.
    pub fn base64_line(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.openssh_line())
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }
}

impl std::fmt::Display for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.openssh_line(), self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";

    #[test]
    fn parses_line_with_and_without_comment() {
        let a = HostKey::parse(ED).unwrap();
        let b = HostKey::parse(&format!("  {ED} root@builder-1 \n")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.openssh_line(), ED);
        assert_eq!(b.openssh_line(), ED);
        assert!(a.fingerprint().starts_with("SHA256:"));
    }

    #[test]
    fn base64_round_trip() {
        let a = HostKey::parse(ED).unwrap();
        let encoded = a.base64_line();
        assert_eq!(HostKey::from_base64_line(&encoded).unwrap(), a);
        assert_eq!(
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&encoded)
                    .unwrap()
            )
            .unwrap(),
            ED
        );
    }

    #[test]
    fn rejects_bad_lines() {
        assert_eq!(HostKey::parse(""), Err(HostKeyParseError::Empty));
        assert_eq!(HostKey::parse("   "), Err(HostKeyParseError::Empty));
        assert_eq!(HostKey::parse("ssh-ed25519"), Err(HostKeyParseError::Shape));
        assert!(matches!(
            HostKey::parse("ssh-foo AAAA"),
            Err(HostKeyParseError::UnknownType(_))
        ));
        assert!(matches!(
            HostKey::parse("ssh-ed25519 notbase64!!"),
            Err(HostKeyParseError::BadKeyData(_))
        ));
        // Key data of one type labelled as another.
        let data = ED.split_whitespace().nth(1).unwrap();
        assert!(matches!(
            HostKey::parse(&format!("ssh-rsa {data}")),
            Err(HostKeyParseError::BadKeyData(_))
        ));
        // known_hosts lines carry a host column first: not a key line.
        assert!(matches!(
            HostKey::parse(&format!("127.0.0.1 {ED}")),
            Err(HostKeyParseError::UnknownType(_))
        ));
        assert!(HostKey::from_base64_line("%%%").is_err());
    }

    #[test]
    fn different_keys_differ() {
        let other =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5DofdXXNOW+iHCkB8EMZ/6rhaT69FUZcmve8Z7mcdb";
        assert_ne!(HostKey::parse(ED).unwrap(), HostKey::parse(other).unwrap());
    }
}
