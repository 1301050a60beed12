//! Acceptance tests of `nixbuild_cache_push` on every supported Terraform
//! version: real builds on the test builder h2 (multi-user Nix 2.8), uploads to
//! the world's nginx binary cache, a flake served over git+http by the same
//! nginx, and the Cachix API and CLI stand-ins.
//!
//! Every test copies `tests/fixtures/cache_push/flake` with its own
//! `salt.txt`, so its store paths are its own: tests share one cache without
//! seeing each other's uploads.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{fixture, hcl, provider_config, salt, sh, terraform_versions, world, Tf};
use serde_json::Value;

const BUILDER: &str = "h2";

/// Commit `flake_dir` to git, publish a bare clone under the world's www
/// directory (dumb HTTP: `git update-server-info`), and return the
/// `git+http://…?ref=main&rev=…` reference.
fn publish_git(flake_dir: &Path, name: &str) -> String {
    sh(
        flake_dir,
        "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm fixture",
    );
    let rev = sh(flake_dir, "git rev-parse HEAD");
    let www = world().json["cache"]["www_dir"].as_str().unwrap();
    let bare = Path::new(www).join(format!("{name}.git"));
    let _ = std::fs::remove_dir_all(&bare);
    sh(
        flake_dir,
        &format!(
            "git clone -q --bare . {0} && git -C {0} update-server-info",
            bare.display()
        ),
    );
    format!(
        "git+{}/{name}.git?ref=main&rev={rev}",
        world().json["cache"]["www_url"].as_str().unwrap()
    )
}

fn cache_url() -> String {
    world().json["cache"]["url"].as_str().unwrap().to_string()
}

fn cache_dir() -> PathBuf {
    PathBuf::from(world().json["cache"]["dir"].as_str().unwrap())
}

fn access_log() -> String {
    std::fs::read_to_string(world().json["cache"]["access_log"].as_str().unwrap())
        .unwrap_or_default()
}

fn world_cache(name: &str, field: &str) -> String {
    let value = &world().json["cache"][name][field];
    assert!(
        value.is_string(),
        "world.json has no cache.{name}.{field}: restart the world (make world)"
    );
    value.as_str().unwrap().to_string()
}

/// The world's second public cache (another destination).
fn second_url() -> String {
    world_cache("second", "url")
}

/// The world's third public cache (the "upstream" of `skip_upstream`).
fn upstream_url() -> String {
    world_cache("upstream", "url")
}

fn narinfo_at(cache: &str, path: &str) -> Option<String> {
    std::fs::read_to_string(
        Path::new(&world_cache(cache, "dir")).join(format!("{}.narinfo", hash_of(path))),
    )
    .ok()
}

fn remove_narinfo_at(dir: &Path, path: &str) {
    std::fs::remove_file(dir.join(format!("{}.narinfo", hash_of(path))))
        .unwrap_or_else(|e| panic!("cannot remove the narinfo of {path}: {e}"));
}

/// The closure path whose name is `name` (e.g. `nbt-dep`).
fn named(closure: &[String], name: &str) -> String {
    closure
        .iter()
        .find(|p| p.ends_with(&format!("-{name}")))
        .unwrap_or_else(|| panic!("no {name} in {closure:?}"))
        .clone()
}

fn private_dir() -> PathBuf {
    PathBuf::from(world().json["cache"]["private"]["dir"].as_str().unwrap())
}

fn private_narinfo(path: &str) -> Option<String> {
    std::fs::read_to_string(private_dir().join(format!("{}.narinfo", hash_of(path)))).ok()
}

fn requests_log() -> String {
    std::fs::read_to_string(world().json["cachix_api"]["requests_log"].as_str().unwrap())
        .unwrap_or_default()
}

fn hash_of(path: &str) -> String {
    path.trim_start_matches("/nix/store/")[..32].to_string()
}

fn narinfo(path: &str) -> Option<String> {
    std::fs::read_to_string(cache_dir().join(format!("{}.narinfo", hash_of(path)))).ok()
}

/// A fresh signing key pair made by Nix on the builder: (secret, public).
fn signing_key(name: &str) -> (String, String) {
    let host = world().host(BUILDER);
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("sk"), dir.path().join("pk"));
    host.exec(&format!(
        "nix-store --generate-binary-cache-key {name} {} {}",
        sk.display(),
        pk.display()
    ));
    (
        std::fs::read_to_string(sk).unwrap(),
        std::fs::read_to_string(pk).unwrap(),
    )
}

/// `nix path-info -r` of `paths` on the builder, sorted.
fn builder_closure(paths: &[String]) -> Vec<String> {
    let mut closure: Vec<String> = world()
        .host(BUILDER)
        .exec(&format!("nix-store -qR {}", paths.join(" ")))
        .lines()
        .map(str::to_string)
        .collect();
    closure.sort();
    closure
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// A resource block plus an output with all its computed attributes.
fn push_resource(name: &str, body: &str) -> String {
    format!(
        r#"
resource "nixbuild_cache_push" "{name}" {{
  host = {host}
{body}
}}

output "{name}" {{
  value = {{
    id               = nixbuild_cache_push.{name}.id
    out_paths        = nixbuild_cache_push.{name}.out_paths
    closure_paths    = nixbuild_cache_push.{name}.closure_paths
    closure_nar_size = nixbuild_cache_push.{name}.closure_nar_size
    pushed_paths     = nixbuild_cache_push.{name}.pushed_paths
    missing_paths    = nixbuild_cache_push.{name}.missing_paths
    pushed_by_dest   = nixbuild_cache_push.{name}.pushed_paths_by_destination
    missing_by_dest  = nixbuild_cache_push.{name}.missing_paths_by_destination
    cache_url        = nixbuild_cache_push.{name}.cache_url
    source_hash      = nixbuild_cache_push.{name}.source_hash
    host_key         = nixbuild_cache_push.{name}.host_key
  }}
}}
"#,
        host = hcl(&world().host(BUILDER).address()),
    )
}

fn store_block(secret_key: &str) -> String {
    format!(
        "  store {{\n    uri        = {}\n    secret_key = {}\n  }}\n",
        hcl(&cache_url()),
        hcl(secret_key.trim())
    )
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!("[timing] {label}: {:.1}s", start.elapsed().as_secs_f64());
    out
}

/// Push from a local `source` directory: every out path's narinfo is in the
/// cache, signed by the configured key; `closure_paths` is what Nix on the
/// builder says; `out_paths` follows installable order; the next plan is empty.
#[test]
fn push_from_source_signs_every_path_and_matches_the_closure() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("source", &version));
        let (sk, pk) = signing_key("nbt-source-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "p",
                &format!(
                    "  source       = {}\n  installables = [\"tool\", \"packages.x86_64-linux.app\"]\n{}",
                    hcl(flake.to_str().unwrap()),
                    store_block(&sk)
                )
            )
        ));
        let commands_before = world().host(BUILDER).commands_log().len();
        timed(&format!("source push apply ({version})"), || tf.apply());
        let out = tf.output("p");
        let out_paths = strings(&out["out_paths"]);
        assert_eq!(out_paths.len(), 2, "{out}");
        assert!(
            out_paths[0].ends_with("-nbt-tool"),
            "installable order: {out}"
        );
        assert!(
            out_paths[1].ends_with("-nbt-app"),
            "installable order: {out}"
        );
        for path in &out_paths {
            let info = narinfo(path).unwrap_or_else(|| panic!("no narinfo for {path}"));
            let key_name = pk.split(':').next().unwrap();
            assert!(
                info.lines()
                    .any(|l| l.starts_with(&format!("Sig: {key_name}:"))),
                "{path} is not signed by {key_name}:\n{info}"
            );
        }
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure, builder_closure(&out_paths));
        assert_eq!(closure.len(), 4, "tool, app, lib, dep: {closure:?}");
        // Everything was new (the salt is fresh): all of it was uploaded.
        assert_eq!(out["pushed_paths"], 4, "{out}");
        assert_eq!(out["missing_paths"], 0, "{out}");
        assert_eq!(out["cache_url"], cache_url().as_str());
        let sizes: u64 = closure
            .iter()
            .map(|p| {
                world()
                    .host(BUILDER)
                    .exec(&format!("nix path-info --json {p}"))
                    .split("\"narSize\":")
                    .nth(1)
                    .unwrap()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        assert_eq!(out["closure_nar_size"], sizes, "{out}");
        assert_eq!(out["source_hash"].as_str().unwrap().len(), 64, "{out}");
        assert_eq!(out["host_key"], world().host(BUILDER).host_key().as_str());
        // The signing key never reached the state or a command line.
        let secret_b64 = sk.trim().split(':').nth(1).unwrap();
        let commands = world().host(BUILDER).commands_log();
        let commands = &commands[commands_before.min(commands.len())..];
        assert!(
            commands.contains("root\t"),
            "no command of this push recorded"
        );
        assert!(
            !commands.contains(secret_b64),
            "signing key on a command line"
        );
        // A resource argument is kept in the state (Terraform has no
        // write-only arguments at protocol 6.5; the provider-level key stays
        // out): Terraform must treat it as sensitive. `show -json` reports the
        // schema's sensitivity on every version (1.6 does not record it in
        // the state file's `sensitive_attributes`).
        let shown: Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let resource = &shown["values"]["root_module"]["resources"][0];
        assert_eq!(
            resource["sensitive_values"]["store"][0]["secret_key"], true,
            "secret_key not marked sensitive: {resource}"
        );
        tf.assert_no_changes();
        tf.destroy();
        // Destroy deletes nothing from the cache.
        assert!(narinfo(&out_paths[1]).is_some());
    }
}

/// The same with `flake = "git+http://…?rev=…"`: Nix on the builder fetches the
/// repository from the world's nginx.
#[test]
fn push_from_a_git_http_flake() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("git", &version));
        let repo = format!("nbt-{}", hash_of_text(&flake));
        let reference = publish_git(&flake, &repo);
        let (sk, pk) = signing_key("nbt-git-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "g",
                &format!(
                    "  flake        = {}\n  installables = [\"packages.x86_64-linux.app\"]\n{}",
                    hcl(&reference),
                    store_block(&sk)
                )
            )
        ));
        timed(&format!("git flake push apply ({version})"), || tf.apply());
        let out = tf.output("g");
        let out_paths = strings(&out["out_paths"]);
        assert_eq!(out_paths.len(), 1);
        assert!(out_paths[0].ends_with("-nbt-app"));
        let key_name = pk.split(':').next().unwrap();
        assert!(narinfo(&out_paths[0])
            .unwrap()
            .contains(&format!("Sig: {key_name}:")));
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure, builder_closure(&out_paths));
        assert_eq!(closure.len(), 3, "app, lib, dep: {closure:?}");
        assert_eq!(out["pushed_paths"], 3);
        assert!(out["source_hash"].is_null());
        tf.assert_no_changes();
        tf.destroy();
        let www = world().json["cache"]["www_dir"].as_str().unwrap();
        let _ = std::fs::remove_dir_all(Path::new(www).join(format!("{repo}.git")));
    }
}

/// The fixture's activation package keyed `"dev@workstation"`, as users write
/// it, and one whose quoted name holds a backslash, a space, `${`, `%`, `#`
/// and non-ASCII (Nix's escapes in the installable; HCL's on top).
const HOME_DEV: &str = r#"homeConfigurations."dev@workstation".activationPackage"#;
const HOME_ODD: &str = r#"homeConfigurations."odd\\ \${x}%#✓".activationPackage"#;

/// Every out path has its narinfo in the world's cache, signed by `pk`'s key.
fn assert_signed_in_cache(out_paths: &[String], pk: &str) {
    let key_name = pk.split(':').next().unwrap();
    for path in out_paths {
        let info = narinfo(path).unwrap_or_else(|| panic!("no narinfo for {path}"));
        assert!(
            info.lines()
                .any(|l| l.starts_with(&format!("Sig: {key_name}:"))),
            "{path} is not signed by {key_name}:\n{info}"
        );
    }
}

/// Activation packages under quoted `"user@host"` keys, the artifact of
/// home-manager flakes: from `source` (attribute paths with quoted names,
/// one with every awkward character), then from a full installable
/// (`git+http://…#homeConfigurations."dev@workstation".activationPackage`).
/// Both plan, build, push signed narinfos, and plan nothing afterwards.
#[test]
fn push_activation_packages_keyed_user_at_host() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("home", &version));
        let (sk, pk) = signing_key("nbt-home-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "h",
                &format!(
                    "  source       = {}\n  installables = [{}, {}]\n{}",
                    hcl(flake.to_str().unwrap()),
                    hcl(HOME_DEV),
                    hcl(HOME_ODD),
                    store_block(&sk)
                )
            )
        ));
        timed(
            &format!("activation package from source ({version})"),
            || tf.apply(),
        );
        let out = tf.output("h");
        let out_paths = strings(&out["out_paths"]);
        assert_eq!(out_paths.len(), 2, "{out}");
        assert!(out_paths[0].ends_with("-nbt-hm-dev"), "{out}");
        assert!(out_paths[1].ends_with("-nbt-hm-odd"), "{out}");
        assert_signed_in_cache(&out_paths, &pk);
        // hm-dev, hm-odd, lib, dep.
        assert_eq!(out["pushed_paths"], 4, "{out}");
        tf.assert_no_changes();
        tf.destroy();

        // The same output as a full installable, from a git flake.
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("home-full", &version));
        let repo = format!("nbt-{}", hash_of_text(&flake));
        let reference = publish_git(&flake, &repo);
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "f",
                &format!(
                    "  installables = [{}]\n{}",
                    hcl(&format!("{reference}#{HOME_DEV}")),
                    store_block(&sk)
                )
            )
        ));
        timed(
            &format!("activation package, full installable ({version})"),
            || tf.apply(),
        );
        let out = tf.output("f");
        let out_paths = strings(&out["out_paths"]);
        assert_eq!(out_paths.len(), 1, "{out}");
        assert!(out_paths[0].ends_with("-nbt-hm-dev"), "{out}");
        assert_signed_in_cache(&out_paths, &pk);
        assert_eq!(
            strings(&out["closure_paths"]).len(),
            3,
            "hm-dev, lib, dep: {out}"
        );
        tf.assert_no_changes();
        tf.destroy();
        let www = world().json["cache"]["www_dir"].as_str().unwrap();
        let _ = std::fs::remove_dir_all(Path::new(www).join(format!("{repo}.git")));
    }
}

fn hash_of_text(path: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The cache loses a path (its narinfo is deleted, as garbage collection
/// would): refresh notices, the plan shows a new push, and the apply uploads
/// exactly that one path.
#[test]
fn cache_losing_a_path_plans_a_push_of_only_that_path() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("lost", &version));
        let (sk, _) = signing_key("nbt-lost-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "l",
                &format!(
                    "  source       = {}\n  installables = [\"app\"]\n{}",
                    hcl(flake.to_str().unwrap()),
                    store_block(&sk)
                )
            )
        ));
        tf.apply();
        tf.assert_no_changes();
        let out = tf.output("l");
        assert_eq!(out["pushed_paths"], 3, "{out}");
        let app = strings(&out["out_paths"])[0].clone();
        std::fs::remove_file(cache_dir().join(format!("{}.narinfo", hash_of(&app)))).unwrap();

        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "expected a planned push: {text}");
        assert!(text.contains("update in-place"), "{text}");
        assert!(text.contains("missing_paths"), "{text}");
        assert!(text.contains("pushed_paths"), "{text}");

        timed(&format!("re-push apply ({version})"), || tf.apply());
        let out = tf.output("l");
        assert_eq!(out["pushed_paths"], 1, "only the lost path: {out}");
        assert_eq!(out["missing_paths"], 0);
        assert_eq!(strings(&out["out_paths"]), std::slice::from_ref(&app));
        assert!(narinfo(&app).is_some(), "the path is back");
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// A second resource pushing a closure the cache already holds uploads nothing:
/// `pushed_paths = 0`, and nginx saw no upload of any of its NARs or narinfos.
#[test]
fn fully_cached_closure_uploads_nothing() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("cached", &version));
        let (sk, _) = signing_key("nbt-cached-1");
        let first = push_resource(
            "first",
            &format!(
                "  source       = {}\n  installables = [\"tool\"]\n{}",
                hcl(flake.to_str().unwrap()),
                store_block(&sk)
            ),
        );
        tf.write(&format!("{}{first}", provider_config("")));
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(tf.output("first")["pushed_paths"], 2);

        let second = push_resource(
            "second",
            &format!(
                "  source       = {}\n  installables = [\"packages.x86_64-linux.tool\"]\n{}",
                hcl(flake.to_str().unwrap()),
                store_block(&sk)
            ),
        );
        tf.write(&format!("{}{first}{second}", provider_config("")));
        let log_before = access_log().len();
        timed(&format!("fully cached push apply ({version})"), || {
            tf.apply()
        });
        let window = access_log()[log_before..].to_string();
        let out = tf.output("second");
        assert_eq!(out["pushed_paths"], 0, "{out}");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 2);
        for path in &closure {
            let info = narinfo(path).unwrap();
            let nar_url = info
                .lines()
                .find_map(|l| l.strip_prefix("URL: "))
                .unwrap()
                .to_string();
            assert!(
                !window.contains(&format!("PUT /{nar_url}")),
                "the NAR of {path} was uploaded again:\n{window}"
            );
            assert!(
                !window.contains(&format!("PUT /{}.narinfo", hash_of(path))),
                "the narinfo of {path} was uploaded again:\n{window}"
            );
            // The provider did ask for it.
            assert!(window.contains(&format!("HEAD /{}.narinfo", hash_of(path))));
        }
        eprintln!(
            "[nar-uploads] PUT /nar lines during the cached apply ({version}), any test: {}",
            window.matches("\"PUT /nar/").count()
        );
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// Changing one file of `source` plans a new push in place (the pinned host
/// key stays) with a new `source_hash`.
#[test]
fn source_change_plans_a_push_in_place() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("change", &version));
        let (sk, _) = signing_key("nbt-change-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "c",
                &format!(
                    "  source       = {}\n  installables = [\"app\"]\n{}",
                    hcl(flake.to_str().unwrap()),
                    store_block(&sk)
                )
            )
        ));
        tf.apply();
        tf.assert_no_changes();
        let before = tf.output("c");
        std::fs::write(flake.join("message.txt"), "a changed message\n").unwrap();
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("update in-place"), "{text}");
        assert!(!text.contains("must be replaced"), "{text}");
        assert!(text.contains("source_hash"), "{text}");
        tf.apply();
        let after = tf.output("c");
        assert_ne!(after["source_hash"], before["source_hash"]);
        assert_ne!(after["out_paths"], before["out_paths"]);
        // Only the changed app was new; lib and dep were cached.
        assert_eq!(after["pushed_paths"], 1, "{after}");
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// A failing derivation fails the apply with the end of its build log; the
/// push stays in the state only as a tainted object holding the builder's pin.
#[test]
fn build_failure_shows_the_log_tail_and_keeps_only_the_pin() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("broken", &version));
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "b",
                &format!(
                    "  source       = {}\n  installables = [\"broken\"]\n  store {{\n    uri = {}\n  }}\n",
                    hcl(flake.to_str().unwrap()),
                    hcl(&cache_url())
                )
            )
        ));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(text.contains("Build failed"), "{text}");
        assert!(
            text.contains("nbt: deliberate failure for the test"),
            "{text}"
        );
        assert!(text.contains("nbt build log line 30"), "{text}");
        assert!(text.contains("nixbuild_cache_push.b"), "{text}");
        assert_failed_push_kept(&tf, "nixbuild_cache_push.b");
    }
}

/// A push that failed after connecting is in the state, tainted, with the
/// builder's pinned key and nothing claimed as pushed; destroy forgets it.
fn assert_failed_push_kept(tf: &Tf, address: &str) {
    let state: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let resource = resources
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} is not in the state: {state}"));
    assert_eq!(resource["tainted"], true, "{state}");
    let key = resource["values"]["host_key"].as_str().unwrap_or_default();
    assert!(key.starts_with("ssh-"), "no pinned key: {state}");
    assert!(resource["values"]["out_paths"].is_null(), "{state}");
    assert!(resource["values"]["pushed_paths"].is_null(), "{state}");
    tf.destroy();
}

/// Ten pushes on one builder at once all succeed.
#[test]
fn ten_parallel_pushes_on_one_builder() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("parallel", &version));
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_cache_push" "par" {{
  count        = 10
  host         = {host}
  source       = {src}
  installables = ["par${{count.index}}"]
  store {{
    uri = {uri}
  }}
}}

output "out_paths" {{
  value = [for p in nixbuild_cache_push.par : p.out_paths[0]]
}}
output "pushed" {{
  value = [for p in nixbuild_cache_push.par : p.pushed_paths]
}}
"#,
            provider = provider_config(""),
            host = hcl(&world().host(BUILDER).address()),
            src = hcl(flake.to_str().unwrap()),
            uri = hcl(&cache_url()),
        ));
        timed(&format!("10 parallel pushes ({version})"), || {
            tf.ok(&["apply", "-auto-approve", "-no-color", "-parallelism=10"])
        });
        let paths = strings(&tf.output("out_paths"));
        assert_eq!(paths.len(), 10);
        for (i, p) in paths.iter().enumerate() {
            assert!(p.ends_with(&format!("-nbt-par{i}")), "{p}");
            assert!(narinfo(p).is_some(), "{p} not in the cache");
        }
        for n in tf.output("pushed").as_array().unwrap() {
            assert!(n.as_i64().unwrap() >= 1, "{n}");
        }
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// An unreachable cache during refresh is a warning: the plan succeeds and the
/// state is kept.
#[test]
fn unreachable_cache_during_refresh_is_a_warning() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("unreachable", &version));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        drop(listener);
        let config = |public_url: &str| {
            format!(
                "{}{}",
                provider_config(""),
                push_resource(
                    "u",
                    &format!(
                        "  source       = {}\n  installables = [\"tool\"]\n  store {{\n    uri        = {}\n    public_url = {}\n  }}\n",
                        hcl(flake.to_str().unwrap()),
                        hcl(&cache_url()),
                        hcl(public_url)
                    )
                )
            )
        };
        tf.write(&config(&cache_url()));
        tf.apply();
        tf.assert_no_changes();
        // Presence is now checked at a port nobody listens on.
        tf.write(&config(&dead));
        tf.apply();
        assert_eq!(tf.output("u")["cache_url"], dead.as_str());
        let out = tf.run(&["plan", "-detailed-exitcode", "-no-color"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("Cannot check the binary cache"), "{text}");
        assert!(tf.ok(&["state", "list"]).contains("nixbuild_cache_push.u"));
        tf.destroy();
    }
}

/// Push to the Cachix stand-ins: the CLI on the builder gets the cache name and
/// the missing paths on stdin, the token only in its environment. The token is
/// not in its argv, not in a TF_LOG=trace log, not in the host's recorded
/// command lines, not in the state.
#[test]
fn cachix_push_keeps_the_token_out_of_argv_logs_and_commands() {
    let w = world();
    let api = &w.json["cachix_api"];
    assert!(
        api.is_object(),
        "world.json has no cachix_api: restart the world (make world)"
    );
    let token = api["token"].as_str().unwrap().to_string();
    let host = w.host(BUILDER);
    let cachix_log_path = host.json["cachix_log"].as_str().unwrap().to_string();
    for version in terraform_versions() {
        let mut tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("cachix", &version));
        let trace = tf.dir.path().join("trace.log");
        tf.env("CACHIX_AUTH_TOKEN", &token)
            .env("TF_LOG", "trace")
            .env("TF_LOG_PATH", trace.to_str().unwrap());
        tf.write(&format!(
            "{}{}",
            provider_config(&format!(
                "cachix {{\n    api_url = {}\n  }}",
                hcl(api["url"].as_str().unwrap())
            )),
            push_resource(
                "x",
                &format!(
                    "  source       = {}\n  installables = [\"app\"]\n  cachix {{\n    cache = \"private-cache\"\n  }}\n",
                    hcl(flake.to_str().unwrap())
                )
            )
        ));
        let commands_before = host.commands_log().len();
        let calls_before = std::fs::read_to_string(&cachix_log_path)
            .unwrap_or_default()
            .len();
        timed(&format!("cachix push apply ({version})"), || tf.apply());
        let out = tf.output("x");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 3);
        assert_eq!(out["pushed_paths"], 3, "{out}");
        assert_eq!(
            out["cache_url"],
            api["caches"]["private-cache"]["uri"].as_str().unwrap()
        );

        // What the cachix stand-in saw.
        let calls = std::fs::read_to_string(&cachix_log_path).unwrap()[calls_before..].to_string();
        let pushes: Vec<Value> = calls
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|c| c["argv"][1] == "push" && c["argv"][2] == "private-cache")
            .collect();
        assert_eq!(pushes.len(), 1, "{calls}");
        let call = &pushes[0];
        assert_eq!(
            call["argv"].as_array().unwrap().len(),
            3,
            "paths on stdin, not argv: {call}"
        );
        let mut stdin = strings(&call["stdin"]);
        stdin.retain(|l| !l.is_empty());
        stdin.sort();
        assert_eq!(stdin, closure, "missing paths on stdin");
        assert_eq!(
            call["CACHIX_AUTH_TOKEN"],
            token.as_str(),
            "token in the environment"
        );
        assert!(!call["argv"].to_string().contains(&token));
        // The paths really reached the private cache (and only that one).
        for p in &closure {
            assert!(private_narinfo(p).is_some(), "{p}");
            assert!(narinfo(p).is_none(), "{p} in the public cache");
        }

        let commands = host.commands_log()[commands_before..].to_string();
        assert!(commands.contains("cachix"), "the push ran on {BUILDER}");
        assert!(!commands.contains(&token), "token in a remote command line");
        // Issue 28: the credentials came on the push's stdin. Before, they
        // were uploaded to a file by one command and removed by the next,
        // so an interruption in between left them on the builder.
        assert!(
            !commands.contains("secrets/cachix-"),
            "a Cachix credentials file was written on the builder"
        );
        let trace_text = std::fs::read_to_string(&trace).unwrap();
        assert!(trace_text.len() > 1000, "TF_LOG=trace produced no log");
        assert!(
            !trace_text.contains(&token),
            "token in the TF_LOG=trace log"
        );
        assert!(!tf.state_text().contains(&token), "token in the state");

        // The API was asked with the token (as a bearer), which was never logged.
        let requests = std::fs::read_to_string(api["requests_log"].as_str().unwrap()).unwrap();
        assert!(requests.contains("/api/v1/cache/private-cache/narinfo"));

        // The refresh asks the Cachix API through its batch endpoint: one
        // request with every closure hash, the token as a bearer; no narinfo
        // is fetched one by one from the cache itself.
        let before = requests_log().len();
        tf.assert_no_changes();
        let window: Vec<Value> = requests_log()[before..]
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        let hashes: Vec<String> = closure.iter().map(|p| hash_of(p)).collect();
        let batches: Vec<&Value> = window
            .iter()
            .filter(|r| {
                r["method"] == "POST"
                    && r["path"] == "/api/v1/cache/private-cache/narinfo"
                    && r["body"]
                        .as_array()
                        .is_some_and(|b| b.iter().any(|h| hashes.iter().any(|x| h == x.as_str())))
            })
            .collect();
        assert_eq!(
            batches.len(),
            1,
            "one batch request per refresh: {window:?}"
        );
        let mut asked = strings(&batches[0]["body"]);
        asked.sort();
        let mut want = hashes.clone();
        want.sort();
        assert_eq!(asked, want, "the whole closure in the batch");
        assert_eq!(batches[0]["status"], 200, "{:?}", batches[0]);
        assert_eq!(batches[0]["auth_present"], true, "{:?}", batches[0]);
        let one_by_one = window
            .iter()
            .filter(|r| {
                r["method"] == "AUTH"
                    && hashes
                        .iter()
                        .any(|h| r["path"].as_str().unwrap_or("").contains(h.as_str()))
            })
            .count();
        assert_eq!(one_by_one, 0, "narinfos fetched one by one: {window:?}");
        // The stand-in refuses what the real API refuses: a body that is not JSON.
        let refused = sh(
            tf.dir.path(),
            &format!(
                "curl -s -o /dev/null -w '%{{http_code}}' -X POST -H 'Content-Type: text/plain' -d '[]' {}/cache/public-cache/narinfo",
                api["url"].as_str().unwrap()
            ),
        );
        assert_eq!(refused, "415");

        // The private cache loses a dependency: the batch refresh sees it.
        let lost = named(&closure, "nbt-lib");
        std::fs::remove_file(private_dir().join(format!("{}.narinfo", hash_of(&lost)))).unwrap();
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "a lost dependency plans a push: {text}");
        tf.apply();
        assert_eq!(tf.output("x")["pushed_paths"], 1);
        tf.assert_no_changes();
        assert!(private_narinfo(&lost).is_some(), "{lost} pushed again");
        // Second push of the same closure: Cachix has it all, cachix is not run.
        tf.destroy();
        let calls_before = std::fs::read_to_string(&cachix_log_path)
            .unwrap_or_default()
            .len();
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(tf.output("x")["pushed_paths"], 0);
        let calls = std::fs::read_to_string(&cachix_log_path).unwrap()[calls_before..].to_string();
        assert!(
            !calls.contains("\"push\""),
            "cachix push ran again: {calls}"
        );
        tf.destroy();
    }
}

/// Bad inputs fail `terraform plan` with an error pointing at the attribute.
#[test]
fn bad_inputs_fail_the_plan_with_attribute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let flake = fixture(dir.path(), "bad-inputs");
    let src = hcl(flake.to_str().unwrap());
    let uri = hcl(&cache_url());
    let store = format!("store {{\n    uri = {uri}\n  }}");
    // (name, body, error summary, text of the line Terraform must point at)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        // Nothing to point at but the resource itself.
        ("no_destination", format!("source = {src}\n  installables = [\"app\"]"), "No destination", "resource \"nixbuild_cache_push\" \"no_destination\""),
        // Destinations and filters (several destinations, exclude, skip_upstream).
        ("duplicate_store", format!("source = {src}\n  installables = [\"app\"]\n  {store}\n  store {{\n    uri = \"{}/\"\n  }}", cache_url()), "Duplicate destination", "uri = \"http://127.0.0.1:"),
        ("bad_second_store_uri", format!("source = {src}\n  installables = [\"app\"]\n  {store}\n  store {{\n    uri = \"ftp://second.example.com\"\n  }}"), "Invalid store URI", "uri = \"ftp://second.example.com\""),
        ("bad_second_secret_key", format!("source = {src}\n  installables = [\"app\"]\n  {store}\n  store {{\n    uri = \"file:///tmp/c\"\n    secret_key = \"k:short\"\n  }}"), "Invalid secret_key", "secret_key = \"k:short\""),
        ("unclosed_regex", format!("source = {src}\n  installables = [\"app\"]\n  exclude = [\"(\"]\n  {store}"), "Invalid exclude pattern", "exclude = [\"(\"]"),
        ("empty_regex", format!("source = {src}\n  installables = [\"app\"]\n  exclude = [\"\"]\n  {store}"), "Invalid exclude pattern", "exclude = [\"\"]"),
        ("lookahead_regex", format!("source = {src}\n  installables = [\"app\"]\n  exclude = [\"^(?!glibc)\"]\n  {store}"), "Invalid exclude pattern", "exclude = [\"^(?!glibc)\"]"),
        ("duplicate_regex", format!("source = {src}\n  installables = [\"app\"]\n  exclude = [\"-doc$\", \"-doc$\"]\n  {store}"), "Duplicate exclude pattern", "exclude = [\"-doc$\""),
        ("s3_upstream", format!("source = {src}\n  installables = [\"app\"]\n  skip_upstream = [\"s3://nix-cache\"]\n  {store}"), "Invalid skip_upstream URL", "skip_upstream = [\"s3://nix-cache\"]"),
        ("upstream_with_params", format!("source = {src}\n  installables = [\"app\"]\n  skip_upstream = [\"https://cache.example.com?priority=10\"]\n  {store}"), "Invalid skip_upstream URL", "skip_upstream = [\"https://cache.example.com?priority=10\"]"),
        ("upstream_is_destination", format!("source = {src}\n  installables = [\"app\"]\n  skip_upstream = [{uri}]\n  {store}"), "Destination used as upstream", "skip_upstream = ["),
        ("duplicate_upstream", format!("source = {src}\n  installables = [\"app\"]\n  skip_upstream = [\"https://cache.example.com\", \"https://cache.example.com/\"]\n  {store}"), "Duplicate skip_upstream URL", "skip_upstream = [\"https://cache.example.com\""),
        ("bad_scheme", format!("source = {src}\n  installables = [\"app\"]\n  store {{\n    uri = \"ftp://cache.example.com\"\n  }}"), "Invalid store URI", "uri = \"ftp://cache.example.com\""),
        ("newline_installable", format!("source = {src}\n  installables = [\"app\\nrm -rf /\"]\n  {store}"), "Invalid installable", "installables = ["),
        ("missing_source", format!("source = \"/nonexistent/nbt-flake\"\n  installables = [\"app\"]\n  {store}"), "Invalid source directory", "source = \"/nonexistent/nbt-flake\""),
        ("flake_and_source", format!("source = {src}\n  flake = \"git+http://127.0.0.1:8750/www/x.git\"\n  installables = [\"app\"]\n  {store}"), "Both flake and source are set", "flake = \"git+http"),
        ("unclosed_quote_installable", format!("source = {src}\n  installables = [\"homeConfigurations.\\\"dev@workstation.activationPackage\"]\n  {store}"), "Invalid installable", "installables = [\"homeConfigurations."),
        ("dot_hash_installable", format!("source = {src}\n  installables = [\".#app\"]\n  {store}"), "Invalid installable", "installables = [\".#app\"]"),
        ("empty_installables", format!("source = {src}\n  installables = []\n  {store}"), "No installables", "installables = []"),
        ("bad_public_url", format!("source = {src}\n  installables = [\"app\"]\n  store {{\n    uri = \"file:///tmp/c\"\n    public_url = \"s3://bucket\"\n  }}"), "Invalid public_url", "public_url = \"s3://bucket\""),
        ("bad_secret_key", format!("source = {src}\n  installables = [\"app\"]\n  store {{\n    uri = {uri}\n    secret_key = \"not-a-key\"\n  }}"), "Invalid secret_key", "secret_key = \"not-a-key\""),
        ("bad_cachix_name", format!("source = {src}\n  installables = [\"app\"]\n  cachix {{\n    cache = \"Not A Cache\"\n  }}"), "Invalid Cachix cache name", "cache = \"Not A Cache\""),
        ("bad_timeout", format!("source = {src}\n  installables = [\"app\"]\n  {store}\n  timeouts {{\n    create = \"soon\"\n  }}"), "Invalid timeout", "create = \"soon\""),
        ("flake_with_fragment", format!("flake = \"github:o/r#app\"\n  installables = [\"app\"]\n  {store}"), "Invalid flake reference", "flake = \"github:o/r#app\""),
        ("reserved_build_arg", format!("source = {src}\n  installables = [\"app\"]\n  build_args = [\"--out-link\", \"x\"]\n  {store}"), "Invalid build argument", "build_args = ["),
        ("source_is_a_file", format!("source = {}\n  installables = [\"app\"]\n  {store}", hcl(flake.join("flake.nix").to_str().unwrap())), "Invalid source directory", "source = "),
    ];
    // Every connection would pass this proxy (in front of h2): it counts them.
    let proxy = common::Proxy::start(&format!("{}:22", world().host(BUILDER).address()));
    let mut config = provider_config("");
    for (name, body, _, _) in &cases {
        config.push_str(&format!(
            "\nresource \"nixbuild_cache_push\" \"{name}\" {{\n  host = \"127.0.0.1\"\n  ssh {{\n    port = {}\n  }}\n  {body}\n}}\n",
            proxy.port
        ));
    }
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&config);
        let text = tf.fails(&["plan", "-no-color"]);
        let blocks = common::error_blocks(&text);
        if std::env::var_os("NBT_SHOW").is_some() {
            eprintln!("{text}");
        }
        for (name, _, summary, line) in &cases {
            let block = blocks
                .iter()
                .find(|b| {
                    b.contains(&format!("nixbuild_cache_push.{name},")) && b.starts_with(summary)
                })
                .unwrap_or_else(|| panic!("no `{summary}` error for {name} ({version}):\n{text}"));
            assert!(
                block.contains(line),
                "{name}: the error does not point at `{line}` ({version}):\n{block}"
            );
        }
        // Nothing ran on the builder: validation happens before any connection.
        assert_eq!(
            proxy.connection_count(),
            0,
            "a connection was made:\n{text}"
        );
    }
}

/// A Cachix push with no credentials anywhere (resource, provider,
/// environment, the builder's cachix config) fails the apply with an error
/// that says what to set, as the real cachix refuses; nothing is uploaded.
#[test]
fn cachix_push_without_credentials_fails_clearly() {
    let w = world();
    let api = &w.json["cachix_api"];
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("nocreds", &version));
        tf.write(&format!(
            "{}{}",
            provider_config(&format!(
                "cachix {{\n    api_url = {}\n  }}",
                hcl(api["url"].as_str().unwrap())
            )),
            push_resource(
                "n",
                &format!(
                    "  source       = {}\n  installables = [\"tool\"]\n  cachix {{\n    cache = \"public-cache\"\n  }}\n",
                    hcl(flake.to_str().unwrap())
                )
            )
        ));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("cachix push failed"), "{text}");
        assert!(
            flat.contains("no Cachix credentials for cache public-cache"),
            "{text}"
        );
        assert!(flat.contains("cachix.auth_token"), "{text}");
        assert_failed_push_kept(&tf, "nixbuild_cache_push.n");
    }
}

/// A `store` push to the private cache: the builder uploads with its own
/// netrc, and the refresh reads `netrc_file` and checks with basic auth; with
/// a wrong password the refresh warns and keeps the state.
#[test]
fn private_store_refresh_uses_the_netrc_file() {
    let w = world();
    let private = w.json["cache"]["private"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = w.json["cachix_api"]["token"].as_str().unwrap().to_string();
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("netrc", &version));
        let netrc = tf.dir.path().join("netrc");
        std::fs::write(
            &netrc,
            format!("machine 127.0.0.1 login ci password {token}\n"),
        )
        .unwrap();
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "s",
                &format!(
                    "  source       = {}\n  installables = [\"tool\"]\n  store {{\n    uri        = {}\n    netrc_file = {}\n  }}\n",
                    hcl(flake.to_str().unwrap()),
                    hcl(&private),
                    hcl(netrc.to_str().unwrap())
                )
            )
        ));
        tf.apply();
        let out = tf.output("s");
        for p in strings(&out["closure_paths"]) {
            assert!(
                private_narinfo(&p).is_some(),
                "{p} not in the private cache"
            );
        }
        let before = requests_log().len();
        tf.assert_no_changes();
        let window = requests_log()[before..].to_string();
        assert!(
            window.contains("\"scheme\": \"Basic\"") && window.contains("\"status\": 200"),
            "the refresh did not use basic auth: {window}"
        );
        // A wrong password: 401 is a warning, the state is kept.
        std::fs::write(&netrc, "machine 127.0.0.1 login ci password wrong\n").unwrap();
        let out = tf.run(&["plan", "-detailed-exitcode", "-no-color"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("Cannot check the binary cache"), "{text}");
        tf.destroy();
    }
}

/// The issue's case: a 3-path closure (app -> lib -> dep) is pushed, then the
/// cache loses the dependency `lib` (not an out path). The refresh checks the
/// whole closure: the plan shows `missing_paths = 1` and a push, and the
/// apply uploads exactly that path.
#[test]
fn cache_losing_a_dependency_plans_a_push_of_only_that_path() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("lostdep", &version));
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "d",
                &format!(
                    "  source       = {}\n  installables = [\"app\"]\n  store {{\n    uri = {}\n  }}\n",
                    hcl(flake.to_str().unwrap()),
                    hcl(&cache_url())
                )
            )
        ));
        tf.apply();
        tf.assert_no_changes();
        let out = tf.output("d");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 3, "{out}");
        let lib = named(&closure, "nbt-lib");
        remove_narinfo_at(&cache_dir(), &lib);

        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "a lost dependency must plan a push: {text}");
        assert!(text.contains("update in-place"), "{text}");
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("missing_paths = 1 -> 0"),
            "the plan shows the count: {text}"
        );

        let log_before = access_log().len();
        tf.apply();
        let window = access_log()[log_before..].to_string();
        let out = tf.output("d");
        assert_eq!(out["pushed_paths"], 1, "only the lost dependency: {out}");
        assert_eq!(out["pushed_by_dest"][cache_url().as_str()], 1, "{out}");
        assert!(narinfo(&lib).is_some(), "{lib} is back");
        // Other tests share the cache: only this closure's uploads count.
        let puts: Vec<&str> = window
            .lines()
            .filter(|l| l.contains("\"PUT /") && l.contains(".narinfo"))
            .filter(|l| closure.iter().any(|p| l.contains(&hash_of(p))))
            .collect();
        assert_eq!(puts.len(), 1, "exactly one narinfo uploaded: {puts:?}");
        assert!(puts[0].contains(&hash_of(&lib)), "{puts:?}");
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// Two destinations, the second already holding part of the closure: each
/// gets only what it lacks, `pushed_paths_by_destination` says how many,
/// both end complete, and a loss at the second one alone is noticed.
#[test]
fn two_destinations_each_get_only_what_they_lack() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("twodest", &version));
        let src = hcl(flake.to_str().unwrap());
        // `tool` (tool -> dep) goes to the second cache first: it then holds dep.
        let seed = push_resource(
            "seed",
            &format!(
                "  source       = {src}\n  installables = [\"tool\"]\n  store {{\n    uri = {}\n  }}\n",
                hcl(&second_url())
            ),
        );
        let both = push_resource(
            "both",
            &format!(
                "  depends_on   = [nixbuild_cache_push.seed]\n  source       = {src}\n  installables = [\"app\"]\n  store {{\n    uri = {}\n  }}\n  store {{\n    uri = {}\n  }}\n",
                hcl(&cache_url()),
                hcl(&second_url())
            ),
        );
        tf.write(&format!("{}{seed}{both}", provider_config("")));
        tf.apply();
        let out = tf.output("both");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 3, "app, lib, dep: {out}");
        assert_eq!(out["pushed_by_dest"][cache_url().as_str()], 3, "{out}");
        assert_eq!(
            out["pushed_by_dest"][second_url().as_str()],
            2,
            "the second cache had dep already: {out}"
        );
        assert_eq!(out["pushed_paths"], 5, "{out}");
        for p in &closure {
            assert!(narinfo(p).is_some(), "{p} not in the first cache");
            assert!(
                narinfo_at("second", p).is_some(),
                "{p} not in the second cache"
            );
        }
        assert_eq!(
            out["cache_url"],
            cache_url().as_str(),
            "the first destination's"
        );
        tf.assert_no_changes();

        // The second cache loses app: only it is re-pushed, only there.
        let app = named(&closure, "nbt-app");
        remove_narinfo_at(Path::new(&world_cache("second", "dir")), &app);
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "{text}");
        tf.apply();
        let out = tf.output("both");
        assert_eq!(out["pushed_by_dest"][cache_url().as_str()], 0, "{out}");
        assert_eq!(out["pushed_by_dest"][second_url().as_str()], 1, "{out}");
        assert!(narinfo_at("second", &app).is_some());
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// `skip_upstream`: upstream serves `tool` and its dependency `dep`; a push
/// of `app` (app -> lib -> dep) and `tool` leaves `tool` out, but uploads
/// `dep`, which `lib` needs (a binary cache must hold every reference of a
/// path it holds; Nix refuses the upload otherwise). Once upstream loses
/// `tool`, the plan shows a push, which uploads it.
#[test]
fn skip_upstream_skips_what_upstream_serves_until_it_is_gone() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("upstream", &version));
        let src = hcl(flake.to_str().unwrap());
        // Upstream serves tool and dep (pushed there by a first resource).
        let seed = push_resource(
            "seed",
            &format!(
                "  source       = {src}\n  installables = [\"tool\"]\n  store {{\n    uri = {}\n  }}\n",
                hcl(&upstream_url())
            ),
        );
        let main = |depends_on: &str| {
            push_resource(
                "main",
                &format!(
                    "{depends_on}  source        = {src}\n  installables  = [\"app\", \"tool\"]\n  skip_upstream = [{}]\n  store {{\n    uri = {}\n  }}\n",
                    hcl(&format!("{}/", upstream_url())),
                    hcl(&cache_url())
                ),
            )
        };
        tf.write(&format!(
            "{}{seed}{}",
            provider_config(""),
            main("  depends_on    = [nixbuild_cache_push.seed]\n")
        ));
        tf.apply();
        let out = tf.output("main");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 4, "app, lib, dep, tool: {out}");
        let (app, lib, dep, tool) = (
            named(&closure, "nbt-app"),
            named(&closure, "nbt-lib"),
            named(&closure, "nbt-dep"),
            named(&closure, "nbt-tool"),
        );
        assert!(narinfo_at("upstream", &tool).is_some() && narinfo_at("upstream", &dep).is_some());
        assert_eq!(out["pushed_paths"], 3, "app, lib and dep: {out}");
        assert!(
            narinfo(&tool).is_none(),
            "tool is served upstream: not uploaded"
        );
        for p in [&app, &lib, &dep] {
            assert!(narinfo(p).is_some(), "{p} must be uploaded");
        }
        tf.assert_no_changes();
        // Without the seed (forgetting it deletes nothing), so that nothing
        // pushes tool upstream again.
        tf.write(&format!("{}{}", provider_config(""), main("")));
        tf.apply();
        tf.assert_no_changes();

        remove_narinfo_at(Path::new(&world_cache("upstream", "dir")), &tool);
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "upstream lost tool: {text}");
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("missing_paths = 1 -> 0"), "{text}");
        tf.apply();
        let out = tf.output("main");
        assert_eq!(out["pushed_paths"], 1, "tool now: {out}");
        assert!(
            narinfo(&tool).is_some(),
            "tool uploaded once upstream lost it"
        );
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// `skip_upstream` naming a cache nobody answers at (a loopback port nothing
/// listens on): the push uploads the whole closure, as without the filter,
/// and says so in a warning naming the URL. A refresh asks the upstream only
/// when a destination lacks something: then it warns, naming the URL, and
/// keeps the count (an outage upstream plans no uploads). Dropping the
/// unreachable upstream plans a push of exactly what the destination lacks.
#[test]
fn skip_upstream_that_cannot_be_reached_uploads_everything_with_a_warning() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("dead-upstream", &version));
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
        };
        assert!(
            std::net::TcpStream::connect(dead.trim_start_matches("http://")).is_err(),
            "something listens at {dead}"
        );
        let config = |skip_upstream: &str| {
            format!(
                "{}{}",
                provider_config(""),
                push_resource(
                    "d",
                    &format!(
                        "  source        = {}\n  installables  = [\"app\"]\n  skip_upstream = [{skip_upstream}]\n  store {{\n    uri = {}\n  }}\n",
                        hcl(flake.to_str().unwrap()),
                        hcl(&cache_url())
                    )
                )
            )
        };
        let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        tf.write(&config(&hcl(&dead)));
        let applied = flat(&tf.apply());
        assert!(
            applied.contains("Warning: Cannot ask the skip_upstream caches"),
            "{applied}"
        );
        assert!(
            applied.contains(&dead),
            "the warning names {dead}: {applied}"
        );
        assert!(applied.contains("counted as serving nothing"), "{applied}");
        let out = tf.output("d");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(closure.len(), 3, "app, lib, dep: {out}");
        assert_eq!(out["pushed_paths"], 3, "everything is uploaded: {out}");
        for p in &closure {
            assert!(narinfo(p).is_some(), "{p} must be uploaded");
        }
        // The destination holds everything: the refresh needs no upstream.
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 0, "expected an empty plan: {text}");
        assert!(!text.contains("Warning: Cannot"), "{text}");

        // The destination loses dep while the upstream is still unreachable:
        // a warning naming it, pointing at skip_upstream; nothing planned.
        let dep = named(&closure, "nbt-dep");
        remove_narinfo_at(&cache_dir(), &dep);
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 0, "an unreachable upstream plans nothing: {text}");
        let text = flat(&text);
        assert!(
            text.contains("Warning: Cannot check the binary cache"),
            "{text}"
        );
        assert!(text.contains(&dead), "the warning names {dead}: {text}");
        assert!(
            text.contains("skip_upstream = ["),
            "points at skip_upstream: {text}"
        );

        // Without it, the push uploads exactly what the destination lacks.
        tf.write(&config(""));
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "changed filters plan a push: {text}");
        tf.apply();
        let out = tf.output("d");
        assert_eq!(out["pushed_paths"], 1, "dep only: {out}");
        assert!(narinfo(&dep).is_some());
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// `exclude` on a 3-path closure app -> lib -> dep with `app` and `dep`
/// excluded: `app` is left out (nothing needs it), `dep` is uploaded anyway
/// (`lib` needs it), the refresh does not require `app` and does require
/// `dep`.
#[test]
fn exclude_leaves_out_only_what_no_kept_path_needs() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("exclude", &version));
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "e",
                &format!(
                    "  source       = {}\n  installables = [\"app\"]\n  exclude      = [\"^nbt-app$\", \"^nbt-dep$\"]\n  store {{\n    uri = {}\n  }}\n",
                    hcl(flake.to_str().unwrap()),
                    hcl(&cache_url())
                )
            )
        ));
        tf.apply();
        let out = tf.output("e");
        let closure = strings(&out["closure_paths"]);
        assert_eq!(
            closure.len(),
            3,
            "closure_paths is the whole closure: {out}"
        );
        let (app, lib, dep) = (
            named(&closure, "nbt-app"),
            named(&closure, "nbt-lib"),
            named(&closure, "nbt-dep"),
        );
        assert_eq!(out["pushed_paths"], 2, "{out}");
        assert!(
            narinfo(&app).is_none(),
            "app is excluded and nothing needs it"
        );
        assert!(narinfo(&lib).is_some());
        assert!(narinfo(&dep).is_some(), "dep is excluded but lib needs it");
        tf.assert_no_changes();

        remove_narinfo_at(&cache_dir(), &dep);
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "dep is required: {text}");
        tf.apply();
        assert_eq!(tf.output("e")["pushed_paths"], 1);
        assert!(narinfo(&dep).is_some());
        assert!(narinfo(&app).is_none());
        tf.assert_no_changes();
        tf.destroy();
    }
}

// ---------------------------------------------------------------------------
// Evaluation at plan time (issue 27).

/// `terraform plan -out` and the saved plan as `show -json`.
fn saved_plan(tf: &Tf) -> Value {
    tf.ok(&["plan", "-out=tfplan", "-no-color"]);
    serde_json::from_str(&tf.ok(&["show", "-json", "tfplan"])).unwrap()
}

/// The planned change of the only resource in a saved plan.
fn planned_change(plan: &Value) -> &Value {
    let changes = plan["resource_changes"].as_array().unwrap();
    let change = changes
        .iter()
        .find(|c| c["mode"] == "managed")
        .unwrap_or_else(|| panic!("no managed change in {plan}"));
    &change["change"]
}

/// Remote commands of this test on the builder since `before`: those that
/// name `needle` (the test's source hash or repository).
fn commands_naming(before: usize, needle: &str) -> Vec<String> {
    let log = world().host(BUILDER).commands_log();
    log[before.min(log.len())..]
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Requests that uploaded (PUT) any of `paths` to the world's cache.
fn uploads_of(access_before: usize, paths: &[String]) -> Vec<String> {
    let log = access_log();
    log[access_before.min(log.len())..]
        .lines()
        .filter(|l| l.contains("PUT"))
        .filter(|l| paths.iter().any(|p| l.contains(&hash_of(p))))
        .map(str::to_string)
        .collect()
}

/// A working directory with one push `e` of the fixture's `app` from
/// `source`, with the builder's key in `ssh.host_key` (so even the first
/// plan can evaluate), and `extra` arguments.
fn pinned_source_push(name: &str, version: &str, extra: &str) -> (Tf, PathBuf) {
    let tf = Tf::new(version);
    let flake = fixture(tf.dir.path(), &salt(name, version));
    let (sk, _) = signing_key(&format!("nbt-{name}-1"));
    tf.write(&format!(
        "{}{}",
        provider_config(""),
        push_resource(
            "e",
            &format!(
                "  source       = {}\n  installables = [\"app\"]\n  ssh {{\n    host_key = {}\n  }}\n{extra}{}",
                hcl(flake.to_str().unwrap()),
                hcl(&world().host(BUILDER).host_key()),
                store_block(&sk)
            )
        )
    ));
    (tf, flake)
}

/// A comment at the top of `flake.nix`: another tree, the same derivations.
fn add_a_comment(flake: &Path) {
    let text = std::fs::read_to_string(flake.join("flake.nix")).unwrap();
    std::fs::write(flake.join("flake.nix"), format!("# a comment only\n{text}")).unwrap();
}

/// A comment-only change of the pushed flake: the plan evaluates it on the
/// builder, finds the out paths unchanged and plans only the new
/// `source_hash`; the apply runs nothing on the builder and uploads nothing;
/// the plan after it is empty. A change of one derivation: the plan shows
/// the new out path (known in the saved plan, with how many paths the cache
/// lacks), and the apply pushes exactly it. The first plan of a push whose
/// host key is configured knows its out paths too.
#[test]
fn plan_time_evaluation_builds_only_what_changed() {
    for version in terraform_versions() {
        let (tf, flake) = pinned_source_push("plan-eval", &version, "");
        let first = saved_plan(&tf);
        let change = planned_change(&first);
        let planned_paths = strings(&change["after"]["out_paths"]);
        assert_eq!(
            planned_paths.len(),
            1,
            "out paths known in the first plan: {change}"
        );
        assert_eq!(
            change["after"]["out_paths_missing_by_destination"][cache_url()],
            1,
            "{change}"
        );
        tf.ok(&["apply", "-no-color", "tfplan"]);
        let before = tf.output("e");
        assert_eq!(strings(&before["out_paths"]), planned_paths);
        tf.assert_no_changes();

        // A comment in flake.nix: another source_hash, the same derivations.
        add_a_comment(&flake);
        let plan = saved_plan(&tf);
        let change = planned_change(&plan);
        assert_eq!(change["actions"], serde_json::json!(["update"]), "{change}");
        assert_eq!(
            change["after"]["out_paths"], before["out_paths"],
            "{change}"
        );
        assert_ne!(change["after"]["source_hash"], before["source_hash"]);
        assert_eq!(
            change["after"]["pushed_paths"], before["pushed_paths"],
            "{change}"
        );
        assert_ne!(change["after_unknown"]["out_paths"], true, "{change}");
        let new_hash = change["after"]["source_hash"].as_str().unwrap().to_string();
        let commands_before = world().host(BUILDER).commands_log().len();
        let access_before = access_log().len();
        tf.ok(&["apply", "-no-color", "tfplan"]);
        // Terraform plans the change again at apply: that plan reads the
        // first one's record (no Nix); nothing builds.
        let during_apply = commands_naming(commands_before, &new_hash);
        assert!(during_apply.len() <= 1, "{during_apply:#?}");
        assert!(
            during_apply.iter().all(|c| !c.contains(" nixbuild build ")),
            "the apply of an unchanged build started a build: {during_apply:#?}"
        );
        let closure = strings(&before["closure_paths"]);
        assert_eq!(uploads_of(access_before, &closure), Vec::<String>::new());
        let after = tf.output("e");
        assert_eq!(after["source_hash"].as_str(), Some(new_hash.as_str()));
        assert_eq!(after["out_paths"], before["out_paths"]);
        assert_eq!(after["id"], before["id"]);
        tf.assert_no_changes();

        // One derivation changes: the plan knows its new out path.
        std::fs::write(flake.join("message.txt"), "a changed message\n").unwrap();
        let plan = saved_plan(&tf);
        let change = planned_change(&plan);
        let planned = strings(&change["after"]["out_paths"]);
        assert_eq!(planned.len(), 1, "{change}");
        assert_ne!(planned, strings(&before["out_paths"]));
        assert!(planned[0].ends_with("-nbt-app"), "{planned:?}");
        assert_eq!(
            change["after"]["out_paths_missing_by_destination"][cache_url()],
            1,
            "{change}"
        );
        assert_eq!(change["after_unknown"]["pushed_paths"], true, "{change}");
        assert!(narinfo(&planned[0]).is_none());
        tf.ok(&["apply", "-no-color", "tfplan"]);
        let pushed = tf.output("e");
        assert_eq!(strings(&pushed["out_paths"]), planned);
        assert_eq!(pushed["pushed_paths"], 1, "only the app was new: {pushed}");
        assert!(narinfo(&planned[0]).is_some());
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// `evaluate_at_plan = false` plans as before: a comment-only change pushes
/// again, out paths known after apply, and the plan connects to nothing.
#[test]
fn plan_time_evaluation_can_be_turned_off() {
    for version in terraform_versions() {
        let (tf, flake) =
            pinned_source_push("plan-eval-off", &version, "  evaluate_at_plan = false\n");
        let change_of_first = saved_plan(&tf);
        assert_eq!(
            planned_change(&change_of_first)["after_unknown"]["out_paths"],
            true,
            "not evaluated"
        );
        tf.ok(&["apply", "-no-color", "tfplan"]);
        tf.assert_no_changes();
        add_a_comment(&flake);
        let commands_before = world().host(BUILDER).commands_log().len();
        let plan = saved_plan(&tf);
        let change = planned_change(&plan);
        let new_hash = change["after"]["source_hash"].as_str().unwrap().to_string();
        assert_eq!(
            commands_naming(commands_before, &new_hash),
            Vec::<String>::new(),
            "the plan evaluated"
        );
        assert_eq!(change["after_unknown"]["out_paths"], true, "{change}");
        assert_eq!(change["after_unknown"]["pushed_paths"], true, "{change}");
        tf.ok(&["apply", "-no-color", "tfplan"]);
        assert!(tf.output("e")["out_paths_missing_by_destination"].is_null());
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// A builder that does not answer at plan time: a warning, the out paths
/// unknown, the plan succeeds (exit 2: there is a change).
#[test]
fn unreachable_builder_at_plan_time_is_a_warning() {
    for version in terraform_versions() {
        let (tf, flake) = pinned_source_push("plan-eval-dead", &version, "");
        tf.apply();
        std::fs::write(
            flake.join("message.txt"),
            "changed while the builder is away\n",
        )
        .unwrap();
        // The same builder on a port nobody listens on.
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let main_tf = std::fs::read_to_string(tf.dir.path().join("main.tf")).unwrap();
        tf.write(&main_tf.replace(
            "  ssh {\n    host_key",
            &format!("  ssh {{\n    port = {dead_port}\n    host_key"),
        ));
        let (code, text) = tf.plan_exit_code();
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("Warning:"), "{text}");
        assert!(text.contains("did not answer"), "{text}");
        assert!(
            text.contains("out_paths") && text.contains("(known after apply)"),
            "{text}"
        );
        tf.write(&main_tf);
        tf.destroy();
    }
}

/// `flake` without a revision: the plan evaluates it every time, so a new
/// commit upstream shows as new out paths with no argument changed. A commit
/// between plan and apply makes the build differ from the plan: the apply
/// fails clearly and uploads nothing.
#[test]
fn unlocked_flake_moves_show_in_the_plan_and_a_move_after_it_fails_the_apply() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("plan-eval-unlocked", &version));
        let repo = format!("nbt-{}", hash_of_text(&flake));
        let locked = publish_git(&flake, &repo);
        let unlocked = locked.split("&rev=").next().unwrap().to_string();
        let www = world().json["cache"]["www_dir"].as_str().unwrap();
        let bare = Path::new(www).join(format!("{repo}.git"));
        let commit = |message: &str| {
            std::fs::write(flake.join("message.txt"), message).unwrap();
            sh(
                &flake,
                &format!(
                    "git add -A && git -c user.name=t -c user.email=t@example.com commit -qm m && git push -q {0} main && git -C {0} update-server-info",
                    bare.display()
                ),
            );
        };
        let (sk, _) = signing_key("nbt-plan-eval-unlocked-1");
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "u",
                &format!(
                    // Nix caches where a branch points for `tarball-ttl`.
                    "  flake        = {}\n  installables = [\"app\"]\n  build_args   = [\"--option\", \"tarball-ttl\", \"0\"]\n{}",
                    hcl(&unlocked),
                    store_block(&sk)
                )
            )
        ));
        tf.apply();
        let before = tf.output("u");
        tf.assert_no_changes();
        commit("upstream moved\n");
        let plan = saved_plan(&tf);
        let change = planned_change(&plan);
        let planned = strings(&change["after"]["out_paths"]);
        assert_eq!(planned.len(), 1, "{change}");
        assert_ne!(planned, strings(&before["out_paths"]), "{change}");
        // Upstream moves again before the apply: not what the plan showed.
        commit("upstream moved again\n");
        let access_before = access_log().len();
        let out = tf.fails(&["apply", "-no-color", "tfplan"]);
        assert!(
            out.contains("The build's outputs differ from the plan's"),
            "{out}"
        );
        assert!(out.contains(&planned[0]), "{out}");
        // Nothing of this push was uploaded (other tests share the cache).
        let produced: Vec<String> = out
            .split_whitespace()
            .filter(|w| w.starts_with("/nix/store/") && w.ends_with("-nbt-app"))
            .map(str::to_string)
            .collect();
        assert!(produced.len() >= 2, "planned and produced paths: {out}");
        assert_eq!(
            uploads_of(access_before, &produced),
            Vec::<String>::new(),
            "uploaded after the mismatch"
        );
        // The next plan shows the current upstream and applies.
        tf.apply();
        assert_ne!(strings(&tf.output("u")["out_paths"]), planned);
        tf.assert_no_changes();
        tf.destroy();
        let _ = std::fs::remove_dir_all(&bare);
    }
}

/// `nixbuild_flake_outputs`: the out paths a push records for the same
/// installables, per installable with its derivation; which of them the
/// cache holds follows the cache when a narinfo is deleted.
#[test]
fn flake_outputs_data_source_matches_the_push_and_follows_the_cache() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let flake = fixture(tf.dir.path(), &salt("flake-outputs", &version));
        let (sk, _) = signing_key("nbt-flake-outputs-1");
        let installables = r#"["tool", "packages.x86_64-linux.app"]"#;
        tf.write(&format!(
            "{}{}",
            provider_config(""),
            push_resource(
                "p",
                &format!(
                    "  source       = {}\n  installables = {installables}\n{}",
                    hcl(flake.to_str().unwrap()),
                    store_block(&sk)
                )
            )
        ));
        tf.apply();
        let pushed = strings(&tf.output("p")["out_paths"]);
        tf.destroy();

        let reader = Tf::new(&version);
        reader.write(&format!(
            r#"{}
data "nixbuild_flake_outputs" "f" {{
  host         = {host}
  source       = {source}
  installables = {installables}
  caches       = [{cache}]
}}

output "f" {{
  value = data.nixbuild_flake_outputs.f
}}
"#,
            provider_config(""),
            host = hcl(&world().host(BUILDER).address()),
            source = hcl(flake.to_str().unwrap()),
            cache = hcl(&cache_url()),
        ));
        reader.apply();
        let f = reader.output("f");
        assert_eq!(strings(&f["out_paths"]), pushed, "{f}");
        assert_eq!(f["all_cached"], true, "{f}");
        assert_eq!(
            f["missing_paths_by_cache"][cache_url()],
            serde_json::json!([])
        );
        assert_eq!(
            strings(&f["out_paths_by_installable"]["tool"]),
            [pushed[0].clone()]
        );
        let drvs = strings(&f["drv_paths"]);
        assert_eq!(drvs.len(), 2);
        assert!(drvs.iter().all(|d| d.ends_with(".drv")), "{drvs:?}");
        assert_eq!(f["source_hash"].as_str().unwrap().len(), 64);
        remove_narinfo_at(&cache_dir(), &pushed[1]);
        reader.apply();
        let f = reader.output("f");
        assert_eq!(f["all_cached"], false, "{f}");
        assert_eq!(
            strings(&f["missing_paths_by_cache"][cache_url()]),
            [pushed[1].clone()]
        );
        reader.destroy();
    }
}
