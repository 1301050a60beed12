//! Uploads of `source` trees and push credentials on the builder:
//! - the concurrency guard of `source.sh`, run as a script on this machine
//!   (many unpacks of one tree at once leave one intact copy);
//! - real Terraform on the test builder h2: ten parallel pushes of one git
//!   work tree (only tracked files uploaded, the copy checked against
//!   `source_hash`), then a changed tree, and the old copy pruned;
//! - a connection cut mid-push (TCP proxy) leaves no credential file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, hcl, provider_config, salt, sh, terraform_versions, world, Proxy, Tf};

const BUILDER: &str = "h2";

/// `find DIR` relative and sorted (what a tree holds, entry by entry).
const LISTING: &str = "find . -mindepth 1 | LC_ALL=C sort";

fn nix_hash(dir: &Path) -> String {
    sh(dir, "nix-hash --type sha256 .")
}

/// Many `source.sh unpack` of one tree at once, fed and closed together so
/// they race for the install: one copy, byte for byte the tree, nothing
/// inside it that is not in the tree. (The script before the lock let a
/// second copy land inside the first as `.unpack.XXXXXX`.)
#[test]
fn concurrent_unpacks_of_one_tree_leave_one_intact_copy() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("flake.nix"), "{ outputs = _: { }; }").unwrap();
    for i in 0..200 {
        std::fs::write(tree.join(format!("sub/f{i}")), format!("{i}\n").repeat(50)).unwrap();
    }
    let hash = nix_hash(&tree);
    let tar = Command::new("tar")
        .args(["-c", "-f", "-", "-C"])
        .arg(&tree)
        .arg(".")
        .output()
        .unwrap()
        .stdout;
    let script = common::repo_root().join("src/scripts/source.sh");
    for round in 0..4 {
        let home = work.path().join(format!("home{round}"));
        std::fs::create_dir_all(&home).unwrap();
        let mut children: Vec<_> = (0..12)
            .map(|_| {
                Command::new("sh")
                    .arg(&script)
                    .args(["unpack", &hash])
                    .env("HOME", &home)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut inputs: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        use std::io::Write;
        // Everything but the last byte first, then all the ends at once.
        for input in &mut inputs {
            input.write_all(&tar[..tar.len() - 1]).unwrap();
        }
        for input in &mut inputs {
            input.write_all(&tar[tar.len() - 1..]).unwrap();
        }
        drop(inputs);
        let copy = home.join(".cache/nixbuild/sources").join(&hash);
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                copy.to_str().unwrap()
            );
        }
        let stray = sh(&copy, "ls -A | grep -vx -e flake.nix -e sub || true");
        assert_eq!(stray, "", "round {round}: stray entries in the copy");
        assert_eq!(sh(&copy, LISTING), sh(&tree, LISTING), "round {round}");
        assert_eq!(nix_hash(&copy), hash, "round {round}");
        // Nothing left beside it but its use stamp and the lease directory.
        let beside = sh(&home.join(".cache/nixbuild/sources"), "ls -A");
        assert_eq!(
            beside,
            format!(".leases\n{hash}\n{hash}.used"),
            "round {round}"
        );
    }
}

/// A tree that does not hash to the name it is installed under is refused.
#[test]
fn an_upload_that_does_not_match_its_hash_is_not_installed() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("flake.nix"), "{ }").unwrap();
    let wrong = "0".repeat(64);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -c -f - -C {0} flake.nix | HOME={0}/home sh {1} unpack {wrong}",
            work.path().display(),
            common::repo_root().join("src/scripts/source.sh").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not installed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!work
        .path()
        .join("home/.cache/nixbuild/sources")
        .join(&wrong)
        .exists());
}

fn sources_dir() -> &'static str {
    "/root/.cache/nixbuild/sources"
}

/// Ten pushes of one git work tree at once, then a changed tree with
/// `source_keep = 1`: the first copy is exactly the tracked files and hashes
/// to `source_hash`; after the change the old copy is gone.
#[test]
fn ten_parallel_pushes_of_one_tree_then_a_change_prunes_the_old_copy() {
    let host = world().host(BUILDER);
    let _guard = common::exclusive(BUILDER);
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("upload", &version));
        sh(
            &flake,
            "git init -q . && git add flake.nix message.txt salt.txt",
        );
        // Not tracked, or Terraform's own: never uploaded.
        std::fs::write(flake.join("notes.txt"), "untracked").unwrap();
        std::fs::create_dir_all(flake.join(".terraform")).unwrap();
        std::fs::write(flake.join(".terraform/x"), "x").unwrap();
        std::fs::write(flake.join("terraform.tfstate"), "{}").unwrap();
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_cache_push" "par" {{
  count        = 10
  host         = {host}
  source       = {src}
  source_keep  = 1
  installables = ["par${{count.index}}"]
  store {{
    uri = {uri}
  }}
}}

output "hashes" {{
  value = distinct([for p in nixbuild_cache_push.par : p.source_hash])
}}
output "out_paths" {{
  value = [for p in nixbuild_cache_push.par : p.out_paths[0]]
}}
"#,
            provider = provider_config(""),
            host = hcl(&host.address()),
            src = hcl(flake.to_str().unwrap()),
            uri = hcl(world().json["cache"]["url"].as_str().unwrap()),
        ));
        let start = Instant::now();
        tf.ok(&["apply", "-auto-approve", "-no-color", "-parallelism=10"]);
        eprintln!(
            "[timing] 10 parallel source pushes ({version}): {:.1}s",
            start.elapsed().as_secs_f64()
        );
        let hashes = tf.output("hashes");
        let hashes = hashes.as_array().unwrap();
        assert_eq!(hashes.len(), 1, "{hashes:?}");
        let first = hashes[0].as_str().unwrap().to_string();
        let cache_dir = PathBuf::from(world().json["cache"]["dir"].as_str().unwrap());
        for p in tf.output("out_paths").as_array().unwrap() {
            let p = p.as_str().unwrap();
            let narinfo = cache_dir.join(format!("{}.narinfo", &p[11..43]));
            assert!(narinfo.exists(), "{p} is not in the cache");
        }
        let copy = format!("{}/{first}", sources_dir());
        assert_eq!(
            host.exec(&format!("cd {copy} && {LISTING}")),
            "./flake.nix\n./message.txt\n./salt.txt",
            "the copy holds exactly the tracked files"
        );
        assert_eq!(
            host.exec(&format!("nix-hash --type sha256 {copy}")),
            first,
            "the copy hashes to source_hash"
        );
        tf.assert_no_changes();

        // A new salt changes every `par` derivation (a new message would
        // not: the plan's evaluation would find their out paths unchanged,
        // and nothing would be pushed, nor pruned).
        std::fs::write(flake.join("salt.txt"), salt("upload-changed", &version)).unwrap();
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "a changed tracked file plans a push: {plan}");
        tf.ok(&["apply", "-auto-approve", "-no-color", "-parallelism=10"]);
        let second = tf.output("hashes")[0].as_str().unwrap().to_string();
        assert_ne!(second, first);
        let (gone, _) = host.try_exec(&format!("test -e {copy}"));
        assert!(!gone, "the old copy {copy} was not pruned");
        host.exec(&format!("test -d {}/{second}", sources_dir()));
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// An HTTP "store" that accepts connections and never answers: `nix copy`
/// to it hangs, so the push is mid-upload (signing key on the host) for as
/// long as the test needs.
fn stalled_store() -> (u16, std::sync::mpsc::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while stopped.try_recv().is_err() {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (port, stop)
}

fn credential_files(host: &common::Host) -> String {
    host.exec("ls -A /root/.cache/nixbuild/secrets 2>/dev/null || true")
}

/// A connection cut while `nix copy` signs and uploads leaves no signing key
/// on the builder: the script notices the dropped connection and removes it.
#[test]
fn a_connection_cut_mid_push_leaves_no_credential_file() {
    let host = world().host(BUILDER);
    let _guard = common::exclusive(BUILDER);
    let version = terraform_versions().remove(0);
    let tf = Tf::new(&version);
    let flake = fixture(tf.dir.path(), &salt("cut", &version));
    let proxy = Proxy::start(&format!("{}:22", host.address()));
    let (store_port, stop_store) = stalled_store();
    let key = host.exec(
        "d=$(mktemp -d) && nix-store --generate-binary-cache-key nbt-cut $d/sk $d/pk && cat $d/sk && rm -rf $d",
    );
    tf.write(&format!(
        r#"{provider}
resource "nixbuild_cache_push" "cut" {{
  host         = "127.0.0.1"
  source       = {src}
  installables = ["tool"]
  ssh {{
    port = {port}
  }}
  store {{
    uri        = "http://127.0.0.1:{store_port}"
    public_url = {public}
    secret_key = {key}
  }}
}}
"#,
        provider = provider_config(""),
        src = hcl(flake.to_str().unwrap()),
        port = proxy.port,
        public = hcl(world().json["cache"]["url"].as_str().unwrap()),
        key = hcl(key.trim()),
    ));
    let before = credential_files(&host);
    std::thread::scope(|scope| {
        let apply = scope.spawn(|| tf.run(&["apply", "-auto-approve", "-no-color"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        let appeared = || {
            credential_files(&host)
                .lines()
                .any(|f| f.starts_with("signing-key-") && !before.lines().any(|b| b == f))
        };
        while !appeared() {
            assert!(
                Instant::now() < deadline && !apply.is_finished(),
                "the push never reached the upload"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        proxy.cut_now();
        let cut = Instant::now();
        let out = apply.join().unwrap();
        assert!(!out.status.success(), "the apply survived the cut");
        loop {
            if !appeared() {
                eprintln!(
                    "[timing] signing key gone {:.1}s after the cut",
                    cut.elapsed().as_secs_f64()
                );
                break;
            }
            assert!(
                cut.elapsed() < Duration::from_secs(30),
                "a credential file remains 30 s after the cut: {}",
                credential_files(&host)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let new: Vec<String> = credential_files(&host)
        .lines()
        .filter(|f| !before.lines().any(|b| b == *f))
        .map(str::to_string)
        .collect();
    assert!(
        new.is_empty(),
        "credential files left by the cut push: {new:?}"
    );
    // `[?]`: the pattern must not match the shell that runs pgrep.
    let (running, _) = host.try_exec(&format!("pgrep -f '127.0.0.1:{store_port}[?]'"));
    assert!(!running, "nix copy still runs after the cut");
    let _ = stop_store.send(());
}

/// A negative `source_keep` fails the plan, naming the attribute, before any
/// connection.
#[test]
fn a_negative_source_keep_fails_the_plan() {
    let version = terraform_versions().remove(0);
    let tf = Tf::new(&version);
    let flake = fixture(tf.dir.path(), &salt("keep", &version));
    tf.write(&format!(
        r#"{provider}
resource "nixbuild_cache_push" "bad" {{
  host         = "127.0.0.1"
  source       = {src}
  source_keep  = -1
  installables = ["tool"]
  store {{
    uri = "file:///tmp/nbt-never"
  }}
}}
"#,
        provider = provider_config(""),
        src = hcl(flake.to_str().unwrap()),
    ));
    let text = tf.fails(&["plan", "-no-color"]);
    assert!(text.contains("Invalid source_keep"), "{text}");
    assert!(text.contains("source_keep  = -1"), "{text}");
}
