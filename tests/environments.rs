//! The environments users apply, end to end: `examples/environments/local`
//! (the same `modules/fleet` that dev and prod call) applied to the loopback
//! test hosts, and every output users paste used the way they would paste it:
//! the one-line `builders_line` and the printed `nix_build_command` build on
//! the builders, and the `nix_build_machines` expression evaluates to the
//! machines of the written file. Then the dev and prod compositions
//! (their `fleet.tf` with their variables' defaults, loopback hosts instead of
//! Hetzner servers) plan with an absolute machines-file path.

mod common;
use common::daemon_restart_command;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{exclusive, terraform_versions, world, Tf};
use serde_json::{json, Value};

const BUILDERS: [&str; 2] = ["h1", "h2"];

/// Terraform in `dir` (relative to the Tf's directory) via `-chdir`.
fn tf_in(tf: &Tf, dir: &str, args: &[&str]) -> Output {
    let chdir = format!("-chdir={dir}");
    let mut all = vec![chdir.as_str()];
    all.extend_from_slice(args);
    tf.run(&all)
}

fn ok(tf: &Tf, dir: &str, args: &[&str]) -> String {
    let out = tf_in(tf, dir, args);
    assert!(
        out.status.success(),
        "terraform {} in {dir} ({}) failed\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        tf.version,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

/// A fresh derivation (the nonce makes it new), buildable only by a builder
/// when the client has no build slots and no substituters.
fn derivation_file(dir: &Path, name: &str) -> PathBuf {
    let nonce = format!(
        "{}-{}",
        name,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let path = dir.join(format!("{name}.nix"));
    std::fs::write(
        &path,
        format!(
            "derivation {{ name = \"env-{name}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce} > $out\" ]; }}\n"
        ),
    )
    .unwrap();
    path
}

/// Client environment: an empty HOME (host keys can only come from column
/// 8), no substituters, no local builds configured elsewhere.
fn client(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env(
            "NIX_CONFIG",
            "experimental-features = nix-command\nsubstituters =\n",
        )
        .env_remove("NIX_SSHOPTS")
        .env_remove("NIX_REMOTE");
}

/// The test hosts share one kernel and build-user uids: a build can be
/// killed by another host's Nix (see tests/machines_file.rs). Retry once then.
fn build_with_retry(mut make: impl FnMut() -> Command) -> Output {
    let run = |cmd: &mut Command| cmd.output().expect("run the client build");
    let out = run(&mut make());
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (log.contains("signal 9 (Killed)") || log.contains("cannot kill processes for uid"))
    {
        return run(&mut make());
    }
    out
}

/// The out path of a successful client build, which must exist in the store
/// of one of the builders (it was built there, not here).
fn assert_built_remotely(what: &str, out: &Output, out_path: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_builders: Vec<&str> = BUILDERS
        .into_iter()
        .filter(|h| world().host(h).try_exec(&format!("test -e {out_path}")).0)
        .collect();
    assert!(
        !on_builders.is_empty(),
        "{what}: {out_path} is on no builder's store:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn instantiate(file: &Path) -> String {
    let out = Command::new("nix-instantiate")
        .arg(file)
        .env("NIX_CONFIG", "substituters =\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn out_path_of(drv: &str) -> String {
    let out = Command::new("nix-store")
        .args(["-q", "--outputs", drv])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One machines-file line as the attributes `nix.buildMachines` uses, read
/// straight from the 8 columns (independent of the provider's parser).
fn line_as_build_machine(line: &str) -> Value {
    let c: Vec<&str> = line.split(' ').collect();
    assert_eq!(c.len(), 8, "{line}");
    let list = |s: &str| -> Vec<String> {
        if s == "-" {
            vec![]
        } else {
            s.split(',').map(str::to_string).collect()
        }
    };
    let (protocol, rest) = c[0].split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let mut m = json!({
        "hostName": host,
        "protocol": protocol,
        "sshUser": user,
        "systems": list(c[1]),
        "maxJobs": if c[3] == "-" { 1 } else { c[3].parse::<u64>().unwrap() },
        "speedFactor": if c[4] == "-" { 1 } else { c[4].parse::<u64>().unwrap() },
        "supportedFeatures": list(c[5]),
        "mandatoryFeatures": list(c[6]),
    });
    if c[2] != "-" {
        m["sshKey"] = json!(c[2]);
    }
    if c[7] != "-" {
        m["publicHostKey"] = json!(c[7]);
    }
    m
}

/// environments/local through modules/fleet: apply, empty plan, every pasted
/// output used, the push in the cache, destroy.
#[test]
fn local_environment_applies_and_its_outputs_work() {
    let w = world();
    let _hosts = BUILDERS.map(exclusive);
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let root = tf.dir.path();
        common::copy_tree(
            &common::repo_root().join("examples"),
            &root.join("examples"),
        );
        let env = "examples/environments/local";
        // Store paths of this run's own: `make demo` (and earlier runs) push
        // the same flake to the same cache, signed with other keys, and a
        // path found cached is not pushed again (issue 26, item 6).
        let flake = root.join(env).join("flake/flake.nix");
        let text = std::fs::read_to_string(&flake).unwrap();
        let marker = "built by a nixbuild builder";
        assert!(
            text.contains(marker),
            "{}: the demo's message changed",
            flake.display()
        );
        let own = format!(
            "{marker} (environments test {}-{})",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        std::fs::write(&flake, text.replace(marker, &own)).unwrap();
        let (client_key, client_pub) = common::keypair(root, "client");
        let keys = root.join("cache");
        let status = Command::new("nix-store")
            .args(["--generate-binary-cache-key", "environments-test-1"])
            .arg(keys.with_extension("sec"))
            .arg(keys.with_extension("pub"))
            .status()
            .unwrap();
        assert!(status.success());
        let builders: serde_json::Map<String, Value> = BUILDERS
            .iter()
            .map(|name| {
                let h = w.host(name);
                (
                    name.to_string(),
                    json!({
                        "address": h.address(),
                        "host_key": h.host_key(),
                        "daemon_restart_command": daemon_restart_command(&h),
                    }),
                )
            })
            .collect();
        // As scripts/demo.sh writes it, but machines_file_path left at its
        // default: `machines` next to the configuration, made absolute.
        let tfvars = json!({
            "builders": builders,
            "admin_private_key_file": w.key("ed25519"),
            "client_public_key": client_pub,
            "client_private_key_file": client_key,
            "cache_url": w.json["cache"]["url"],
            "cache_secret_key": read(keys.with_extension("sec")),
            "cache_public_key": read(keys.with_extension("pub")),
        });
        std::fs::write(
            root.join(env).join("terraform.tfvars.json"),
            serde_json::to_string_pretty(&tfvars).unwrap(),
        )
        .unwrap();
        ok(&tf, env, &["get", "-no-color"]);
        ok(&tf, env, &["apply", "-auto-approve", "-no-color"]);
        let plan = tf_in(&tf, env, &["plan", "-detailed-exitcode", "-no-color"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "the plan after apply is not empty:\n{}",
            String::from_utf8_lossy(&plan.stdout)
        );
        let outputs: Value = serde_json::from_str(&ok(&tf, env, &["output", "-json"])).unwrap();
        let output = |name: &str| outputs[name]["value"].clone();

        // The machines file: at the absolute default path, what the output says.
        let expected_path = root.join(env).join("machines").canonicalize().unwrap();
        let file = output("machines_file");
        assert_eq!(
            file["path"]
                .as_str()
                .map(|p| Path::new(p).canonicalize().unwrap()),
            Some(expected_path.clone())
        );
        let content = std::fs::read_to_string(&expected_path).unwrap();
        assert_eq!(file["content"], content.as_str());
        assert_eq!(content.lines().count(), 2, "{content}");

        let home = tempfile::tempdir().unwrap();

        // 1. The one-line string, as `--option builders '…'` of nix-build.
        let line = output("builders_line").as_str().unwrap().to_string();
        assert_eq!(line, content.trim_end().replace('\n', "; "));
        let drv_file = derivation_file(root, "line");
        let drv = instantiate(&drv_file);
        let out = build_with_retry(|| {
            let mut cmd = Command::new("nix-build");
            cmd.arg(&drv_file)
                .args(["--no-out-link", "--max-jobs", "0"])
                .args(["--option", "builders", &line]);
            client(&mut cmd, home.path());
            cmd
        });
        assert_built_remotely(
            "nix-build --option builders <builders_line>",
            &out,
            &out_path_of(&drv),
        );

        // 2. The printed command, pasted into a shell with an installable.
        let command = output("nix_build_command").as_str().unwrap().to_string();
        assert!(
            command.starts_with("nix build --max-jobs 0 --option builders '")
                && command.ends_with(" --option builders-use-substitutes true"),
            "{command}"
        );
        let drv_file = derivation_file(root, "command");
        let drv = instantiate(&drv_file);
        let script = format!("{command} --no-link -f {}", drv_file.display());
        let out = build_with_retry(|| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &script]);
            client(&mut cmd, home.path());
            cmd
        });
        assert_built_remotely(&script, &out, &out_path_of(&drv));
        assert!(
            !home.path().join(".ssh").exists(),
            "ssh wrote into HOME: host keys did not come from column 8"
        );

        // 3. nix.buildMachines: parses, and evaluates to the file's machines.
        let expr = output("nix_build_machines").as_str().unwrap().to_string();
        let expr_file = root.join("build-machines.nix");
        std::fs::write(&expr_file, &expr).unwrap();
        let parse = Command::new("nix-instantiate")
            .arg("--parse")
            .arg(&expr_file)
            .output()
            .unwrap();
        assert!(
            parse.status.success(),
            "{expr}\n{}",
            String::from_utf8_lossy(&parse.stderr)
        );
        let eval = Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json"])
            .arg(&expr_file)
            .output()
            .unwrap();
        assert!(
            eval.status.success(),
            "{expr}\n{}",
            String::from_utf8_lossy(&eval.stderr)
        );
        let evaluated: Value = serde_json::from_slice(&eval.stdout).unwrap();
        let from_file: Vec<Value> = content.lines().map(line_as_build_machine).collect();
        assert_eq!(evaluated, Value::Array(from_file), "{expr}\nvs\n{content}");

        // The push: its out paths are in the cache, signed.
        let push = output("cache_push");
        let out_paths = push["out_paths"].as_array().unwrap();
        assert!(!out_paths.is_empty());
        for path in out_paths {
            let hash = &path.as_str().unwrap()["/nix/store/".len()..][..32];
            let narinfo = Command::new("curl")
                .args([
                    "-fsS",
                    &format!("{}/{hash}.narinfo", push["cache_url"].as_str().unwrap()),
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&narinfo.stdout);
            assert!(text.contains("Sig: environments-test-1:"), "{path}: {text}");
        }

        ok(&tf, env, &["destroy", "-auto-approve", "-no-color"]);
        assert!(!expected_path.exists(), "destroy left the machines file");
    }
}

/// dev and prod without Hetzner: their fleet.tf, variables.tf and outputs.tf
/// as they are, with `local.builder_hosts` pointing at loopback hosts. With
/// the variables a user leaves at their defaults, the plan writes the
/// machines file at an absolute path (dev) or on the CI runner (prod), every
/// push is pinned to its builder's host key, and dev's builders push every
/// build with watch-store.
#[test]
fn dev_and_prod_compositions_plan_with_defaults() {
    let w = world();
    let version = terraform_versions().remove(0);
    let mut tf = Tf::new(&version);
    let cachix = &w.json["cachix_api"];
    // dev's builders run watch-store, which needs a token at plan time.
    tf.env("CACHIX_AUTH_TOKEN", cachix["token"].as_str().unwrap());
    let root = tf.dir.path();
    common::copy_tree(
        &common::repo_root().join("examples"),
        &root.join("examples"),
    );
    let cache = "public-cache";
    for (name, hosts, vars) in [
        (
            "dev",
            r#"{ for name in var.builder_names : name => { address = "127.0.0.11" } }"#,
            json!({
                "hcloud_token": "unused-without-hetzner",
                "admin_ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfzgQsOIHu2+G5p+T3SWfDiaJm4k5A+lrYQYaOEPJLV admin",
                "admin_ssh_private_key_file": w.key("ed25519"),
                "ssh_allowed_cidrs": ["198.51.100.0/24"],
                "client_public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICg40T5igF8XtZmxReeyxVeDs6+GKEmcyWMBLbF2QZTR workstation"],
                "cachix_cache": cache,
                "flake_ref": "git+https://git.example.com/infra/packages.git?ref=main&rev=4f1c0d3e9b6a7c2d1e0f9a8b7c6d5e4f3a2b1c0d",
            }),
        ),
        (
            "prod",
            r#"{ for name, b in var.builders : name => { address = "127.0.0.1${index(sort(keys(var.builders)), name) + 1}" } }"#,
            json!({
                "hcloud_token": "unused-without-hetzner",
                "admin_ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfzgQsOIHu2+G5p+T3SWfDiaJm4k5A+lrYQYaOEPJLV ops",
                "admin_ssh_private_key_file": w.key("ed25519"),
                "ssh_allowed_cidrs": ["198.51.100.0/24"],
                "ci_public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICg40T5igF8XtZmxReeyxVeDs6+GKEmcyWMBLbF2QZTR ci"],
                "ci_runner_host": "127.0.0.13",
                "cachix_cache": cache,
                "release_flake": "git+https://git.example.com/infra/packages.git?ref=main&rev=4f1c0d3e9b6a7c2d1e0f9a8b7c6d5e4f3a2b1c0d",
            }),
        ),
    ] {
        let dir = format!("examples/environments/{name}-without-hetzner");
        let abs = root.join(&dir);
        std::fs::create_dir_all(&abs).unwrap();
        for file in ["fleet.tf", "variables.tf", "outputs.tf"] {
            std::fs::copy(
                root.join("examples/environments").join(name).join(file),
                abs.join(file),
            )
            .unwrap();
        }
        // What main.tf (and prod's cache_proxy.tf) provides, without Hetzner:
        // no cache proxy, so no extra substituters; and the Cachix API stand-in
        // (an override file adds to dev's provider block without changing it).
        std::fs::write(
            abs.join("without_hetzner.tf"),
            format!(
                "terraform {{\n  required_providers {{\n    nixbuild = {{ source = \"{}\" }}\n  }}\n}}\n\nlocals {{\n  builder_hosts = {hosts}\n  builder_substituters        = []\n  builder_trusted_public_keys = []\n}}\n",
                common::SOURCE
            ),
        )
        .unwrap();
        std::fs::write(
            abs.join("cachix_standin_override.tf"),
            format!(
                "provider \"nixbuild\" {{\n  cachix {{\n    api_url = {}\n  }}\n}}\n",
                common::hcl(cachix["url"].as_str().unwrap())
            ),
        )
        .unwrap();
        std::fs::write(abs.join("terraform.tfvars.json"), vars.to_string()).unwrap();
        let runner = &tf;
        let rel = abs.to_str().unwrap();
        ok(runner, rel, &["get", "-no-color"]);
        ok(runner, rel, &["plan", "-out=plan.bin", "-no-color"]);
        let plan: Value =
            serde_json::from_str(&ok(runner, rel, &["show", "-json", "plan.bin"])).unwrap();
        let changes = plan["resource_changes"].as_array().unwrap();
        let find = |address: &str| -> &Value {
            changes
                .iter()
                .find(|c| c["address"] == address)
                .unwrap_or_else(|| panic!("{name}: no {address} in the plan"))
        };
        let file = &find("module.fleet.nixbuild_machines_file.this")["change"];
        let after = &file["after"];
        match name {
            "dev" => {
                let path = after["path"].as_str().expect("dev writes a local file");
                assert!(
                    path.starts_with('/'),
                    "dev: machines file path `{path}` is not absolute"
                );
                assert_eq!(
                    Path::new(path),
                    abs.join("machines"),
                    "dev: the default path is `machines` next to the configuration"
                );
                let nix_conf = after["nix_conf"].as_str().unwrap();
                assert!(
                    nix_conf.starts_with(&format!("builders = @{path}\n")),
                    "{nix_conf}"
                );
                let builder = &find("module.fleet.module.builders.nixbuild_builder.this[\"b1\"]")
                    ["change"]["after"];
                assert_eq!(
                    builder["cachix"][0]["watch_store"], true,
                    "dev pushes every build"
                );
                assert_eq!(builder["cachix"][0]["install"], true);
            }
            _ => {
                assert!(after["path"].is_null());
                assert_eq!(after["target"][0]["host"], "127.0.0.13");
                assert_eq!(
                    after["nix_conf"],
                    "builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n"
                );
                let builder =
                    &find("module.fleet.module.builders.nixbuild_builder.this[\"x86-1\"]")
                        ["change"]["after"];
                assert!(
                    builder["nix"][0]["system_features"].is_null(),
                    "prod lets Nix detect features (kvm only with /dev/kvm)"
                );
            }
        }
        let pushes: Vec<&Value> = changes
            .iter()
            .filter(|c| c["type"] == "nixbuild_cache_push")
            .collect();
        assert!(!pushes.is_empty(), "{name}: no pushes planned");
        for push in pushes {
            // Pinned to the builder's key, which is known only after apply.
            assert_eq!(
                push["change"]["after_unknown"]["ssh"][0]["host_key"], true,
                "{name}: {} does not take the builder's host_key",
                push["address"]
            );
        }
    }
}
