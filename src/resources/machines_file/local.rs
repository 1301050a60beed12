//! Local files: written next to the target and renamed into place, created
//! only where no other file is, and read never through a symbolic link.

use std::io::Write;
use std::path::Path;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

/// Why a guarded create did not write.
pub(super) enum CreateRefused {
    /// The path holds another file; it was left untouched.
    Exists,
    Failed(String),
}

/// What a managed path holds.
pub(super) enum Found {
    /// A regular file's bytes.
    File(Vec<u8>),
    Missing,
    /// A symbolic link, or something else than a regular file: never followed
    /// or read, since whoever can write its directory could point it at a
    /// secret (the read runs as root on a remote target). The reason names
    /// the path; the content never shows anywhere.
    Refused(String),
}

impl Found {
    /// What the state records for a refused path: a line that is not the
    /// written content, so the plan shows a change (the apply replaces the
    /// link with the file), and holds nothing from behind the link.
    pub(super) fn placeholder(reason: &str) -> String {
        format!("# nixbuild: {reason}\n")
    }
}

pub(super) fn temp_path(path: &Path) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.nixbuild-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// Write `content` with `mode` to a fresh temporary file beside `path`.
pub(super) fn stage(path: &Path, content: &[u8], mode: u32) -> std::io::Result<std::path::PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        // Explicit, so the umask does not change the requested mode.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Replace `path` with `content`, atomically.
pub fn write(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = stage(path, content, mode)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Create `path` unless another file is there. A file already holding
/// exactly `content` is taken over: nothing is lost.
pub fn create(path: &Path, content: &[u8], mode: u32) -> Result<(), CreateRefused> {
    let failed = |e: std::io::Error| CreateRefused::Failed(e.to_string());
    let tmp = stage(path, content, mode).map_err(failed)?;
    // A hard link refuses an existing target in one step, so a file that
    // appears between a check and the write is never clobbered.
    let result = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(_) if std::fs::symlink_metadata(path).is_ok() => {
            let same = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_file())
                .unwrap_or(false)
                && std::fs::read(path).map(|c| c == content).unwrap_or(false);
            if same {
                std::fs::rename(&tmp, path).map_err(failed)
            } else {
                Err(CreateRefused::Exists)
            }
        }
        // No hard links on this file system: rename after the check.
        Err(_) => std::fs::rename(&tmp, path).map_err(failed),
    };
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The file's bytes, never through a symbolic link (`O_NOFOLLOW`, so a
/// link swapped in after the check is refused too) and never from
/// anything but a regular file.
pub fn read(path: &Path) -> std::io::Result<Found> {
    use std::io::Read;
    let link = || {
        Found::Refused(format!(
            "{} is a symbolic link; it was not followed",
            path.display()
        ))
    };
    let not_file = || {
        Found::Refused(format!(
            "{} is not a regular file; it was not read",
            path.display()
        ))
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(e),
        Ok(meta) if meta.file_type().is_symlink() => return Ok(link()),
        Ok(meta) if !meta.is_file() => return Ok(not_file()),
        Ok(_) => {}
    }
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(link()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(not_file());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Found::File(bytes))
}
