//! The `source` argument: a local directory (on the machine running Terraform)
//! that becomes a flake on the builder. Its content hash is computed at plan
//! time, so a changed file plans a new push; the tree travels to the builder
//! as a tar stream over SSH stdin, and the builder checks what it unpacked
//! against that hash before anything builds from it (`scripts/source.sh`).
//!
//! What is uploaded is what Nix would copy:
//! - in a git work tree, only the files git tracks (as for a `git+file`
//!   flake; listed with `git ls-files`, so uncommitted edits of tracked files
//!   count, untracked files do not, submodules are left out);
//! - elsewhere, every file, symlink and directory (as for a `path:` flake),
//!   except `.git` directories;
//! - never `.terraform/` directories nor `*.tfstate*` files, wherever they are.
//!
//! The content hash is the SHA-256 of the tree's NAR serialisation, in hex:
//! what `nix-hash --type sha256 DIR` prints for the uploaded copy, and the
//! `narHash` Nix records for the flake. Content, the executable bit, symlink
//! targets and directories count; owners, times and other modes do not.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Directory names that are never hashed nor uploaded.
pub const SKIPPED_DIRS: &[&str] = &[".git", ".terraform"];

/// Largest tree the provider uploads (it is held in memory as one tar).
pub const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// One node of the tree, children sorted by name (bytes), as in a NAR.
#[derive(Debug)]
enum Node {
    Dir(BTreeMap<String, Node>),
    File { path: PathBuf, executable: bool },
    Symlink(String),
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

/// Terraform's own files, never part of a flake's source.
fn excluded(name: &str, is_dir: bool) -> bool {
    (is_dir && SKIPPED_DIRS.contains(&name)) || name.contains(".tfstate")
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

/// The node for a file or symlink at `path`, or `None` for a directory.
fn leaf(path: &Path, meta: &fs::Metadata) -> Result<Option<Node>, String> {
    let kind = meta.file_type();
    if kind.is_dir() {
        Ok(None)
    } else if kind.is_file() {
        Ok(Some(Node::File {
            path: path.to_path_buf(),
            executable: is_executable(meta),
        }))
    } else if kind.is_symlink() {
        let target = fs::read_link(path)
            .map_err(|e| format!("cannot read link {}: {e}", path.display()))?
            .into_os_string()
            .into_string()
            .map_err(|_| format!("{}: link target is not UTF-8", path.display()))?;
        Ok(Some(Node::Symlink(target)))
    } else {
        Err(format!(
            "{} is not a file, directory or symlink",
            path.display()
        ))
    }
}

fn add_size(total: &mut u64, meta: &fs::Metadata) -> Result<(), String> {
    if meta.is_file() {
        *total += meta.len();
    }
    if *total > MAX_BYTES {
        return Err(format!(
            "the tree is larger than {} MiB: push it as a `flake` reference instead",
            MAX_BYTES / 1024 / 1024
        ));
    }
    Ok(())
}

/// Every entry below `dir` (not a git work tree), minus the exclusions.
fn walk(dir: &Path, total: &mut u64) -> Result<BTreeMap<String, Node>, String> {
    let mut children = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| format!("{}: file name {name:?} is not UTF-8", dir.display()))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if excluded(&name, meta.is_dir()) {
            continue;
        }
        add_size(total, &meta)?;
        let node = match leaf(&path, &meta)? {
            Some(node) => node,
            None => Node::Dir(walk(&path, total)?),
        };
        children.insert(name, node);
    }
    Ok(children)
}

/// The git work tree `dir` is in, if any (a `.git` directory or file in it or
/// an ancestor).
fn git_work_tree(dir: &Path) -> Option<PathBuf> {
    let dir = fs::canonicalize(dir).ok()?;
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Paths below `dir` that git tracks, relative to `dir`, without submodules.
fn git_tracked(dir: &Path, work_tree: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "-z", "--stage", "--", "."])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .output()
        .map_err(|e| {
            format!(
                "{} is a git work tree, so only the files git tracks are uploaded (as Nix does for a `git+file` flake), but `git` cannot run: {e}. Install git on the machine running Terraform",
                work_tree.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "`git ls-files` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut paths = Vec::new();
    for record in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // `<mode> <object> <stage>\t<path>`
        let record = std::str::from_utf8(record)
            .map_err(|_| format!("{}: a tracked file name is not UTF-8", dir.display()))?;
        let (meta, path) = record
            .split_once('\t')
            .ok_or_else(|| format!("unexpected `git ls-files` output: {record:?}"))?;
        // 160000: a submodule (gitlink); Nix leaves it out without `submodules=1`.
        if meta.starts_with("160000 ") {
            continue;
        }
        // A conflicted file is listed once per stage.
        if paths.last() != Some(&path.to_string()) {
            paths.push(path.to_string());
        }
    }
    Ok(paths)
}

/// The tracked files of a git work tree as a tree (parents made as needed).
fn tracked_tree(
    root: &Path,
    work_tree: &Path,
    total: &mut u64,
) -> Result<BTreeMap<String, Node>, String> {
    let tracked = git_tracked(root, work_tree)?;
    if !tracked.iter().any(|p| p == "flake.nix") {
        return Err(format!(
            "{}/flake.nix is not tracked by git: `git add flake.nix` (in a git work tree only tracked files are uploaded, as Nix does)",
            root.display()
        ));
    }
    let mut top = BTreeMap::new();
    'paths: for rel in tracked {
        let parts: Vec<&str> = rel.split('/').collect();
        let (name, parents) = parts.split_last().expect("split yields one part");
        for (i, part) in parts.iter().enumerate() {
            if excluded(part, i < parents.len()) {
                continue 'paths;
            }
        }
        let path = root.join(&rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Deleted but not yet committed: gone, as for Nix.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
        };
        add_size(total, &meta)?;
        let Some(node) = leaf(&path, &meta)? else {
            continue;
        };
        let mut dir = &mut top;
        for part in parents {
            let child = dir
                .entry(part.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match child {
                Node::Dir(children) => children,
                _ => {
                    return Err(format!(
                        "{}: {part} is tracked as a file and a directory",
                        root.display()
                    ))
                }
            };
        }
        dir.insert(name.to_string(), node);
    }
    Ok(top)
}

/// The tree that `path` uploads.
fn tree(path: &str) -> Result<Node, String> {
    check(path)?;
    let root = expand(path);
    let mut total = 0;
    let children = match git_work_tree(&root) {
        Some(work_tree) => tracked_tree(&root, &work_tree, &mut total)?,
        None => walk(&root, &mut total)?,
    };
    Ok(Node::Dir(children))
}

/// Appends NAR strings (length, bytes, zero padding to 8) to a hash.
struct Nar(Sha256);

impl Nar {
    fn str(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        let pad = (8 - bytes.len() % 8) % 8;
        self.0.update(&[0u8; 8][..pad]);
    }
}

/// Serialise `node` into `nar` and, when given, append it to `tar` at `rel`.
fn emit(node: &Node, rel: &str, nar: &mut Nar, tar: &mut Option<Tar>) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot build the source archive: {e}");
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header
    };
    nar.str(b"(");
    nar.str(b"type");
    match node {
        Node::Dir(children) => {
            nar.str(b"directory");
            if let (Some(tar), false) = (tar.as_mut(), rel.is_empty()) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, rel, std::io::empty()).map_err(io)?;
            }
            for (name, child) in children {
                nar.str(b"entry");
                nar.str(b"(");
                nar.str(b"name");
                nar.str(name.as_bytes());
                nar.str(b"node");
                let child_rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                emit(child, &child_rel, nar, tar)?;
                nar.str(b")");
            }
        }
        Node::File { path, executable } => {
            let content =
                fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            nar.str(b"regular");
            if *executable {
                nar.str(b"executable");
                nar.str(b"");
            }
            nar.str(b"contents");
            nar.str(&content);
            if let Some(tar) = tar.as_mut() {
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut h = header(tar::EntryType::Regular, mode, content.len() as u64);
                tar.append_data(&mut h, rel, &content[..]).map_err(io)?;
            }
        }
        Node::Symlink(target) => {
            nar.str(b"symlink");
            nar.str(b"target");
            nar.str(target.as_bytes());
            if let Some(tar) = tar.as_mut() {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, rel, target).map_err(io)?;
            }
        }
    }
    nar.str(b")");
    Ok(())
}

type Tar = tar::Builder<Vec<u8>>;

fn hash_and_archive(path: &str, mut tar: Option<Tar>) -> Result<(String, Option<Tar>), String> {
    let root = tree(path)?;
    let mut nar = Nar(Sha256::new());
    nar.str(b"nix-archive-1");
    emit(&root, "", &mut nar, &mut tar)?;
    Ok((hex::encode(nar.0.finalize()), tar))
}

/// The tree's content hash: lowercase hex SHA-256 of its NAR serialisation.
pub fn content_hash(path: &str) -> Result<String, String> {
    hash_and_archive(path, None).map(|(hash, _)| hash)
}

/// The tree as a tar archive with normalised metadata (owner 0, fixed time,
/// modes 0755/0644), and the content hash of exactly the bytes archived.
pub fn archive(path: &str) -> Result<(String, Vec<u8>), String> {
    let io = |e: std::io::Error| format!("cannot build the source archive: {e}");
    let (hash, builder) = hash_and_archive(path, Some(tar::Builder::new(Vec::new())))?;
    let mut data = builder
        .expect("a builder goes in, a builder comes out")
        .into_inner()
        .map_err(io)?;
    data.flush().map_err(io)?;
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
        dir
    }

    fn sh(dir: &Path, command: &str) {
        let out = Command::new("sh")
            .args(["-c", command])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn extract(tar_bytes: &[u8]) -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new("tar")
            .args(["-x", "-f", "-", "-C"])
            .arg(out.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(tar_bytes).unwrap();
        assert!(child.wait().unwrap().success());
        out
    }

    /// Every path below `dir`, relative, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    go(root, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        go(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn hash_follows_content_not_metadata() {
        let dir = tree();
        let p = dir.path().to_str().unwrap();
        let h1 = content_hash(p).unwrap();
        assert_eq!(h1.len(), 64);
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
    fn terraform_files_and_dot_git_are_never_part_of_the_tree() {
        let dir = tree();
        let p = dir.path().to_str().unwrap();
        fs::create_dir(dir.path().join("vendor")).unwrap();
        let before = content_hash(p).unwrap();
        for (name, content) in [
            ("vendor/.git/HEAD", "ref"),
            (".terraform/providers/x", "binary"),
            ("sub/.terraform/modules.json", "{}"),
            ("terraform.tfstate", "{}"),
            ("terraform.tfstate.backup", "{}"),
            ("sub/.terraform.tfstate.lock.info", "{}"),
        ] {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        assert_eq!(content_hash(p).unwrap(), before);
        // `.terraform` as a file name and the lock file are ordinary files.
        fs::write(dir.path().join(".terraform.lock.hcl"), "x").unwrap();
        assert_ne!(content_hash(p).unwrap(), before);
    }

    #[test]
    fn archive_extracts_to_the_same_tree_and_hash() {
        let dir = tree();
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        fs::write(dir.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        fs::write(dir.path().join("terraform.tfstate"), "{}").unwrap();
        let p = dir.path().to_str().unwrap();
        let (hash, tar_bytes) = archive(p).unwrap();
        assert_eq!(hash, content_hash(p).unwrap());
        let out = extract(&tar_bytes);
        assert_eq!(
            listing(out.path()),
            [
                "flake.nix",
                "link",
                "run.sh",
                "sub",
                "sub/a.txt",
                "sub/deeper"
            ]
        );
        assert_eq!(
            fs::read_link(out.path().join("link")).unwrap(),
            Path::new("sub/a.txt")
        );
        assert_eq!(content_hash(out.path().to_str().unwrap()).unwrap(), hash);
    }

    #[test]
    fn nar_hash_of_a_known_tree() {
        // A fixed tree whose NAR hash nix-hash 2.8 printed:
        // flake.nix = "{ outputs = _: {}; }", sub/a.txt = "a" (mode 644),
        // sub/x = "#!" (mode 755), sub/l -> "a.txt", empty/ .
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("flake.nix"), "{ outputs = _: {}; }").unwrap();
        fs::create_dir_all(dir.path().join("sub")).unwrap();
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        fs::write(dir.path().join("sub/x"), "#!").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path().join("sub/x"), fs::Permissions::from_mode(0o755))
                .unwrap();
            fs::set_permissions(
                dir.path().join("sub/a.txt"),
                fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("a.txt", dir.path().join("sub/l")).unwrap();
        assert_eq!(
            content_hash(dir.path().to_str().unwrap()).unwrap(),
            KNOWN_TREE_HASH
        );
    }

    const KNOWN_TREE_HASH: &str =
        "820678a5c04aaf01d4bdc4ea78cd7a9c5c6cbdc5f94de08794c40c22e6dae9fe";

    #[test]
    fn a_git_work_tree_uploads_only_tracked_files() {
        let dir = tree();
        let p = dir.path().to_str().unwrap();
        fs::write(dir.path().join("untracked.txt"), "u").unwrap();
        fs::write(dir.path().join("terraform.tfstate"), "{}").unwrap();
        sh(
            dir.path(),
            "git init -q . && git add flake.nix sub/a.txt terraform.tfstate",
        );
        // Staged, never committed: tracked all the same (git+file does this).
        let (hash, tar_bytes) = archive(p).unwrap();
        let out = extract(&tar_bytes);
        assert_eq!(listing(out.path()), ["flake.nix", "sub", "sub/a.txt"]);
        assert_eq!(content_hash(out.path().to_str().unwrap()).unwrap(), hash);
        // Untracked changes do not count; edits of tracked files do.
        fs::write(dir.path().join("untracked.txt"), "v").unwrap();
        assert_eq!(content_hash(p).unwrap(), hash);
        fs::write(dir.path().join("sub/a.txt"), "edited").unwrap();
        assert_ne!(content_hash(p).unwrap(), hash);
        // A tracked file deleted from the work tree is gone.
        fs::remove_file(dir.path().join("sub/a.txt")).unwrap();
        let out = extract(&archive(p).unwrap().1);
        assert_eq!(listing(out.path()), ["flake.nix"]);
    }

    #[test]
    fn a_flake_in_a_subdirectory_of_a_work_tree_uploads_its_tracked_files() {
        let repo = tempfile::tempdir().unwrap();
        fs::create_dir_all(repo.path().join("nix/flake")).unwrap();
        fs::write(repo.path().join("nix/flake/flake.nix"), "{}").unwrap();
        fs::write(repo.path().join("nix/flake/a"), "a").unwrap();
        fs::write(repo.path().join("nix/flake/b"), "b").unwrap();
        fs::write(repo.path().join("README"), "r").unwrap();
        sh(
            repo.path(),
            "git init -q . && git add README nix/flake/flake.nix nix/flake/a",
        );
        let flake = repo.path().join("nix/flake");
        let out = extract(&archive(flake.to_str().unwrap()).unwrap().1);
        assert_eq!(listing(out.path()), ["a", "flake.nix"]);
    }

    #[test]
    fn an_untracked_flake_nix_is_a_clear_error() {
        let dir = tree();
        sh(dir.path(), "git init -q . && git add sub/a.txt");
        let err = content_hash(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.contains("not tracked by git"), "{err}");
        assert!(err.contains("git add flake.nix"), "{err}");
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
