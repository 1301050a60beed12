//! go-plugin's handshake: the magic cookie that says Terraform started this
//! process, the protocol version both sides speak, a listening socket only
//! this user can reach, and the one line on stdout that tells Terraform where
//! it is (`1|6|unix|<path>|grpc|<server certificate>`).

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// go-plugin's core protocol version (the handshake line's first field).
const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol version served.
pub const PROTOCOL_VERSION: u32 = 6;
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Whether Terraform started this process (its magic cookie is set).
pub fn started_by_terraform() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).as_deref() == Ok(MAGIC_COOKIE_VALUE)
}

/// Check that the client speaks protocol 6 (`PLUGIN_PROTOCOL_VERSIONS`,
/// a comma-separated list; absent means the client's default, 6).
pub fn negotiate(versions: Option<&str>) -> anyhow::Result<u32> {
    let Some(versions) = versions.filter(|v| !v.trim().is_empty()) else {
        return Ok(PROTOCOL_VERSION);
    };
    if versions
        .split(',')
        .any(|v| v.trim().parse::<u32>() == Ok(PROTOCOL_VERSION))
    {
        Ok(PROTOCOL_VERSION)
    } else {
        bail!(
            "this provider speaks Terraform plugin protocol {PROTOCOL_VERSION}; the client offers {versions}: use Terraform 1.0 or later (or OpenTofu)"
        )
    }
}

/// A directory only this user can enter, made fresh for the socket (go-plugin
/// does the same), under `PLUGIN_UNIX_SOCKET_DIR` if Terraform set it, else
/// the temporary directory. Removed again by [`SocketDir::drop`].
pub struct SocketDir {
    pub dir: PathBuf,
    pub socket: PathBuf,
}

impl SocketDir {
    pub fn create() -> anyhow::Result<Self> {
        let parent = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        Self::create_in(&parent)
    }

    pub fn create_in(parent: &Path) -> anyhow::Result<Self> {
        let seed = std::process::id() as u64 ^ now_nanos();
        for attempt in 0..100u64 {
            let dir = parent.join(format!(
                "nixbuild-plugin-{:x}",
                seed.wrapping_add(attempt.wrapping_mul(0x9e37_79b9))
            ));
            // create_dir fails if the name exists: the directory is ours,
            // made with mode 0700, never one someone prepared.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let socket = dir.join("plugin.sock");
                    return Ok(SocketDir { dir, socket });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create the plugin socket directory in {}",
                            parent.display()
                        )
                    })
                }
            }
        }
        bail!(
            "cannot find a free name for the plugin socket directory in {}",
            parent.display()
        )
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// The handshake line: where Terraform connects, and the server certificate
/// it must trust (base64 without padding, go-plugin's encoding; empty
/// without TLS).
pub fn line(network: &str, address: &str, certificate: Option<&[u8]>) -> String {
    use base64::Engine as _;
    let certificate = certificate
        .map(|c| base64::engine::general_purpose::STANDARD_NO_PAD.encode(c))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|{network}|{address}|grpc|{certificate}\n")
}

/// Print the handshake line on stdout, in one write.
pub fn announce(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn versions_are_negotiated() {
        assert_eq!(negotiate(None).unwrap(), 6);
        assert_eq!(negotiate(Some("5,6")).unwrap(), 6);
        assert_eq!(negotiate(Some(" 6 ")).unwrap(), 6);
        let e = negotiate(Some("4,5")).unwrap_err().to_string();
        assert!(e.contains("protocol 6") && e.contains("4,5"), "{e}");
    }

    #[test]
    fn the_socket_directory_is_private_and_removed() {
        let parent = tempfile::tempdir().unwrap();
        let made = SocketDir::create_in(parent.path()).unwrap();
        let mode = std::fs::metadata(&made.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(made.socket.starts_with(&made.dir));
        let second = SocketDir::create_in(parent.path()).unwrap();
        assert_ne!(made.dir, second.dir);
        let dir = made.dir.clone();
        drop(made);
        assert!(!dir.exists());
    }

    #[test]
    fn the_line_is_go_plugins() {
        assert_eq!(
            line("unix", "/s", Some(&[0xff, 0xfe])),
            "1|6|unix|/s|grpc|//4\n"
        );
        assert_eq!(
            line("tcp", "127.0.0.1:1", None),
            "1|6|tcp|127.0.0.1:1|grpc|\n"
        );
    }
}
