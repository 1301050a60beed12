//! The release artifacts of `scripts/release.sh`, built once for every test
//! binary that needs them (tests/release.rs, the CI example, the registry
//! test): the script runs with the `release-test` profile and a throwaway GPG
//! key into `$NIXBUILD_WORLD/release-<hash of its inputs>`, under a file lock
//! so two test binaries never build at once. A finished directory is never
//! written again: while its inputs are unchanged it is reused as it is. After
//! a build the world keeps the three newest such directories.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The cargo profile the tests build the release binary with (Cargo.toml).
pub const PROFILE: &str = "release-test";

pub struct Release {
    /// The script's OUT_DIR: zip, manifest, SHA256SUMS and its signature.
    pub dir: PathBuf,
    /// The throwaway signing key's public half (ASCII-armored), outside `dir`.
    pub public_key: PathBuf,
    pub version: &'static str,
}

impl Release {
    pub fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!(
            "terraform-provider-nixbuild_{}_{suffix}",
            self.version
        ))
    }

    /// The linux_amd64 archive.
    pub fn zip(&self) -> PathBuf {
        self.file("linux_amd64.zip")
    }
}

/// What the archive is made of: a change to any of these makes a new directory.
fn input_hash(root: &Path) -> String {
    fn walk(path: &Path, files: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), files);
            }
        } else if path.is_file() {
            files.push(path.to_path_buf());
        }
    }
    let mut files = Vec::new();
    for name in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "LICENSE",
        "README.md",
        "terraform-registry-manifest.json",
        "scripts/release.sh",
    ] {
        walk(&root.join(name), &mut files);
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    PROFILE.hash(&mut hasher);
    for file in files {
        file.strip_prefix(root).unwrap().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway ed25519 signing key made in a temporary GNUPGHOME; writes its
/// public half to `public` and returns the secret half, ASCII-armored.
pub fn throwaway_gpg_key(public: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let gpg = || {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", home.path())
            .arg("--batch")
            .arg("--quiet");
        c
    };
    run(gpg().args([
        "--passphrase",
        "",
        "--quick-gen-key",
        "Release Test <release-test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    std::fs::write(public, run(gpg().args(["--armor", "--export"]))).unwrap();
    run(gpg().args(["--armor", "--export-secret-keys"]))
}

/// The artifacts `scripts/release.sh` writes for this checkout, built on first use.
pub fn release_artifacts() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let root = super::repo_root();
        let world = &super::world().dir;
        let base = world.join(format!("release-{}", input_hash(&root)));
        let release = Release {
            dir: base.join("out"),
            public_key: base.join("signing_key.asc"),
            version: env!("CARGO_PKG_VERSION"),
        };
        let done = base.join("done");
        if done.exists() {
            return release;
        }
        let lock = std::fs::File::create(world.join("release.lock")).unwrap();
        lock.lock().unwrap();
        if done.exists() {
            return release; // another test binary built it while we waited
        }
        let _ = std::fs::remove_dir_all(&base); // an interrupted attempt
        std::fs::create_dir_all(&base).unwrap();
        let secret = throwaway_gpg_key(&release.public_key);
        let started = std::time::Instant::now();
        let mut script = Command::new("bash");
        script
            .arg(root.join("scripts/release.sh"))
            .arg(&release.dir)
            .env("NIXBUILD_RELEASE_PROFILE", PROFILE)
            .env("GPG_PRIVATE_KEY", secret)
            .env_remove("PASSPHRASE")
            .current_dir(&root);
        // What cargo sets for a test binary (CARGO_MANIFEST_DIR, OUT_DIR,
        // CARGO_PKG_*, ...) would reach build scripts that watch it (ring's
        // does) and make the script's build differ from a plain run.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref())
            {
                script.env_remove(key.as_ref());
            }
        }
        run(&mut script);
        eprintln!(
            "scripts/release.sh ({PROFILE}) took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        std::fs::write(&done, "").unwrap();
        remove_old_releases(world, KEEP_RELEASES);
        release
    })
}

/// How many finished artifact directories the world keeps (other checkouts,
/// e.g. a CI clone beside a worktree, may still use theirs).
const KEEP_RELEASES: usize = 3;

/// Remove all but the `keep` newest finished `release-*` directories of the
/// world (called under the release lock, after a build): each checkout's
/// inputs make a new one, and nothing else would remove them.
fn remove_old_releases(world: &Path, keep: usize) {
    let mut finished: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(world)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            if !name.starts_with("release-") {
                return None;
            }
            let built = std::fs::metadata(path.join("done")).ok()?.modified().ok()?;
            Some((built, path))
        })
        .collect();
    finished.sort_by_key(|(built, _)| std::cmp::Reverse(*built));
    for (_, old) in finished.into_iter().skip(keep) {
        eprintln!("removing old release artifacts {}", old.display());
        std::fs::remove_dir_all(&old).unwrap();
    }
}
