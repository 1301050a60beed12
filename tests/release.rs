//! The release artifacts of `scripts/release.sh` (built once, with a throwaway
//! GPG key, by tests/common/release.rs): the archive's contents, SHA256SUMS,
//! its signature and the manifest as the Terraform Registry reads them; and
//! the linux_amd64 binary is static: it answers Terraform's plugin handshake
//! in an empty root that holds nothing but itself (no libc, as on Alpine).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::release::{release_artifacts, throwaway_gpg_key};
use sha2::{Digest, Sha256};

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

fn stdout_of(command: &mut Command) -> String {
    let out = run(command);
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn binary_name() -> String {
    format!("terraform-provider-nixbuild_v{}", env!("CARGO_PKG_VERSION"))
}

/// The binary out of the archive, into `dir`; returns its path.
fn unpack_binary(dir: &Path) -> std::path::PathBuf {
    let zip = release_artifacts().zip();
    stdout_of(
        Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg(binary_name())
            .arg("-d")
            .arg(dir),
    );
    dir.join(binary_name())
}

/// `gpgv` with the public key `public` (ASCII-armored) as its only keyring.
fn gpgv(dir: &Path, public: &Path, signature: &Path, data: &Path) -> Output {
    let keyring = dir.join("keyring.gpg");
    if !keyring.exists() {
        stdout_of(
            Command::new("gpg")
                .args(["--batch", "--yes", "--dearmor", "--output"])
                .arg(&keyring)
                .arg(public),
        );
    }
    run(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(signature)
        .arg(data))
}

#[test]
fn archive_holds_the_versioned_binary_and_the_licence() {
    let r = release_artifacts();
    let zip = r.zip();
    let listing = stdout_of(Command::new("unzip").arg("-Z1").arg(&zip));
    let names: BTreeSet<&str> = listing.lines().collect();
    let binary = binary_name();
    let expected: BTreeSet<&str> = [binary.as_str(), "LICENSE", "README.md"].into();
    assert_eq!(names, expected, "{}", zip.display());
    // Executable for everyone, as Terraform unpacks and runs it.
    let details = stdout_of(Command::new("unzip").arg("-Z").arg(&zip).arg(&binary));
    assert!(details.starts_with("-rwxr-xr-x"), "{details}");
    let licence = run(Command::new("unzip").arg("-p").arg(&zip).arg("LICENSE")).stdout;
    assert_eq!(
        licence,
        std::fs::read(common::repo_root().join("LICENSE")).unwrap()
    );
}

#[test]
fn sha256sums_cover_the_archives_and_the_manifest() {
    let r = release_artifacts();
    let sums = std::fs::read_to_string(r.file("SHA256SUMS")).unwrap();
    let mut listed = BTreeSet::new();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(r.dir.join(name)).unwrap();
        assert_eq!(hash, hex::encode(Sha256::digest(&bytes)), "{name}");
        listed.insert(name.to_string());
    }
    let expected: BTreeSet<String> = [
        format!("terraform-provider-nixbuild_{}_linux_amd64.zip", r.version),
        format!("terraform-provider-nixbuild_{}_manifest.json", r.version),
    ]
    .into();
    assert_eq!(listed, expected, "{sums}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.file("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], 1);
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );
    assert_eq!(
        std::fs::read(r.file("manifest.json")).unwrap(),
        std::fs::read(common::repo_root().join("terraform-registry-manifest.json")).unwrap()
    );
}

#[test]
fn the_signature_verifies_with_the_key_and_fails_on_changed_sums() {
    let r = release_artifacts();
    let dir = tempfile::tempdir().unwrap();
    let sums = r.file("SHA256SUMS");
    let signature = r.file("SHA256SUMS.sig");
    // A binary detached signature (OpenPGP packet, not ASCII armor).
    let bytes = std::fs::read(&signature).unwrap();
    assert!(!bytes.starts_with(b"-----BEGIN"), "armored signature");
    let good = gpgv(dir.path(), &r.public_key, &signature, &sums);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );

    let mut changed = std::fs::read(&sums).unwrap();
    changed[0] = if changed[0] == b'0' { b'1' } else { b'0' };
    let copy = dir.path().join("SHA256SUMS");
    std::fs::write(&copy, changed).unwrap();
    let bad = gpgv(dir.path(), &r.public_key, &signature, &copy);
    assert!(!bad.status.success(), "a changed SHA256SUMS verified");
}

/// Without a key the script fails at once, before building anything.
#[test]
fn the_script_refuses_to_run_without_a_signing_key() {
    let out = tempfile::tempdir().unwrap();
    let result = run(Command::new("bash")
        .arg(common::repo_root().join("scripts/release.sh"))
        .arg(out.path())
        .env_remove("GPG_PRIVATE_KEY"));
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("GPG_PRIVATE_KEY is not set"), "{stderr}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// `sums` with a key given in the environment signs whatever zips the
/// directory holds, as the release workflow's last job does.
#[test]
fn sums_signs_with_the_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    for platform in ["darwin_arm64", "linux_amd64"] {
        std::fs::write(
            out.join(format!(
                "terraform-provider-nixbuild_{version}_{platform}.zip"
            )),
            platform,
        )
        .unwrap();
    }
    let public = dir.path().join("public.asc");
    let secret = throwaway_gpg_key(&public);
    stdout_of(
        Command::new("bash")
            .arg(common::repo_root().join("scripts/release.sh"))
            .arg("sums")
            .arg(&out)
            .env("GPG_PRIVATE_KEY", secret)
            .env_remove("PASSPHRASE"),
    );
    let sums = std::fs::read_to_string(
        out.join(format!("terraform-provider-nixbuild_{version}_SHA256SUMS")),
    )
    .unwrap();
    assert_eq!(sums.lines().count(), 3, "{sums}");
    assert!(sums.contains("_darwin_arm64.zip") && sums.contains("_manifest.json"));
    let file = |suffix: &str| out.join(format!("terraform-provider-nixbuild_{version}_{suffix}"));
    let verified = gpgv(
        dir.path(),
        &public,
        &file("SHA256SUMS.sig"),
        &file("SHA256SUMS"),
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// An ELF file's program headers name no interpreter (PT_INTERP, 3): the
/// kernel runs it without a dynamic loader or libc from the host.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(elf[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    assert!(phnum > 0);
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3)
}

#[test]
fn the_linux_binary_is_static() {
    let dir = tempfile::tempdir().unwrap();
    let binary = std::fs::read(unpack_binary(dir.path())).unwrap();
    assert!(!has_interpreter(&binary), "the release binary is dynamic");
    // The check itself: the test binary (glibc, dynamic) has an interpreter.
    assert!(has_interpreter(
        &std::fs::read(std::env::current_exe().unwrap()).unwrap()
    ));
}

/// Terraform's side of the handshake: a client certificate (ECDSA P-521, as
/// Terraform makes), the magic cookie and protocol 6.
fn client_certificate(dir: &Path) -> String {
    stdout_of(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-521", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("client.key"))
            .arg("-out")
            .arg(dir.join("client.pem")),
    );
    std::fs::read_to_string(dir.join("client.pem")).unwrap()
}

#[test]
fn the_linux_binary_answers_the_handshake_in_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let binary = unpack_binary(&root);
    let held: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert_eq!(held.len(), 1, "the root holds only the binary");
    let cert = client_certificate(dir.path());

    // No /tmp in that root: the socket directory goes to its top.
    let mut child = Command::new("chroot")
        .arg(&root)
        .arg(Path::new("/").join(binary.file_name().unwrap()))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default()) // to find chroot
        .env(
            "TF_PLUGIN_MAGIC_COOKIE",
            "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("PLUGIN_UNIX_SOCKET_DIR", "/")
        .env("PLUGIN_CLIENT_CERT", cert)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert!(
        fields.len() == 6
            && fields[..3] == ["1", "6", "unix"]
            && fields[3].starts_with("/nixbuild-plugin-")
            && fields[3].ends_with("/plugin.sock")
            && fields[4] == "grpc"
            && !fields[5].is_empty(),
        "handshake line {line:?}; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The socket was made inside the root, where the binary listened.
    assert!(root
        .join(fields[3].trim_start_matches('/'))
        .parent()
        .unwrap()
        .is_dir());
}
