//! The release archives install the way users get them (issue 29): through a
//! real `terraform init` from a provider registry served over HTTPS, and
//! through a network mirror made by `terraform providers mirror`, on every
//! supported Terraform version. Terraform checks the archive against the
//! signed `SHA256SUMS` and writes the lock file; the test recomputes both
//! hashes itself. A configuration then applies with the installed provider
//! against a test host. `init` refuses a changed archive, a changed
//! `SHA256SUMS` or signature, and a signature by a key the registry does not
//! name.
//!
//! The registry is a stand-in (nothing real can run here): [`Https`], a small
//! HTTPS server on 127.0.0.1 speaking the provider registry protocol
//! (service discovery, versions, download with `signing_keys`) and serving
//! files, with a certificate from a throwaway CA that only the Terraform
//! processes of this test trust (`SSL_CERT_FILE`). Its host name is a line of
//! `/etc/hosts` that [`HostsLine`] adds and removes again.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{hcl, terraform_versions, world, Tf};
use sha2::{Digest, Sha256};

/// Host name of the registry stand-in (a reserved `.test` name).
const HOST: &str = "registry.nixbuild.test";
const VERSION: &str = "0.2.0";
const NAMESPACE: &str = "my-modular-workspace";
const ZIP: &str = "terraform-provider-nixbuild_0.2.0_linux_amd64.zip";
const SUMS: &str = "terraform-provider-nixbuild_0.2.0_SHA256SUMS";

/// The release directory (zip, manifest, SHA256SUMS, SHA256SUMS.sig) that
/// `scripts/release.sh` made, once per checkout, with a throwaway key, and
/// that key's armored public half.
fn artifacts() -> (PathBuf, PathBuf) {
    let release = common::release::release_artifacts();
    assert_eq!(release.version, VERSION, "the release script's version");
    (release.dir.clone(), release.public_key.clone())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The long key id (16 hex digits) of an armored public key, by gpg.
fn key_id(armored: &Path) -> String {
    let listing = run(Command::new("gpg")
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(armored));
    listing
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .expect("gpg lists the key")
        .to_string()
}

/// Terraform's `h1:` hash of a provider package (Go's dirhash "Hash1"): the
/// SHA-256 of the lines `<sha256 hex>  <name>\n` of every file, sorted by
/// name, base64. Computed here from the zip's entries, independently of
/// Terraform.
fn h1_of_zip(zip: &Path) -> String {
    let listing = run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile, hashlib\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             for n in sorted(i.filename for i in z.infolist() if not i.is_dir()):\n\
             \x20   print(hashlib.sha256(z.read(n)).hexdigest() + '  ' + n)",
        ])
        .arg(zip));
    use base64::Engine;
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(listing.as_bytes()))
    )
}

/// One line `127.0.0.1 registry.nixbuild.test` in the machine's `/etc/hosts`
/// while any test of this process holds a guard: the first guard appends it,
/// the last one (dropped, also when a test panics) removes exactly that line,
/// under an exclusive lock on the file so concurrent writers lose nothing.
struct HostsLine;

static HOSTS_USERS: Mutex<usize> = Mutex::new(0);

fn hosts_line() -> String {
    format!(
        "127.0.0.1 {HOST} # nixbuild tests (pid {})",
        std::process::id()
    )
}

fn edit_hosts(edit: impl FnOnce(String) -> String) {
    use std::os::unix::io::AsRawFd;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/etc/hosts")
        .expect("open /etc/hosts (tests run as root)");
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let new = edit(text);
    // In place (the file may be a bind mount, which a rename cannot
    // replace), overwriting and then cutting the end, never emptying it: the
    // edits keep every line before ours, so a reader meanwhile sees them.
    std::io::Seek::rewind(&mut file).unwrap();
    file.write_all(new.as_bytes()).unwrap();
    file.set_len(new.len() as u64).unwrap();
    file.sync_all().unwrap();
}

impl HostsLine {
    fn add() -> Self {
        let mut users = HOSTS_USERS.lock().unwrap_or_else(|p| p.into_inner());
        if *users == 0 {
            edit_hosts(|mut text| {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text + &hosts_line() + "\n"
            });
        }
        *users += 1;
        HostsLine
    }
}

impl Drop for HostsLine {
    fn drop(&mut self) {
        let mut users = HOSTS_USERS.lock().unwrap_or_else(|p| p.into_inner());
        *users -= 1;
        if *users == 0 {
            let line = hosts_line();
            edit_hosts(|text| {
                text.lines()
                    .filter(|l| *l != line)
                    .map(|l| format!("{l}\n"))
                    .collect()
            });
        }
    }
}

/// A response of [`Https`]: content type and body.
type Page = (&'static str, Vec<u8>);

/// The HTTPS stand-in: serves `pages` (path → response) on 127.0.0.1 with a
/// certificate for [`HOST`] from a throwaway CA (`ca` is its PEM file), one
/// thread per connection, and logs every request path. [`HOST`] is in
/// `/etc/hosts` while it lives.
struct Https {
    port: u16,
    ca: PathBuf,
    pages: Arc<Mutex<HashMap<String, Page>>>,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// [`HOST`] resolves while the server lives.
    _hosts: HostsLine,
}

impl Https {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nixbuild throwaway test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![HOST.to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pages: Arc<Mutex<HashMap<String, Page>>> = Default::default();
        let log: Arc<Mutex<Vec<String>>> = Default::default();
        let (p, l) = (pages.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, pages, log) = (config.clone(), p.clone(), l.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let _ = serve_one(&mut tls, &pages, &log);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        Self {
            port,
            ca,
            pages,
            log,
            _dir: dir,
            _hosts: HostsLine::add(),
        }
    }

    fn base(&self) -> String {
        format!("https://{HOST}:{}", self.port)
    }

    fn put(&self, path: &str, content_type: &'static str, body: Vec<u8>) {
        self.pages
            .lock()
            .unwrap()
            .insert(path.to_string(), (content_type, body));
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Serve the provider registry protocol for `namespace/nixbuild` 0.2.0
    /// linux_amd64 from the files of `release` (its zip, SHA256SUMS and
    /// signature, served under `/files/<namespace>/`), signed by `key`; the
    /// download's `shasum` is the zip's line of SHA256SUMS.
    fn registry(&self, namespace: &str, release: &Path, key: &Path) {
        self.put(
            "/.well-known/terraform.json",
            "application/json",
            br#"{"providers.v1":"/v1/providers/"}"#.to_vec(),
        );
        let files = format!("/files/{namespace}");
        for name in [ZIP.to_string(), SUMS.to_string(), format!("{SUMS}.sig")] {
            let body = std::fs::read(release.join(&name)).unwrap();
            self.put(&format!("{files}/{name}"), "application/octet-stream", body);
        }
        let provider = format!("/v1/providers/{namespace}/nixbuild");
        self.put(
            &format!("{provider}/versions"),
            "application/json",
            serde_json::json!({"versions": [{
                "version": VERSION,
                "protocols": ["6.0"],
                "platforms": [{"os": "linux", "arch": "amd64"}],
            }]})
            .to_string()
            .into_bytes(),
        );
        let armor = std::fs::read_to_string(key).unwrap();
        let base = self.base();
        self.put(
            &format!("{provider}/{VERSION}/download/linux/amd64"),
            "application/json",
            serde_json::json!({
                "protocols": ["6.0"],
                "os": "linux",
                "arch": "amd64",
                "filename": ZIP,
                "download_url": format!("{base}{files}/{ZIP}"),
                "shasums_url": format!("{base}{files}/{SUMS}"),
                "shasums_signature_url": format!("{base}{files}/{SUMS}.sig"),
                // As a registry publishes it: the signed checksum.
                "shasum": signed_zip_sum(release),
                "signing_keys": {"gpg_public_keys": [{
                    "key_id": key_id(key),
                    "ascii_armor": armor,
                }]},
            })
            .to_string()
            .into_bytes(),
        );
    }

    /// Serve the tree `dir` (a `terraform providers mirror` output) under `/prefix/`.
    fn mirror(&self, prefix: &str, dir: &Path) {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out)
                } else {
                    out.push(path)
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, &mut files);
        for file in files {
            let rel = file.strip_prefix(dir).unwrap().to_string_lossy();
            let kind = if rel.ends_with(".json") {
                "application/json"
            } else {
                "application/zip"
            };
            self.put(
                &format!("/{prefix}/{rel}"),
                kind,
                std::fs::read(&file).unwrap(),
            );
        }
    }
}

/// Read one HTTP/1.1 request and answer it (the connection then closes).
fn serve_one(
    stream: &mut (impl Read + Write),
    pages: &Mutex<HashMap<String, Page>>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("").to_string();
    log.lock().unwrap().push(path.clone());
    let page = pages.lock().unwrap().get(&path).cloned();
    let (status, kind, body) = match (method, page) {
        ("GET", Some((kind, body))) => ("200 OK", kind, body),
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// A Terraform directory of `version` whose CLI config is `cli_config` (e.g.
/// [`DIRECT`]: no `dev_overrides`, no plugin cache) and whose
/// Terraform trusts the stand-in's CA, with a configuration that requires
/// `source` 0.2.0, reads h1's status and writes a machines file.
fn installing(version: &str, server: &Https, cli_config: &str, source: &str) -> Tf {
    let mut tf = Tf::new(version);
    let rc = tf.dir.path().join("install.tfrc");
    std::fs::write(&rc, format!("disable_checkpoint = true\n{cli_config}")).unwrap();
    tf.env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap())
        .env("SSL_CERT_FILE", server.ca.to_str().unwrap())
        .env("TF_PLUGIN_CACHE_DIR", "");
    let h1 = world().host("h1");
    let config = common::provider_config("").replacen(
        &format!("source = \"{}\"", common::SOURCE),
        &format!("source = {}, version = \"{VERSION}\"", hcl(source)),
        1,
    );
    assert!(config.contains(source), "{config}");
    tf.write(&format!(
        r#"{config}
data "nixbuild_builder_status" "h1" {{
  host = {host}
  ssh {{
    host_key = {host_key}
  }}
}}

resource "nixbuild_machines_file" "m" {{
  path = abspath("${{path.module}}/machines")
  machine {{
    uri     = "ssh-ng://nixbuild@${{data.nixbuild_builder_status.h1.host}}"
    systems = ["x86_64-linux"]
  }}
}}

output "reachable" {{
  value = data.nixbuild_builder_status.h1.reachable
}}
output "nix_version" {{
  value = data.nixbuild_builder_status.h1.nix_version
}}
"#,
        host = hcl(&h1.address()),
        host_key = hcl(&h1.host_key()),
    ));
    tf
}

/// CLI config: install from the origin registry only.
const DIRECT: &str = "provider_installation {\n  direct {}\n}\n";

/// The provider address of `namespace` on the stand-in (its port included).
fn source(server: &Https, namespace: &str) -> String {
    format!("{HOST}:{}/{namespace}/nixbuild", server.port)
}

/// The `hashes` of `source` in the directory's `.terraform.lock.hcl`, after
/// checking the block pins version 0.2.0.
fn locked_hashes(tf: &Tf, source: &str) -> Vec<String> {
    let lock = std::fs::read_to_string(tf.dir.path().join(".terraform.lock.hcl"))
        .expect("init wrote .terraform.lock.hcl");
    let block = lock
        .split("provider \"")
        .find(|b| b.starts_with(&format!("{source}\"")))
        .unwrap_or_else(|| panic!("no block for {source} in the lock file:\n{lock}"));
    assert!(
        block.contains(&format!("version     = \"{VERSION}\"")),
        "lock file does not pin {VERSION}:\n{lock}"
    );
    let hashes = block
        .split("hashes = [")
        .nth(1)
        .expect("hashes")
        .split(']')
        .next()
        .unwrap();
    let mut hashes: Vec<String> = hashes
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_string())
        .filter(|h| !h.is_empty())
        .collect();
    hashes.sort();
    hashes
}

/// The provider binary `init` installed for `source`: byte-identical to the
/// one in the release zip.
fn assert_installed_from_zip(tf: &Tf, source: &str, zip: &Path) {
    let dir = tf
        .dir
        .path()
        .join(".terraform/providers")
        .join(source)
        .join(VERSION)
        .join("linux_amd64");
    let name = format!("terraform-provider-nixbuild_v{VERSION}");
    let installed = std::fs::read(dir.join(&name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&name).display()));
    let out = Command::new("unzip")
        .arg("-p")
        .arg(zip)
        .arg(&name)
        .output()
        .unwrap();
    assert!(out.status.success(), "unzip -p {name}");
    assert!(
        installed == out.stdout,
        "the installed provider differs from the zip's {name}"
    );
}

/// Apply with the installed provider against h1, plan nothing, destroy.
fn apply_with_installed(tf: &Tf) {
    tf.apply();
    assert_eq!(tf.output("reachable"), serde_json::json!(true));
    let nix = tf.output("nix_version");
    assert!(
        nix.as_str().is_some_and(|v| v.starts_with("2.")),
        "nix_version {nix}"
    );
    let machines = std::fs::read_to_string(tf.dir.path().join("machines")).unwrap();
    let h1 = world().host("h1").address();
    assert!(
        machines.contains(&format!("ssh-ng://nixbuild@{h1}")),
        "{machines}"
    );
    tf.assert_no_changes();
    tf.destroy();
    assert!(
        !tf.dir.path().join("machines").exists(),
        "destroy left the machines file"
    );
}

/// The zip's line of SHA256SUMS (the signed checksum), as hex.
fn signed_zip_sum(release: &Path) -> String {
    let sums = std::fs::read_to_string(release.join(SUMS)).unwrap();
    sums.lines()
        .find(|l| l.ends_with(ZIP))
        .and_then(|l| l.split_whitespace().next())
        .expect("SHA256SUMS lists the zip")
        .to_string()
}

#[test]
fn init_installs_the_signed_release_from_a_registry_and_applies() {
    let (release, key) = artifacts();
    let zip = release.join(ZIP);
    let zip_sum = sha256_hex(&std::fs::read(&zip).unwrap());
    assert_eq!(signed_zip_sum(&release), zip_sum, "SHA256SUMS vs the zip");
    // `h1:` of the package, and a `zh:` for every file SHA256SUMS lists (the
    // zip, the manifest), each hashed here from the file itself.
    let expected = {
        let mut h = vec![h1_of_zip(&zip)];
        let sums = std::fs::read_to_string(release.join(SUMS)).unwrap();
        for name in sums.lines().filter_map(|l| l.split_whitespace().nth(1)) {
            let bytes = std::fs::read(release.join(name.trim_start_matches('*'))).unwrap();
            h.push(format!("zh:{}", sha256_hex(&bytes)));
        }
        h.sort();
        h
    };
    assert!(expected.contains(&format!("zh:{zip_sum}")));
    let id = key_id(&key);
    let server = Https::start();
    server.registry(NAMESPACE, &release, &key);
    let source = source(&server, NAMESPACE);
    for version in terraform_versions() {
        let tf = installing(&version, &server, DIRECT, &source);
        let init = words(&tf.ok(&["init", "-no-color"]));
        assert!(
            init.contains(&format!(
                "Installed {source} v{VERSION} (self-signed, key ID {id})"
            )),
            "Terraform {version}: init does not report the install signed by key {id}:\n{init}"
        );
        assert_eq!(
            locked_hashes(&tf, &source),
            expected,
            "Terraform {version}: lock file hashes"
        );
        assert_installed_from_zip(&tf, &source, &zip);
        apply_with_installed(&tf);
    }
    let served = server.requests();
    for path in [
        "/.well-known/terraform.json".to_string(),
        format!("/files/{NAMESPACE}/{ZIP}"),
        format!("/files/{NAMESPACE}/{SUMS}.sig"),
    ] {
        assert!(
            served.contains(&path),
            "{path} was never requested: {served:?}"
        );
    }
}

#[test]
fn init_installs_from_a_network_mirror() {
    let (release, key) = artifacts();
    let zip = release.join(ZIP);
    let h1 = h1_of_zip(&zip);
    let server = Https::start();
    server.registry(NAMESPACE, &release, &key);
    // A network mirror's paths start with the source's host name, and
    // Terraform resolves `HOST:PORT/…` there as a URL of scheme `HOST`: the
    // mirrored source is the portless `registry.nixbuild.test/…`, whose
    // registry API a CLI `host` block points at the stand-in's port.
    let source = format!("{HOST}/{NAMESPACE}/nixbuild");
    let registry_cli = format!(
        "host \"{HOST}\" {{\n  services = {{\n    \"providers.v1\" = \"{}/v1/providers/\"\n  }}\n}}\n{DIRECT}",
        server.base()
    );

    // `terraform providers mirror` fetches from the registry (and checks the
    // signature) into a directory, which the stand-in then serves.
    let mirror_dir = tempfile::tempdir().unwrap();
    let maker = installing(&terraform_versions()[0], &server, &registry_cli, &source);
    maker.ok(&[
        "providers",
        "mirror",
        "-platform=linux_amd64",
        mirror_dir.path().to_str().unwrap(),
    ]);
    let mirrored = mirror_dir.path().join(&source);
    assert_eq!(
        std::fs::read(mirrored.join(ZIP)).unwrap(),
        std::fs::read(&zip).unwrap(),
        "the mirror's archive is not the release's"
    );
    server.mirror("mirror", mirror_dir.path());

    let mirror_cli = format!(
        "provider_installation {{\n  network_mirror {{\n    url = \"{}/mirror/\"\n  }}\n}}\n",
        server.base()
    );
    for version in terraform_versions() {
        let before = server.requests().len();
        let tf = installing(&version, &server, &mirror_cli, &source);
        let init = tf.ok(&["init", "-no-color"]);
        assert!(
            init.contains(&format!("Installed {source} v{VERSION}")),
            "Terraform {version}: {init}"
        );
        let served = server.requests()[before..].to_vec();
        assert!(
            served.contains(&format!("/mirror/{source}/{ZIP}")),
            "Terraform {version}: the archive did not come from the mirror: {served:?}"
        );
        assert!(
            served.iter().all(|p| p.starts_with("/mirror/")),
            "Terraform {version}: init asked the registry, not only the mirror: {served:?}"
        );
        assert_eq!(
            locked_hashes(&tf, &source),
            vec![h1.clone()],
            "Terraform {version}: lock file hashes (a mirror lists h1: only)"
        );
        assert_installed_from_zip(&tf, &source, &zip);
        apply_with_installed(&tf);
    }
}

#[test]
fn init_refuses_a_tampered_or_foreign_signed_release() {
    let (release, key) = artifacts();
    let server = Https::start();
    let work = tempfile::tempdir().unwrap();
    // Each case: a copy of the release with one change, served under its own
    // namespace, and what init's error must say.
    let cases: [(&str, &str, Tamper); 4] = [
        (
            "tampered-archive",
            "archive has incorrect checksum zh:",
            |dir| flip_byte(&dir.join(ZIP), Byte::Middle),
        ),
        ("tampered-sums", SIGNATURE_FAILS, |dir| {
            // One more line (an archive for another platform), not signed
            // again; the zip's own line stays right.
            let mut sums = std::fs::read_to_string(dir.join(SUMS)).unwrap();
            sums.push_str(&format!(
                "{}  terraform-provider-nixbuild_{VERSION}_darwin_arm64.zip\n",
                "0".repeat(64)
            ));
            std::fs::write(dir.join(SUMS), sums).unwrap();
        }),
        (
            "other-key",
            "authentication signature from unknown issuer",
            |dir| {
                // A good signature, by a key the registry does not name.
                let home = tempfile::tempdir().unwrap();
                let gpg = |args: &[&str]| {
                    run(Command::new("gpg")
                        .env("GNUPGHOME", home.path())
                        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                        .args(args)
                        .current_dir(dir))
                };
                gpg(&[
                    "--quick-gen-key",
                    "someone else <x@nixbuild.test>",
                    "ed25519",
                    "sign",
                    "1d",
                ]);
                let sig = format!("{SUMS}.sig");
                std::fs::remove_file(dir.join(&sig)).unwrap();
                gpg(&["--detach-sign", "--output", &sig, SUMS]);
                run(Command::new("gpgconf")
                    .env("GNUPGHOME", home.path())
                    .args(["--kill", "gpg-agent"]));
            },
        ),
        ("tampered-signature", SIGNATURE_FAILS, |dir| {
            // The last byte is always in the signature value itself.
            flip_byte(&dir.join(format!("{SUMS}.sig")), Byte::Last)
        }),
    ];
    for (namespace, _, tamper) in &cases {
        let dir = work.path().join(namespace);
        std::fs::create_dir(&dir).unwrap();
        for name in [ZIP.to_string(), SUMS.to_string(), format!("{SUMS}.sig")] {
            std::fs::copy(release.join(&name), dir.join(&name)).unwrap();
        }
        tamper(&dir);
        server.registry(namespace, &dir, &key);
    }
    for version in terraform_versions() {
        for (namespace, expect, _) in &cases {
            let source = source(&server, namespace);
            let tf = installing(&version, &server, DIRECT, &source);
            let text = words(&tf.fails(&["init", "-no-color"]));
            assert!(
                text.contains(&format!(
                    "Error: Failed to install provider Error while installing {source} v{VERSION}: {expect}"
                )),
                "Terraform {version}, {namespace}: init did not fail with `{expect}`:\n{text}"
            );
            assert!(
                !tf.dir
                    .path()
                    .join(".terraform/providers")
                    .join(&source)
                    .exists(),
                "Terraform {version}, {namespace}: a provider was installed anyway"
            );
            assert!(!tf.dir.path().join(".terraform.lock.hcl").exists());
        }
    }
}

/// What `init` says when `SHA256SUMS.sig` does not verify `SHA256SUMS`.
const SIGNATURE_FAILS: &str = "error checking signature: openpgp: invalid signature";

/// `text` with every run of white space one space (Terraform wraps its
/// messages at 78 columns).
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A change to a copy of the release directory.
type Tamper = fn(&Path);

enum Byte {
    Middle,
    Last,
}

/// Change one byte of a file.
fn flip_byte(path: &Path, which: Byte) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = match which {
        Byte::Middle => bytes.len() / 2,
        Byte::Last => bytes.len() - 1,
    };
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}
