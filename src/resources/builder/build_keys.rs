//! The build user's `authorized_keys` lines. By default every key is
//! restricted to building: `restrict` (no pty, no forwarding, no
//! `~/.ssh/rc`) plus the forced command of the builder's protocol, so a
//! client key can run the Nix store protocol and nothing else. `allow_shell`
//! opts out (plain key lines). Import reads the lines back through
//! [`parse_line`].

/// Where the official and Determinate installers put Nix; sshd's default
/// `PATH` for a forced command does not include it.
const NIX_PROFILE_BIN: &str = "/nix/var/nix/profiles/default/bin";

/// The store protocol clients use, and the remote program Nix runs for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `ssh-ng://`: `nix-daemon --stdio`.
    SshNg,
    /// `ssh://`: `nix-store --serve --write`.
    Ssh,
}

pub const PROTOCOLS: &[&str] = &["ssh-ng", "ssh"];

impl Protocol {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ssh-ng" => Some(Self::SshNg),
            "ssh" => Some(Self::Ssh),
            _ => None,
        }
    }
    pub fn scheme(self) -> &'static str {
        match self {
            Self::SshNg => "ssh-ng",
            Self::Ssh => "ssh",
        }
    }
    fn program(self) -> &'static str {
        match self {
            Self::SshNg => "nix-daemon --stdio",
            Self::Ssh => "nix-store --serve --write",
        }
    }
    /// The command a client runs for this protocol, and the one a
    /// restricted key is forced to.
    pub fn command(self) -> String {
        format!("PATH={NIX_PROFILE_BIN}:$PATH exec {}", self.program())
    }
    /// The protocol's opening: the magic number a client sends and the one
    /// the server answers with (Nix's worker and serve protocols; 64-bit
    /// little-endian on the wire).
    pub fn magic(self) -> (u64, u64) {
        match self {
            Self::SshNg => (0x6e69_7863, 0x6478_696f),
            Self::Ssh => (0x390c_9deb, 0x5452_eecb),
        }
    }
    /// The `authorized_keys` options that restrict a key to this protocol.
    fn options(self) -> String {
        format!("restrict,command=\"{}\"", self.command())
    }
}

/// One `authorized_keys` line for `key`: restricted to `protocol`, or plain
/// (`None`: a shell is allowed).
pub fn line(key: &str, restricted_to: Option<Protocol>) -> String {
    match restricted_to {
        Some(protocol) => format!("{} {}\n", protocol.options(), key.trim()),
        None => format!("{}\n", key.trim()),
    }
}

/// A line as written by [`line`]: the key and its restriction.
pub fn parse_line(line: &str) -> (String, Option<Protocol>) {
    let line = line.trim();
    for protocol in [Protocol::SshNg, Protocol::Ssh] {
        if let Some(key) = line.strip_prefix(&format!("{} ", protocol.options())) {
            return (key.trim().to_string(), Some(protocol));
        }
    }
    (line.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl client";

    #[test]
    fn restricted_lines_round_trip() {
        let ng = line(KEY, Some(Protocol::SshNg));
        assert_eq!(
            ng,
            format!("restrict,command=\"PATH=/nix/var/nix/profiles/default/bin:$PATH exec nix-daemon --stdio\" {KEY}\n")
        );
        assert!(
            line(KEY, Some(Protocol::Ssh)).contains("exec nix-store --serve --write\" ssh-ed25519")
        );
        assert_eq!(line(KEY, None), format!("{KEY}\n"));
        for p in [Some(Protocol::SshNg), Some(Protocol::Ssh), None] {
            assert_eq!(parse_line(&line(KEY, p)), (KEY.to_string(), p));
        }
    }
}
