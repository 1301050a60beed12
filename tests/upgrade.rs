//! Upgrade acceptance test: state written by release 0.1.0 must plan cleanly
//! with the current build, on every Terraform version. The test builds 0.1.0
//! itself, from a `git worktree` of this repository at [`RELEASE_0_1_0`],
//! under `target/nixbuild-0.1.0/` (worktree and its own target directory):
//! offline, `--locked`, from the cargo registry cache the main build filled.
//! The binary is kept in the test world's directory (`provider-0.1.0-<commit>`),
//! which outlives checkouts: 0.1.0 never changes, so a fresh clone (CI) does
//! not build it again (about 9 minutes on 2 cores).
//!
//! "Changes nothing on the hosts" is read from the hosts' side: checksums of
//! every file the configuration manages, and the world's command recorder,
//! which must show only read-only scripts while the upgraded build refreshes.

mod common;
use common::daemon_restart_command;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{
    exclusive, fixture, hcl, keypair, provider_binary, provider_config, repo_root, salt,
    terraform_versions, world, Tf, SOURCE,
};

/// The commit tagged 0.1.0, the oldest release users upgrade from.
const RELEASE_0_1_0: &str = "96309d9962201b2496ba1469960236bafb22826a";

/// In-place changes the first plan after the upgrade may show, as
/// `(resource address prefix, attribute)`. Every entry is announced in
/// CHANGELOG.md's upgrade notes and changes nothing on the hosts (the test
/// proves that from the hosts' side). Add an entry here, with its reason, when
/// a schema change means an in-place update on upgrade; never add a
/// replacement.
const ALLOWED_UPGRADE_CHANGES: &[(&str, &str)] = &[
    // `source_hash` became the NAR hash Nix records as the flake's `narHash`
    // (0.1.0 hashed the tree its own way), so a push from `source` plans one
    // in-place re-push; the other entries are that push's results, known
    // after apply. The plan itself changes nothing on the hosts.
    ("nixbuild_cache_push.", "source_hash"),
    ("nixbuild_cache_push.", "id"),
    ("nixbuild_cache_push.", "out_paths"),
    ("nixbuild_cache_push.", "closure_paths"),
    ("nixbuild_cache_push.", "closure_nar_size"),
    ("nixbuild_cache_push.", "pushed_paths"),
    ("nixbuild_cache_push.", "missing_paths"),
    ("nixbuild_cache_push.", "pushed_paths_by_destination"),
    ("nixbuild_cache_push.", "missing_paths_by_destination"),
    // Build keys are restricted by default now (`restrict` + the forced Nix
    // command): a 0.1.0 builder's plain `authorized_keys` lines are drift, and
    // the next apply rewrites them in place. Only that finding is allowed
    // (see `only_the_announced_drift`).
    ("nixbuild_builder.", "drift"),
];

/// The builder's drift on upgrade is exactly the announced `authorized_keys`
/// finding (CHANGELOG: build keys restricted by default), nothing else.
fn only_the_announced_drift(plan: &str) {
    let Some(start) = plan.find("~ drift") else {
        return;
    };
    let block = &plan[start..];
    let block = &block[..block.find(']').expect("the drift list ends")];
    let findings: Vec<&str> = block
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        !findings.is_empty()
            && findings
                .iter()
                .all(|f| f.contains("authorized_keys of `nixbuild` differ")),
        "drift on upgrade beyond the restricted build keys: {findings:?}\n{plan}"
    );
}

const BUILDER: &str = "h1";
const PUSHER: &str = "h2";

/// Directory holding the 0.1.0 provider binary, built once per test world.
fn old_provider_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let kept = world()
            .dir
            .join(format!("provider-0.1.0-{}", &RELEASE_0_1_0[..12]));
        let binary = "terraform-provider-nixbuild";
        if kept.join(binary).is_file() {
            return kept;
        }
        let bin_dir = build_0_1_0();
        // Copied, then renamed: another checkout never sees half a binary.
        std::fs::create_dir_all(&kept).unwrap();
        let partial = kept.join(format!("{binary}.partial-{}", std::process::id()));
        std::fs::copy(bin_dir.join(binary), &partial).unwrap();
        std::fs::rename(&partial, kept.join(binary)).unwrap();
        kept
    })
}

/// Build 0.1.0 in `target/nixbuild-0.1.0/` (a worktree and its own target
/// directory); the directory holding its binary.
fn build_0_1_0() -> PathBuf {
    let base = repo_root().join("target/nixbuild-0.1.0");
    let tree = base.join("src");
    let target = base.join("target");
    let bin_dir = target.join("debug");
    if bin_dir.join("terraform-provider-nixbuild").is_file() {
        return bin_dir;
    }
    std::fs::create_dir_all(&base).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo_root())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !tree.join("Cargo.toml").is_file() {
        // A worktree whose directory was deleted is still registered.
        git(&["worktree", "prune"]);
        let _ = std::fs::remove_dir_all(&tree);
        git(&[
            "worktree",
            "add",
            "--detach",
            tree.to_str().unwrap(),
            RELEASE_0_1_0,
        ]);
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--locked",
            "--offline",
            "--bin",
            "terraform-provider-nixbuild",
        ])
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo build for 0.1.0");
    assert!(
        out.status.success(),
        "building 0.1.0 offline failed (the cargo registry cache must hold its \
         dependencies):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin_dir
}

/// Point `tf`'s `dev_overrides` at the provider in `dir`.
fn use_provider(tf: &mut Tf, dir: &Path, name: &str) {
    let rc = tf.dir.path().join(format!("{name}.tfrc"));
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    {} = {}\n  }}\n  direct {{}}\n}}\n",
            hcl(&format!("registry.terraform.io/{SOURCE}")),
            hcl(dir.to_str().unwrap())
        ),
    )
    .unwrap();
    tf.env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap());
}

/// Make the Cachix API stand-in accept `token`.
fn register_token(token: &str) {
    use std::io::Write;
    let path = world().json["cachix_api"]["tokens_file"].as_str().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{token}").unwrap();
}

/// A builder with `build_user` and `cachix`, a machines file over it, and a
/// cache push from a local source to the world's binary cache, in syntax
/// 0.1.0 accepts.
fn config(
    token: &str,
    client_key: &str,
    client_pub: &str,
    machines: &Path,
    flake: &Path,
    secret_key: &str,
) -> String {
    let w = world();
    let builder = w.host(BUILDER);
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install                = "none"
    max_jobs               = 2
    system_features        = ["big-parallel"]
    daemon_restart_command = {restart}
  }}
  build_user {{
    authorized_keys = [{client_pub}]
  }}
  cachix {{
    cache = "public-cache"
  }}
}}

resource "nixbuild_machines_file" "m" {{
  path = {machines}
  machine {{
    uri             = nixbuild_builder.b.store_uri
    systems         = nixbuild_builder.b.systems
    ssh_key         = {client_key}
    max_jobs        = 2
    public_host_key = nixbuild_builder.b.host_key_base64
  }}
}}

resource "nixbuild_cache_push" "p" {{
  host         = {pusher}
  source       = {flake}
  installables = ["tool"]
  store {{
    uri        = {cache}
    secret_key = {secret_key}
  }}
}}
"#,
        provider = provider_config(&format!(
            "cachix {{\n    api_url    = {}\n    auth_token = {}\n  }}",
            hcl(w.json["cachix_api"]["url"].as_str().unwrap()),
            hcl(token)
        )),
        host = hcl(&builder.address()),
        restart = hcl(&daemon_restart_command(&builder)),
        client_pub = hcl(client_pub),
        client_key = hcl(client_key),
        machines = hcl(machines.to_str().unwrap()),
        pusher = hcl(&w.host(PUSHER).address()),
        flake = hcl(flake.to_str().unwrap()),
        cache = hcl(w.json["cache"]["url"].as_str().unwrap()),
        secret_key = hcl(secret_key.trim()),
    )
}

/// Checksums of everything the configuration manages on the hosts (and of
/// the local machines file and the binary cache's listing).
fn host_fingerprint(machines: &Path) -> String {
    let w = world();
    let builder = w.host(BUILDER).exec(
        "cd / && sha256sum etc/nix/nix.conf etc/nix/nixbuild.conf \
         \"$(getent passwd nixbuild | cut -d: -f6)/.ssh/authorized_keys\" \
         $(find etc/nixbuild -type f 2>/dev/null | sort) 2>&1; \
         getent passwd nixbuild; id nixbuild; \
         ls -l --time-style=full-iso /etc/nix; \
         ls -l --time-style=full-iso /etc/nixbuild 2>&1 || true",
    );
    let machines_file = std::fs::read_to_string(machines).unwrap_or_default();
    let mut cache: Vec<String> = std::fs::read_dir(w.json["cache"]["dir"].as_str().unwrap())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} {:?}",
                e.file_name().to_string_lossy(),
                e.metadata().unwrap().modified().ok()
            )
        })
        .collect();
    cache.sort();
    format!(
        "{BUILDER}:\n{builder}\nmachines file:\n{machines_file}\ncache entries: {}\n{}",
        cache.len(),
        sha256(&cache.join("\n"))
    )
}

fn sha256(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// Header lines (line 2) of the remote scripts that change a host: none may
/// run while the upgraded build only refreshes and plans.
fn mutating_script_headers() -> Vec<String> {
    let read_only = [
        "account.sh",
        "builder_check.sh",
        "file_read.sh",
        "probe.sh",
        "nix.sh",
        "nix_fingerprint.sh",
        // The wrapper every remote command runs under (StopProvider ends it):
        // it changes nothing itself, and what it runs is checked by its own
        // header.
        "guard.sh",
    ];
    let mut headers = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("src/scripts")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".sh") || read_only.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().nth(1).unwrap_or_default().to_string();
        assert!(header.starts_with("# "), "{name} has no header comment");
        headers.push(header);
    }
    assert!(headers.len() >= 8, "{headers:?}");
    headers
}

/// Commands the hosts recorded since `before` (byte offsets per host).
fn commands_since(before: &[(&str, usize)]) -> String {
    before
        .iter()
        .map(|(host, offset)| {
            let log = world().host(host).commands_log();
            format!("{host}:\n{}", &log[(*offset).min(log.len())..])
        })
        .collect()
}

fn command_offsets() -> Vec<(&'static str, usize)> {
    [BUILDER, PUSHER]
        .into_iter()
        .map(|h| (h, world().host(h).commands_log().len()))
        .collect()
}

/// Whether an `after_unknown` value marks anything unknown (`true` at any depth;
/// a nested block with nothing unknown is `[]` or `{}`).
fn has_unknown(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Array(items) => items.iter().any(has_unknown),
        serde_json::Value::Object(map) => map.values().any(has_unknown),
        _ => false,
    }
}

/// Resource changes of a saved plan as `(address, actions, changed attributes)`.
fn planned_changes(tf: &Tf) -> Vec<(String, Vec<String>, Vec<String>)> {
    tf.ok(&["plan", "-no-color", "-out", "upgrade.plan"]);
    let plan: serde_json::Value =
        serde_json::from_str(&tf.ok(&["show", "-json", "upgrade.plan"])).unwrap();
    let mut changes = Vec::new();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<String> = rc["change"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        if actions == ["no-op"] {
            continue;
        }
        let (before, after) = (&rc["change"]["before"], &rc["change"]["after"]);
        // Changed values, and values only known after apply (absent from `after`).
        let mut attrs: Vec<String> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| before.get(k.as_str()) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                rc["change"]["after_unknown"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| has_unknown(v))
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        attrs.sort();
        attrs.dedup();
        changes.push((rc["address"].as_str().unwrap().to_string(), actions, attrs));
    }
    changes
}

/// The saved plan's prior state is 0.1.0's state after the current build's
/// `UpgradeResourceState`: `nixbuild_cache_push` went through its version
/// step 1 → 2, which forgets 0.1.0's `source_hash` (a hash of another kind),
/// while the state file on disk still holds version 1 with that hash.
fn version_steps_ran(tf: &Tf) {
    let on_disk: serde_json::Value = serde_json::from_str(&tf.state_text()).unwrap();
    let stored: Vec<&serde_json::Value> = on_disk["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == "nixbuild_cache_push")
        .flat_map(|r| r["instances"].as_array().into_iter().flatten())
        .collect();
    assert!(
        !stored.is_empty(),
        "no nixbuild_cache_push in 0.1.0's state"
    );
    for instance in &stored {
        assert_eq!(
            instance["schema_version"], 1,
            "0.1.0 wrote version 1: {instance}"
        );
    }
    let from_source = stored
        .iter()
        .filter(|i| !i["attributes"]["source"].is_null())
        .count();
    assert!(
        from_source > 0,
        "the upgrade configuration has no `source` push"
    );
    assert!(
        stored
            .iter()
            .filter(|i| !i["attributes"]["source"].is_null())
            .all(|i| i["attributes"]["source_hash"].is_string()),
        "0.1.0 recorded no source_hash: {stored:?}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&tf.ok(&["show", "-json", "upgrade.plan"])).unwrap();
    let upgraded: Vec<&serde_json::Value> = plan["prior_state"]["values"]["root_module"]
        ["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == "nixbuild_cache_push")
        .collect();
    assert_eq!(upgraded.len(), stored.len(), "{plan}");
    for r in upgraded {
        assert_eq!(r["schema_version"], 2, "not upgraded to version 2: {r}");
        if !r["values"]["source"].is_null() {
            assert!(
                r["values"]["source_hash"].is_null(),
                "the version step kept 0.1.0's source_hash: {r}"
            );
        }
    }
}

fn signing_key(name: &str) -> String {
    let host = world().host(PUSHER);
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("sk"), dir.path().join("pk"));
    host.exec(&format!(
        "nix-store --generate-binary-cache-key {name} {} {}",
        sk.display(),
        pk.display()
    ));
    std::fs::read_to_string(sk).unwrap()
}

/// Apply with 0.1.0, plan with the current build (no replacement, only the
/// allowed in-place changes, nothing touched on the hosts), apply and plan
/// again with the current build, destroy.
#[test]
fn state_from_0_1_0_plans_cleanly_with_the_current_build() {
    let old = old_provider_dir();
    let new = provider_binary().parent().unwrap().to_path_buf();
    let _hosts = [BUILDER, PUSHER].map(exclusive);
    let headers = mutating_script_headers();
    for version in terraform_versions() {
        let mut tf = Tf::new(&version);
        let (client_key, client_pub) = keypair(tf.dir.path(), "client");
        let token = format!(
            "cachix-upgrade-{}-{}",
            version.replace('.', ""),
            std::process::id()
        );
        register_token(&token);
        let flake = fixture(tf.dir.path(), &salt("upgrade", &version));
        let machines = tf.dir.path().join("machines");
        let secret_key = signing_key("nbt-upgrade-1");
        tf.write(&config(
            &token,
            &client_key,
            &client_pub,
            &machines,
            &flake,
            &secret_key,
        ));

        use_provider(&mut tf, old, "release-0.1.0");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            upgrade_and_check(&mut tf, &new, &machines, &headers)
        }));
        if let Err(panic) = run {
            // Leave the shared hosts as they were, whichever build fails.
            let _ = tf.run(&["destroy", "-auto-approve", "-no-color"]);
            std::panic::resume_unwind(panic);
        }
    }
}

/// The upgrade itself, on a working directory whose last apply was by 0.1.0's
/// configuration (applied here).
fn upgrade_and_check(tf: &mut Tf, new: &Path, machines: &Path, headers: &[String]) {
    let version = tf.version.clone();
    {
        tf.apply();
        tf.assert_no_changes();
        let applied_by_old = host_fingerprint(machines);

        use_provider(tf, new, "current");
        let offsets = command_offsets();
        let args = ["plan", "-detailed-exitcode", "-no-color"];
        let out = tf.run(&args);
        let text = tf.describe(&args, &out);
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 2, "upgrade plan failed: {text}");
        for word in ["must be replaced", "forces replacement"] {
            assert!(!text.contains(word), "upgrade plans a replacement: {text}");
        }
        for (address, actions, attrs) in planned_changes(tf) {
            assert_eq!(actions, ["update"], "{address} on upgrade: {text}");
            for attr in attrs {
                assert!(
                    ALLOWED_UPGRADE_CHANGES
                        .iter()
                        .any(|(prefix, a)| address.starts_with(prefix) && *a == attr),
                    "{address}.{attr} changes on upgrade and is not in ALLOWED_UPGRADE_CHANGES: {text}"
                );
            }
        }
        only_the_announced_drift(&text);
        version_steps_ran(tf);
        // The plan's evaluation of the push's installables (issue 27) adds
        // only caches on the builder: the source tree's content-addressed
        // copy, the evaluation's record, derivations in the Nix store. It
        // is the same on every plan, not an effect of the upgrade; the
        // managed files are checked by the fingerprint below.
        let recorded: String = commands_since(&offsets)
            .lines()
            .filter(|l| !l.contains(" nixbuild evaluate ") && !l.contains(" nixbuild unpack "))
            .map(|l| format!("{l}\n"))
            .collect();
        for header in headers {
            assert!(
                !recorded.contains(header.as_str()),
                "the upgraded build's plan ran a mutating script ({header}) on {version}:\n{recorded}"
            );
        }
        assert_eq!(
            host_fingerprint(machines),
            applied_by_old,
            "the upgraded build's plan changed the hosts on {version}"
        );

        tf.apply();
        let state: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        for r in state["values"]["root_module"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if r["type"] == "nixbuild_cache_push" {
                eprintln!(
                    "[upgrade] {version}: re-push after the upgrade pushed {} path(s)",
                    r["values"]["pushed_paths"]
                );
            }
        }
        tf.assert_no_changes();
        tf.destroy();
        assert!(!machines.exists(), "machines file left after destroy");
        let (_, gone) = world().host(BUILDER).try_exec("getent passwd nixbuild");
        assert!(
            gone.trim().is_empty() || !gone.contains("nixbuild:"),
            "build user left: {gone}"
        );
    }
}
