//! The `source` argument: a local directory (on the machine running Terraform)
//! that becomes a flake on the builder. Its content hash is computed at plan
//! time, so a changed file plans a new push; the tree travels to the builder
//! as a tar stream over SSH stdin into a content-addressed directory
//! (`scripts/source.sh`).
//!
//! What counts: regular files (content and executable bit), symlinks (their
//! target) and directories, walked in byte order. `.git` directories are
//! skipped: the builder sees the working tree, as `path:` flakes do, and a
//! commit alone changes nothing. Owners, times and other modes do not count.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Directory names that are never hashed nor uploaded.
pub const SKIPPED: &[&str] = &[".git"];

/// Largest tree the provider uploads (it is held in memory as one tar).
pub const MAX_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir(String),
    File {
        rel: String,
        path: PathBuf,
        executable: bool,
        size: u64,
    },
    Symlink {
        rel: String,
        target: String,
    },
}

/// Expand a leading `~/`; relative paths stay relative to Terraform's working
/// directory.
pub fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Check that `path` is a readable directory holding a `flake.nix`.
pub fn check(path: &str) -> Result<(), String> {
    let dir = expand(path);
    let meta = fs::metadata(&dir).map_err(|e| format!("`{path}`: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("`{path}` is not a directory"));
    }
    if !dir.join("flake.nix").is_file() {
        return Err(format!(
            "`{path}` has no flake.nix: `source` must be a flake's directory"
        ));
    }
    Ok(())
}

fn walk(root: &Path, rel: &str, out: &mut Vec<Entry>, total: &mut u64) -> Result<(), String> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .map(|entry| {
            entry
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))
                .and_then(|entry| {
                    entry.file_name().into_string().map_err(|name| {
                        format!("{}: file name {name:?} is not UTF-8", dir.display())
                    })
                })
        })
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = root.join(&child_rel);
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if SKIPPED.contains(&name.as_str()) {
                continue;
            }
            out.push(Entry::Dir(child_rel.clone()));
            walk(root, &child_rel, out, total)?;
        } else if kind.is_file() {
            *total += meta.len();
            if *total > MAX_BYTES {
                return Err(format!(
                    "the tree is larger than {} MiB: push it as a `flake` reference instead",
                    MAX_BYTES / 1024 / 1024
                ));
            }
            out.push(Entry::File {
                rel: child_rel,
                path,
                executable: is_executable(&meta),
                size: meta.len(),
            });
        } else if kind.is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| format!("cannot read link {}: {e}", path.display()))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| format!("{}: link target is not UTF-8", path.display()))?;
            out.push(Entry::Symlink {
                rel: child_rel,
                target,
            });
        } else {
            return Err(format!(
                "{} is not a file, directory or symlink",
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

fn entries(path: &str) -> Result<Vec<Entry>, String> {
    check(path)?;
    let mut out = Vec::new();
    walk(&expand(path), "", &mut out, &mut 0)?;
    Ok(out)
}

/// The tree's content hash: lowercase hex SHA-256 over its entries.
pub fn content_hash(path: &str) -> Result<String, String> {
    let mut hasher = Sha256::new();
    hasher.update(b"nixbuild-source-v1\0");
    for entry in entries(path)? {
        match entry {
            Entry::Dir(rel) => {
                hasher.update(b"d\0");
                hasher.update(rel.as_bytes());
                hasher.update(b"\0");
            }
            Entry::File {
                rel,
                path,
                executable,
                ..
            } => {
                let content =
                    fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                hasher.update(if executable { b"x\0" } else { b"f\0" });
                hasher.update(rel.as_bytes());
                hasher.update(b"\0");
                hasher.update((content.len() as u64).to_le_bytes());
                hasher.update(&content);
            }
            Entry::Symlink { rel, target } => {
                hasher.update(b"l\0");
                hasher.update(rel.as_bytes());
                hasher.update(b"\0");
                hasher.update(target.as_bytes());
                hasher.update(b"\0");
            }
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The tree as a tar archive with normalised metadata (owner 0, fixed time,
/// modes 0755/0644), plus its content hash computed from the same read.
pub fn archive(path: &str) -> Result<(String, Vec<u8>), String> {
    let hash = content_hash(path)?;
    let mut builder = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| format!("cannot build the source archive: {e}");
    for entry in entries(path)? {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::Dir(rel) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &rel, std::io::empty())
                    .map_err(io)?;
            }
            Entry::File {
                rel,
                path,
                executable,
                size,
            } => {
                let file = fs::File::open(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(size);
                builder.append_data(&mut header, &rel, file).map_err(io)?;
            }
            Entry::Symlink { rel, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder
                    .append_link(&mut header, &rel, &target)
                    .map_err(io)?;
            }
        }
    }
    let mut data = builder.into_inner().map_err(io)?;
    data.flush().map_err(io)?;
    // The hash was computed before the archive was read: a file changed in
    // between makes them disagree, so check again.
    let again = content_hash(path)?;
    if again != hash {
        return Err(format!(
            "`{path}` changed while it was being read; try again"
        ));
    }
    Ok((hash, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("flake.nix"), "{ outputs = _: {}; }").unwrap();
        fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
        dir
    }

    #[test]
    fn hash_follows_content_not_metadata() {
        let dir = tree();
        let p = dir.path().to_str().unwrap();
        let h1 = content_hash(p).unwrap();
        assert_eq!(h1.len(), 64);
        // .git is ignored.
        fs::write(dir.path().join(".git/HEAD"), "other").unwrap();
        assert_eq!(content_hash(p).unwrap(), h1);
        // Content, new files, empty directories and the executable bit count.
        fs::write(dir.path().join("sub/a.txt"), "b").unwrap();
        let h2 = content_hash(p).unwrap();
        assert_ne!(h2, h1);
        fs::create_dir(dir.path().join("empty")).unwrap();
        let h3 = content_hash(p).unwrap();
        assert_ne!(h3, h2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                dir.path().join("sub/a.txt"),
                fs::Permissions::from_mode(0o755),
            )
            .unwrap();
            assert_ne!(content_hash(p).unwrap(), h3);
        }
    }

    #[test]
    fn archive_extracts_to_the_same_tree() {
        let dir = tree();
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        let p = dir.path().to_str().unwrap();
        let (hash, tar_bytes) = archive(p).unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("tar")
            .args(["-x", "-f", "-", "-C"])
            .arg(out.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&tar_bytes).unwrap();
        assert!(child.wait().unwrap().success());
        assert!(!out.path().join(".git").exists());
        assert_eq!(
            fs::read_to_string(out.path().join("sub/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_link(out.path().join("link")).unwrap(),
            Path::new("sub/a.txt")
        );
        assert_eq!(content_hash(out.path().to_str().unwrap()).unwrap(), hash);
    }

    #[test]
    fn check_rejects_non_flakes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_str().unwrap();
        assert!(check(p).unwrap_err().contains("flake.nix"));
        assert!(check(&format!("{p}/nope")).is_err());
        fs::write(dir.path().join("f"), "").unwrap();
        assert!(check(&format!("{p}/f"))
            .unwrap_err()
            .contains("not a directory"));
    }
}
