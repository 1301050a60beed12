//! Acceptance tests of `nixbuild_builder`'s Cachix watch-store service on the
//! systemd host sd, on every Terraform version: the signing key reaches the
//! service (its 0600 environment file) and nothing else (unit file, process
//! arguments, the TF_LOG=trace log, remote command lines, the state); a
//! changed provider-level key plans an update, and the write-only form
//! (Terraform >= 1.11) stays out of the state; and a destroy right after a
//! build leaves every path built in the cache, because the destroy stops
//! watch-store, which uploads its queue first.
//!
//! The cachix CLI is the stand-in of tests/standins/cachix (no real Cachix
//! can run here). It behaves on stop as cachix 1.11.1 does
//! (src/Cachix/Client/PushQueue.hs, `exitOnceQueueIsEmpty`), and records
//! the SHA-256 of the signing key it got, never the key.

mod common;

use std::process::Command;

use common::{exclusive, hcl, provider_config, repo_root, terraform_versions, world, Tf};

/// Whether Terraform `version` has write-only arguments (1.11 on).
fn knows_write_only(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 11)
}

/// Make the Cachix API stand-in accept `token`.
fn register_token(token: &str) {
    use std::io::Write;
    let path = world().json["cachix_api"]["tokens_file"].as_str().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{token}").unwrap();
}

/// A fresh ed25519 key made by Nix on this machine: the base64 secret part,
/// which is what `cachix generate-keypair` prints and cachix reads.
fn cachix_signing_key(dir: &std::path::Path, name: &str) -> String {
    let (secret, _) = common::nix_signing_key(dir, name);
    secret.split_once(':').unwrap().1.to_string()
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn config(token: &str, signing_key: &str) -> String {
    let w = world();
    let api = w.json["cachix_api"]["url"].as_str().unwrap();
    format!(
        r#"{provider}
resource "nixbuild_builder" "sd" {{
  host       = {sd}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  cachix {{
    cache       = "public-cache"
    watch_store = true
  }}
}}
"#,
        provider = provider_config(&format!(
            "cachix {{\n    api_url     = {}\n    auth_token  = {}\n    signing_key = {}\n  }}",
            hcl(api),
            hcl(token),
            hcl(signing_key)
        )),
        sd = hcl(&w.host("sd").address()),
    )
}

/// The narinfo of `path` in the world's cache, if it is there.
fn narinfo(path: &str) -> Option<String> {
    let dir = world().json["cache"]["dir"].as_str().unwrap();
    let hash = &path.trim_start_matches("/nix/store/")[..32];
    std::fs::read_to_string(std::path::Path::new(dir).join(format!("{hash}.narinfo"))).ok()
}

/// Build `count` store paths of `size_mb` MB each on sd, named after `nonce`
/// (their own: nothing an earlier run left in the cache).
fn build_on_sd(nonce: &str, count: usize, size_mb: usize) -> Vec<String> {
    let drvs: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "(derivation {{ name = \"{nonce}-{i}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce}-{i} > $out; /usr/bin/head -c {size_mb}000000 /dev/urandom >> $out\" ]; }})"
            )
        })
        .collect();
    let out = world().host("sd").exec(&format!(
        "nix-build --no-out-link -E '[ {} ]' 2>/dev/null",
        drvs.join(" ")
    ));
    let paths: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(paths.len(), count, "{out}");
    paths
}

/// The stand-in of this tree on sd (the world installs the one it was
/// started from; this test needs its stop behaviour and key record).
fn install_standin() {
    let root = world().host("sd").field("root");
    let target = std::path::Path::new(&root).join("usr/local/bin/cachix");
    let ours = std::fs::read(repo_root().join("tests/standins/cachix")).unwrap();
    if std::fs::read(&target).ok().as_ref() != Some(&ours) {
        let tmp = target.with_extension("tmp");
        std::fs::write(&tmp, &ours).unwrap();
        Command::new("chmod").arg("755").arg(&tmp).status().unwrap();
        std::fs::rename(&tmp, &target).unwrap();
    }
}

/// The signing key reaches watch-store and nothing else; a new key plans an
/// update; a destroy right after builds leaves them all in the cache.
#[test]
fn watch_store_signs_with_the_key_and_uploads_its_queue_before_destroy() {
    let _sd = exclusive("sd");
    let w = world();
    let sd = w.host("sd");
    for version in terraform_versions() {
        sd.reset();
        install_standin();
        let mut tf = Tf::new(&version);
        let token = format!("nbt-ws-{}-{}", version.replace('.', ""), std::process::id());
        register_token(&token);
        let key = cachix_signing_key(tf.dir.path(), "public-cache-1");
        let trace = tf.dir.path().join("trace.log");
        tf.env("TF_LOG", "trace")
            .env("TF_LOG_PATH", trace.to_str().unwrap());
        let commands_before = sd.commands_log().len();
        tf.write(&config(&token, &key));
        tf.apply();
        tf.assert_no_changes();

        // The key is in the service's 0600 environment, and nowhere else.
        let env = sd.exec("cat /etc/nixbuild/cachix.env");
        assert_eq!(
            env,
            format!("CACHIX_AUTH_TOKEN={token}\nCACHIX_SIGNING_KEY={key}")
        );
        assert_eq!(
            sd.exec("stat -c '%a %U' /etc/nixbuild/cachix.env"),
            "600 root"
        );
        let unit = sd.exec("systemctl cat nixbuild-cachix-watch-store");
        assert!(unit.contains("watch-store public-cache"), "{unit}");
        assert!(!unit.contains(&key), "signing key in the unit: {unit}");
        assert!(
            unit.contains("KillMode=mixed") && unit.contains("TimeoutStopSec=600"),
            "{unit}"
        );
        let ps = sd.exec("ps -eo args");
        assert!(
            ps.contains("watch-store public-cache"),
            "watch-store not running: {ps}"
        );
        assert!(!ps.contains(&key), "signing key in a process's arguments");
        // (Windows of this run: a missing or empty text must not pass.)
        let places = [
            (
                "the TF_LOG=trace log",
                std::fs::read_to_string(&trace).unwrap(),
                "nixbuild",
            ),
            (
                "a remote command line",
                sd.commands_log()[commands_before..].to_string(),
                "root\t",
            ),
        ];
        for (place, text, sign_of_life) in places {
            assert!(text.contains(sign_of_life), "{place}: nothing of this run");
            assert!(!text.contains(&key), "signing key in {place}");
        }
        assert!(!tf.state_text().contains(&key), "signing key in the state");

        // watch-store signs with it: the stand-in records which key it got.
        let nonce = format!("ws-signed-{}-{}", std::process::id(), version);
        let built = build_on_sd(&nonce, 1, 0).remove(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let info = loop {
            if let Some(info) = narinfo(&built) {
                break info;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{built} not pushed within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        };
        assert!(info.contains("Sig: public-cache-1:"), "not signed:\n{info}");
        let calls = std::fs::read_to_string(sd.field("cachix_log")).unwrap();
        assert!(!calls.contains(&key), "the stand-in logged the key");
        let pushed = calls
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|c| c["pushed"].to_string().contains(&built))
            .expect("watch-store's push of the path is recorded");
        assert_eq!(pushed["CACHIX_SIGNING_KEY_SHA256"], sha256(&key).as_str());

        // A new provider-level key (not in the state) plans an update.
        let rotated = cachix_signing_key(tf.dir.path(), "rotated");
        tf.write(&config(&token, &rotated));
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(plan.contains("the Cachix signing key changed"), "{plan}");
        assert!(!plan.contains(&rotated), "the key in the plan");
        tf.apply();
        tf.assert_no_changes();
        assert!(sd.exec("cat /etc/nixbuild/cachix.env").contains(&rotated));
        assert!(!tf.state_text().contains(&rotated));

        // The write-only form (Terraform >= 1.11): on the host, never in the
        // state; adding it plans an update, a new version rotates it.
        if knows_write_only(&version) {
            let own = cachix_signing_key(tf.dir.path(), "own");
            tf.write(&config(&token, &rotated).replace(
                "watch_store = true",
                &format!(
                    "watch_store = true\n    signing_key_wo = {}\n    signing_key_wo_version = 1",
                    hcl(&own)
                ),
            ));
            let (code, plan) = tf.plan_exit_code();
            assert_eq!(code, 2, "adding signing_key_wo plans nothing: {plan}");
            assert!(!plan.contains(&own), "the key in the plan");
            tf.apply();
            tf.assert_no_changes();
            assert!(sd.exec("cat /etc/nixbuild/cachix.env").contains(&own));
            assert!(
                !tf.state_text().contains(&own),
                "signing_key_wo in the state"
            );
            assert!(!std::fs::read_to_string(&trace).unwrap().contains(&own));
        }

        // Builds, then at once destroy: every path reaches the cache,
        // uploaded by watch-store as it stops. The large ones keep it busy
        // uploading, so the small ones built after them are still in its
        // queue when the destroy stops it.
        let nonce = format!("ws-destroy-{}-{}", std::process::id(), version);
        let mut built = build_on_sd(&format!("{nonce}-large"), 3, 5);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        built.extend(build_on_sd(&format!("{nonce}-small"), 3, 0));
        let not_yet = built.iter().filter(|p| narinfo(p).is_none()).count();
        tf.destroy();
        for path in &built {
            let info =
                narinfo(path).unwrap_or_else(|| panic!("{path} not in the cache after destroy"));
            assert!(info.contains("Sig: public-cache-1:"), "{info}");
        }
        let journal =
            sd.exec("journalctl -u nixbuild-cachix-watch-store -o cat --no-pager | tail -n 40");
        let stop = journal
            .rsplit_once("Stopped watching /nix/store and waiting for queue to empty")
            .unwrap_or_else(|| {
                panic!("watch-store was not stopped gracefully ({not_yet} of 6 not uploaded before destroy):\n{journal}")
            })
            .1;
        assert!(
            stop.contains("Waiting to finish: 1 pushing, 2 in queue"),
            "the small paths were not in watch-store's queue at the stop:\n{journal}"
        );
        assert!(stop.contains("Done."), "{journal}");
        assert_eq!(
            sd.exec("test -e /etc/systemd/system/nixbuild-cachix-watch-store.service && echo left || echo gone"),
            "gone"
        );
    }
}

/// The stand-in's caches file on sd: `down-cache` is a cache whose store
/// refuses every connection (nothing listens on port 9 of loopback).
fn add_down_cache() {
    let root = world().host("sd").field("root");
    let file = std::path::Path::new(&root).join("etc/cachix-standin/caches");
    let caches = std::fs::read_to_string(&file).unwrap();
    if !caches.contains("down-cache ") {
        std::fs::write(&file, format!("{caches}down-cache http://127.0.0.1:9\n")).unwrap();
    }
}

/// With the cache down, watch-store gives up on its queue when it is
/// stopped (as cachix does once its retries are spent): the destroy fails
/// within `timeouts.delete`, names how many paths were queued and keeps the
/// builder; the next destroy, with nothing left to wait for, succeeds.
#[test]
fn destroy_with_the_cache_down_fails_naming_the_queued_paths() {
    let _sd = exclusive("sd");
    let w = world();
    let sd = w.host("sd");
    for version in terraform_versions() {
        sd.reset();
        install_standin();
        add_down_cache();
        let tf = Tf::new(&version);
        let token = format!(
            "nbt-ws-down-{}-{}",
            version.replace('.', ""),
            std::process::id()
        );
        register_token(&token);
        let key = cachix_signing_key(tf.dir.path(), "down-cache-1");
        let public = std::fs::read_to_string(tf.dir.path().join("down-cache-1.pub")).unwrap();
        tf.write(
            &config(&token, &key)
                .replace("\"public-cache\"", "\"down-cache\"")
                .replace(
                    "watch_store = true",
                    &format!(
                        "watch_store = true\n    public_key  = {}",
                        hcl(public.trim())
                    ),
                )
                .replace(
                    "on_destroy = \"clean\"",
                    "on_destroy = \"clean\"\n  timeouts {\n    delete = \"2m\"\n  }",
                ),
        );
        tf.apply();
        tf.assert_no_changes();
        assert!(sd
            .exec("systemctl cat nixbuild-cachix-watch-store")
            .contains("TimeoutStopSec=120"));
        let nonce = format!("ws-down-{}-{}", std::process::id(), version);
        let built = build_on_sd(&nonce, 2, 0);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let started = std::time::Instant::now();
        let text = tf.fails(&["destroy", "-auto-approve", "-no-color"]);
        let took = started.elapsed();
        eprintln!("[timing] watch-store destroy with the cache down ({version}): {took:.1?}");
        assert!(
            took < std::time::Duration::from_secs(150),
            "took {took:?}:\n{text}"
        );
        assert!(
            text.contains("exited without uploading its queue"),
            "{text}"
        );
        assert!(text.contains("2 store paths were still queued"), "{text}");
        assert!(
            text.contains("cachix[0].watch_store") || text.contains("watch_store"),
            "{text}"
        );
        // Kept in the state; the service gave up, so nothing is left to wait for.
        assert!(
            tf.state_text().contains("nixbuild_builder"),
            "the builder left the state"
        );
        tf.destroy();
        for path in &built {
            assert!(
                narinfo(path).is_none(),
                "{path} reached a cache that is down?"
            );
        }
    }
}
