//! The CI example (`examples/ci/builders.yml`, `forgejo.yml`) run for real:
//! its scripts, in the order its jobs run them, against the test world.
//!
//! The build job installs the provider from a release-shaped archive into a
//! filesystem mirror (no `dev_overrides`: the real install path), generates
//! the run's SSH keys, applies `environments/dev` (its fleet.tf, variables.tf
//! and outputs.tf as they are), builds a pull-request-shaped commit through
//! the builders and pushes the closure from the runner, signed with the run's
//! key. The destroy job, with a fresh checkout and scratch directory as on a
//! new runner, destroys from the run's state. Then every path the run built
//! must be in the cache, signed with the run's key.
//!
//! STAND-INS, because nothing real can run here (no Hetzner, no Cachix):
//! - dev's main.tf (Hetzner servers) is replaced by a `builder_hosts` local
//!   naming the loopback host h3, and Hetzner's "install the admin key on the
//!   new server" is the test appending the run's admin key to h3's root
//!   `authorized_keys` (removed again afterwards);
//! - the Cachix API and CLI are the world's stand-ins (tests/standins), and
//!   watch-store is off because it needs systemd, which h3 lacks;
//! - the run's state sits in the `local` backend (init.sh's
//!   `TF_BACKEND`), where CI uses S3;
//! - the runner's push goes through push.sh's `NIX_CACHE_URI` branch (real
//!   `nix copy` to the world's nginx cache): the cachix CLI stand-in knows
//!   its caches only inside the test hosts.
//!
//! The pull request's commit lives on a branch that is not the default branch
//! of a git repository the test creates and serves over loopback HTTP (the
//! world's nginx, git's dumb protocol); its derivations carry a salt of
//! their own, so no other test or `make demo` can have pushed them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{daemon_restart_command, exclusive, hcl, terraform_versions, world, StateClaims};
use serde_json::Value;

/// The builder host the "cloud" hands out.
const HOST: &str = "h3";
/// The environment the workflows apply, inside the checkout.
const INFRA_DIR: &str = "infra/environments/dev";
/// The run's signing key has the name Cachix gives a self-signed cache's key
/// (`<cache>-1`); the stand-in CLI names the bare secret the same way.
const CACHE: &str = "public-cache";

/// The linux_amd64 archive `scripts/release.sh` builds (the static musl
/// binary), shared with the other tests that need it (tests/common/release.rs).
fn release_archive() -> PathBuf {
    common::release::release_artifacts().zip()
}

/// The binary inside that archive.
fn archived_binary() -> Vec<u8> {
    let out = Command::new("unzip")
        .arg("-p")
        .arg(release_archive())
        .arg(format!(
            "terraform-provider-nixbuild_v{}",
            env!("CARGO_PKG_VERSION")
        ))
        .output()
        .expect("unzip runs");
    assert!(out.status.success() && !out.stdout.is_empty());
    out.stdout
}

/// A fresh checkout of the user's repository: the examples under `infra/`,
/// as the workflows expect, with dev's Hetzner part replaced by stand-ins.
fn checkout(dir: &Path) -> PathBuf {
    let repo = common::repo_root();
    common::copy_tree(&repo.join("examples"), &dir.join("infra"));
    let env = dir.join(INFRA_DIR);
    // main.tf creates Hetzner servers; versions.tf requires hcloud, which
    // cannot be installed offline. Everything else of dev stays as it is.
    std::fs::remove_file(env.join("main.tf")).unwrap();
    std::fs::remove_file(env.join("versions.tf")).unwrap();
    let h = world().host(HOST);
    std::fs::write(
        env.join("servers_standin.tf"),
        format!(
            "# STAND-IN for main.tf's Hetzner servers (tests/ci_example.rs): the\n\
             # loopback host {HOST}, which has no systemd, so its nix-daemon restarts\n\
             # through the test world's supervisor. The exact version: Terraform\n\
             # installs a pre-release (0.2.0-dev) only when asked for exactly.\n\
             terraform {{\n  required_version = \">= 1.6\"\n  required_providers {{\n    nixbuild = {{\n      source  = \"{}\"\n      version = \"{}\"\n    }}\n  }}\n}}\n\n\
             locals {{\n  builder_hosts = {{\n    for name in var.builder_names : name => {{\n      address                = {}\n      daemon_restart_command = {}\n    }}\n  }}\n}}\n",
            common::SOURCE,
            env!("CARGO_PKG_VERSION"),
            hcl(&h.address()),
            hcl(&daemon_restart_command(&h)),
        ),
    )
    .unwrap();
    let cachix = &world().json["cachix_api"];
    std::fs::write(
        env.join("standin_override.tf"),
        format!(
            "# STAND-INS (tests/ci_example.rs): the Cachix API stand-in, and no\n\
             # watch-store, which needs systemd (the loopback host has none).\n\
             provider \"nixbuild\" {{\n  cachix {{\n    api_url = {}\n  }}\n}}\n\n\
             module \"fleet\" {{\n  cachix = {{\n    cache       = var.cachix_cache\n    public_key  = var.cachix_public_key\n    install     = true\n    watch_store = false\n  }}\n}}\n",
            hcl(cachix["url"].as_str().unwrap())
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

/// One CI job: a checkout, a scratch directory (`RUNNER_TEMP`) and the
/// job's environment, which each step can extend through `$GITHUB_ENV`, as
/// on GitHub and Forgejo runners.
struct Job {
    name: String,
    workspace: PathBuf,
    env: BTreeMap<String, String>,
    github_env: PathBuf,
    /// Every step's output, for failure messages.
    log: String,
}

impl Job {
    fn new(name: &str, root: &Path, env: &BTreeMap<String, String>, terraform: &Path) -> Self {
        let dir = root.join(name);
        let workspace = checkout(&dir.join("checkout"));
        let runner_temp = dir.join("runner-temp");
        let home = dir.join("home");
        let bin = dir.join("bin");
        for d in [&runner_temp, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        // `terraform` on PATH, as setup-terraform puts it there.
        std::os::unix::fs::symlink(terraform, bin.join("terraform")).unwrap();
        let github_env = runner_temp.join("github-env");
        std::fs::write(&github_env, "").unwrap();
        let mut env = env.clone();
        env.insert("RUNNER_TEMP".into(), runner_temp.to_string_lossy().into());
        env.insert("GITHUB_ENV".into(), github_env.to_string_lossy().into());
        env.insert("HOME".into(), home.to_string_lossy().into());
        env.insert(
            "PATH".into(),
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        Self {
            name: name.into(),
            workspace,
            env,
            github_env,
            log: String::new(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.workspace).env_clear().envs(&self.env);
        cmd
    }

    /// `run: infra/ci/scripts/<script>`; then what it wrote to $GITHUB_ENV
    /// joins the job's environment.
    fn step(&mut self, script: &str) -> String {
        let started = std::time::Instant::now();
        let out = self
            .command(&format!("infra/ci/scripts/{script}"))
            .output()
            .unwrap_or_else(|e| panic!("run {script}: {e}"));
        let text = format!(
            "--- {} / {script} ({:.1} s)\n{}{}",
            self.name,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{} / {script}: {:.1} s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        self.log.push_str(&text);
        assert!(
            out.status.success(),
            "step {script} of job {} failed:\n{}",
            self.name,
            self.log
        );
        let exported = std::fs::read_to_string(&self.github_env).unwrap();
        for line in exported.lines() {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{script} wrote `{line}` to GITHUB_ENV"));
            self.env.insert(key.into(), value.into());
        }
        std::fs::write(&self.github_env, "").unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `terraform -chdir=INFRA_DIR ARGS` with the job's environment.
    fn terraform(&self, args: &[&str]) -> Output {
        let chdir = format!("-chdir={INFRA_DIR}");
        self.command("terraform")
            .arg(&chdir)
            .args(args)
            .output()
            .expect("run terraform")
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("job {} has no {name}", self.name))
    }
}

/// Hetzner's part of server creation, standing in: the run's admin key in
/// root's authorized_keys of the host, until the "server" is destroyed.
struct AdminKeyInstalled {
    key: String,
}

impl AdminKeyInstalled {
    fn install(key: &str) -> Self {
        assert!(!key.contains('\''), "{key}");
        world().host(HOST).exec(&format!(
            "mkdir -p /root/.ssh && printf '%s\\n' '{key}' >> /root/.ssh/authorized_keys"
        ));
        Self { key: key.into() }
    }
}

impl Drop for AdminKeyInstalled {
    fn drop(&mut self) {
        let _ = world().host(HOST).try_exec(&format!(
            "grep -vxF '{}' /root/.ssh/authorized_keys > /root/.ssh/authorized_keys.new; \
             chmod 600 /root/.ssh/authorized_keys.new && mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys",
            self.key
        ));
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=ci-example",
            "-c",
            "user.email=ci@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The application repository: a flake with no inputs whose packages embed
/// `salt`. `main` (the default branch) has one commit; the pull request's
/// commit is on branch `pr-7` only. Served by the world's nginx as a dumb
/// HTTP git repository; returns (clone URL, branch, commit, directory to
/// remove).
fn pull_request_repository(dir: &Path, salt: &str) -> (String, String, String, PathBuf) {
    let src = dir.join("app");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q"]);
    let flake = |change: &str| {
        format!(
            r#"# The application of tests/ci_example.rs: no inputs (offline), a
# library, a package and an activation-package-shaped output keyed "user@host".
{{
  outputs = {{ self }}:
    let
      system = "x86_64-linux";
      mk = name: script: derivation {{ inherit name system; builder = "/bin/sh"; args = [ "-c" script ]; }};
      lib = mk "ci-example-lib" "echo '{salt} {change} lib' > $out";
    in
    {{
      packages.${{system}}.default = mk "ci-example-app" "echo '{salt} app' ${{lib}} > $out";
      homeConfigurations."ci@runner".activationPackage = mk "ci-example-activate" "echo '{salt} activate' ${{lib}} > $out";
    }};
}}
"#
        )
    };
    std::fs::write(src.join("flake.nix"), flake("base")).unwrap();
    git(&src, &["add", "flake.nix"]);
    git(&src, &["commit", "-q", "-m", "base"]);
    let branch = "pr-7".to_string();
    git(&src, &["checkout", "-q", "-b", &branch]);
    std::fs::write(src.join("flake.nix"), flake("changed in the pull request")).unwrap();
    git(&src, &["commit", "-q", "-am", "the pull request's change"]);
    let rev = git(&src, &["rev-parse", "HEAD"]);
    git(&src, &["checkout", "-q", "main"]);
    // PR-shaped: the commit is not in the default branch's history.
    let on_main = Command::new("git")
        .args(["merge-base", "--is-ancestor", &rev, "main"])
        .current_dir(&src)
        .status()
        .unwrap();
    assert_eq!(on_main.code(), Some(1), "the PR commit must not be on main");

    let www = PathBuf::from(world().json["cache"]["www_dir"].as_str().unwrap());
    let served = www.join(format!("ci-example-{salt}"));
    std::fs::create_dir_all(&served).unwrap();
    let bare = served.join("repo.git");
    git(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    let url = format!(
        "{}/ci-example-{salt}/repo.git",
        world().json["cache"]["www_url"].as_str().unwrap()
    );
    (url, branch, rev, served)
}

/// Removes the served repository at the end, whatever happened.
struct RemoveDir(PathBuf);
impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The cache's narinfo of `path`, or None.
fn narinfo(cache_url: &str, path: &str) -> Option<String> {
    let hash = &path["/nix/store/".len()..][..32];
    let out = Command::new("curl")
        .args(["-fsS", &format!("{cache_url}/{hash}.narinfo")])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Nix checks the cache's copy of `path` (NAR contents and signature)
/// against `public_key` alone: signed with that key, or an error.
fn verify_signed(cache_url: &str, path: &str, public_key: &str) -> Result<(), String> {
    let out = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args([
            "store",
            "verify",
            "--store",
            cache_url,
            "--sigs-needed",
            "1",
        ])
        .args(["--option", "trusted-public-keys", public_key])
        .args(["--option", "narinfo-cache-positive-ttl", "0"])
        .args(["--option", "substituters", ""])
        .arg(path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `run:` steps of a workflow's job, in order (the scripts' names).
fn job_scripts(workflow: &str, job: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(common::repo_root().join("examples/ci").join(workflow)).unwrap();
    let body = text
        .split(&format!("\n  {job}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("{workflow} has no job {job}"));
    // The job ends where the next job's key (two spaces of indent) starts.
    body.lines()
        .take_while(|l| !(l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':')))
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("- ")
                .unwrap_or(l)
                .strip_prefix("run: infra/ci/scripts/")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn ci_example_scripts_build_push_and_destroy() {
    let w = world();
    let _host = exclusive(HOST);
    // The test runs the scripts of both workflows' jobs, in their order.
    let build_steps = job_scripts("builders.yml", "build");
    let destroy_steps = job_scripts("builders.yml", "destroy");
    assert_eq!(
        build_steps,
        [
            "install-provider.sh",
            "keys.sh",
            "flake-ref.sh",
            "init.sh",
            "apply.sh",
            "build.sh",
            "push.sh"
        ]
    );
    assert_eq!(
        destroy_steps,
        ["install-provider.sh", "keys.sh", "init.sh", "destroy.sh"]
    );
    for job in ["build", "destroy"] {
        assert_eq!(
            job_scripts("forgejo.yml", job),
            job_scripts("builders.yml", job),
            "forgejo.yml's {job} job runs other scripts than builders.yml's"
        );
    }
    let cache_url = w.json["cache"]["url"].as_str().unwrap().to_string();

    for version in terraform_versions() {
        let started = std::time::Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix("nixbuild-ci-example-")
            .tempdir()
            .unwrap();
        let root = tmp.path();
        let salt = common::salt("ci-example", &version).replace('.', "_");
        let (url, branch, rev, served) = pull_request_repository(root, &salt);
        let _served = RemoveDir(served);
        let archive = release_archive();

        // The run's signing key: a Nix key named as Cachix names the cache's
        // key; CACHIX_SIGNING_KEY is its bare secret, as `cachix
        // generate-keypair` prints it.
        let key = root.join("signing");
        let status = Command::new("nix-store")
            .args(["--generate-binary-cache-key", &format!("{CACHE}-1")])
            .arg(key.with_extension("sec"))
            .arg(key.with_extension("pub"))
            .status()
            .unwrap();
        assert!(status.success());
        let secret = std::fs::read_to_string(key.with_extension("sec")).unwrap();
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let bare_secret = secret.split_once(':').unwrap().1.to_string();

        let run_name = format!("ci-{}", &salt[salt.len() - 12..]);
        let mut env: BTreeMap<String, String> = [
            ("TF_IN_AUTOMATION", "1"),
            ("TF_INPUT", "0"),
            ("CHECKPOINT_DISABLE", "1"),
            ("NIXBUILD_PROVIDER_VERSION", env!("CARGO_PKG_VERSION")),
            ("INFRA_DIR", INFRA_DIR),
            ("TF_VAR_name_prefix", &run_name),
            ("TF_VAR_labels", r#"{"cleanup":"ci"}"#),
            ("TF_BACKEND", "local"),
            ("TF_VAR_hcloud_token", "unused-by-the-standin"),
            ("TF_VAR_cachix_cache", CACHE),
            ("CACHIX_AUTH_TOKEN", w.json["cachix_api"]["token"].as_str().unwrap()),
            ("RUNNER_EGRESS_CIDR", "127.0.0.1/32"),
            (
                "NIX_CONFIG",
                "experimental-features = nix-command flakes\nsubstituters =\nnarinfo-cache-negative-ttl = 0\n",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert(
            "NIXBUILD_PROVIDER_ARCHIVE".into(),
            archive.to_string_lossy().into(),
        );
        env.insert(
            "TF_BACKEND_CONFIG".into(),
            format!("path={}", root.join("state/run.tfstate").display()),
        );
        let terraform = w.terraform(&version);

        // ---- job `build`
        let mut build_env = env.clone();
        for (k, v) in [
            ("CACHIX_SIGNING_KEY", bare_secret.as_str()),
            ("TF_VAR_push_create_timeout", "10m"),
            ("FLAKE_FORGE", "git"),
            ("FLAKE_REPOSITORY", &url),
            ("FLAKE_GIT_REF", &branch),
            ("FLAKE_REV", &rev),
            (
                "TF_VAR_push_installables",
                r#"["homeConfigurations.\"ci@runner\".activationPackage"]"#,
            ),
            (
                "BUILD_INSTALLABLES",
                "packages.x86_64-linux.default\nhomeConfigurations.\"ci@runner\".activationPackage\n",
            ),
            ("NIX_CACHE_URI", &cache_url),
            ("NIX_CACHE_SECRET_KEY", secret.trim()),
        ] {
            build_env.insert(k.into(), v.into());
        }
        // The "cloud" host stays in the test world: its builder's claim goes
        // with the state, as a destroyed server's would.
        let mut claims = StateClaims::of(&root.join("state/run.tfstate"));
        let mut build = Job::new("build", root, &build_env, &terraform);
        let mut admin_key = None;
        for script in &build_steps {
            if script == "flake-ref.sh" {
                // keys.sh made the run's admin key: the "cloud" installs it.
                let key = std::fs::read_to_string(format!(
                    "{}.pub",
                    build.var("TF_VAR_admin_ssh_private_key_file")
                ))
                .unwrap();
                admin_key = Some(AdminKeyInstalled::install(key.trim()));
            }
            let out = build.step(script);
            match script.as_str() {
                "install-provider.sh" => assert!(
                    build.var("TF_CLI_CONFIG_FILE").ends_with("terraform.rc"),
                    "install-provider.sh did not set TF_CLI_CONFIG_FILE"
                ),
                "flake-ref.sh" => {
                    let flake_ref = build.var("TF_VAR_flake_ref").to_string();
                    assert_eq!(flake_ref, format!("git+{url}?ref={branch}&rev={rev}"));
                    // Why the ref is named: with a bare rev, Nix looks in HEAD
                    // (the default branch) only and cannot find the commit. First,
                    // while this runner's git cache is empty, as on a new runner.
                    let eval = |reference: &str| {
                        build
                            .command("nix")
                            .args(["eval", "--raw"])
                            .arg(format!("{reference}#packages.x86_64-linux.default.name"))
                            .output()
                            .unwrap()
                    };
                    assert!(
                        !eval(&format!("git+{url}?rev={rev}")).status.success(),
                        "a bare rev= of the PR commit was found: the commit is not PR-shaped"
                    );
                    let with_ref = eval(&flake_ref);
                    assert!(
                        with_ref.status.success(),
                        "{}",
                        String::from_utf8_lossy(&with_ref.stderr)
                    );
                }
                "init.sh" => {
                    // Installed from the archive: the release binary.
                    let installed = build.workspace.join(INFRA_DIR).join(format!(
                        ".terraform/providers/registry.terraform.io/{}/{}/linux_amd64/terraform-provider-nixbuild_v{}",
                        common::SOURCE,
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_VERSION")
                    ));
                    assert_eq!(
                        std::fs::read(&installed).unwrap_or_else(|e| panic!(
                            "{}: {e}\n{}",
                            installed.display(),
                            build.log
                        )),
                        archived_binary(),
                        "terraform init did not install the archive's binary"
                    );
                    let lock = std::fs::read_to_string(
                        build.workspace.join(INFRA_DIR).join(".terraform.lock.hcl"),
                    )
                    .unwrap();
                    assert!(
                        lock.contains(&format!("registry.terraform.io/{}", common::SOURCE))
                            && lock.contains("\"h1:"),
                        "the lock file records no archive checksum:\n{lock}"
                    );
                }
                "apply.sh" => {
                    // The plan/apply contract, with the job's environment.
                    let plan = build.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
                    assert_eq!(
                        plan.status.code(),
                        Some(0),
                        "the plan after apply.sh is not empty:\n{}{}",
                        String::from_utf8_lossy(&plan.stdout),
                        String::from_utf8_lossy(&plan.stderr)
                    );
                    // apply.sh ends with `terraform output -json pushed`, one line.
                    let last = out.lines().last().unwrap_or_default();
                    let pushed: Value = serde_json::from_str(last).unwrap_or_else(|e| {
                        panic!("apply.sh's `pushed` output: {e}\n{}", build.log)
                    });
                    assert_eq!(pushed.as_object().map(|o| o.len()), Some(1), "{pushed}");
                }
                _ => {}
            }
        }
        let built = lines(
            &std::fs::read_to_string(Path::new(build.var("RUNNER_TEMP")).join("built-paths"))
                .unwrap(),
        );
        assert_eq!(built.len(), 2, "{built:?}");
        let state = root.join("state/run.tfstate");
        let state_json: Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        // The builders' push built the same activation package the runner built.
        let outputs = &state_json["outputs"]["pushed"]["value"];
        let pushed_out = outputs
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v[0].as_str())
            .unwrap_or_else(|| panic!("no pushed out path in the state: {outputs}"))
            .to_string();
        assert!(built.contains(&pushed_out), "{pushed_out} vs {built:?}");
        // Built on the builder, not on the runner (--max-jobs 0) ...
        let builder = w.host(HOST);
        for path in &built {
            assert!(
                builder.try_exec(&format!("test -e {path}")).0,
                "{path} is not in the builder's store: not built there"
            );
        }
        // ... and the apply's push uploaded from the builder, with the cachix
        // CLI (the stand-in records its calls) and the run's signing key.
        // The stand-in records the key's SHA-256, never the key.
        let key_sha256: String = {
            use sha2::Digest;
            sha2::Sha256::digest(bare_secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let calls = std::fs::read_to_string(builder.field("cachix_log")).unwrap_or_default();
        assert!(
            calls.lines().any(|call| call.contains(&pushed_out)
                && call.contains(&format!("\"CACHIX_SIGNING_KEY_SHA256\":\"{key_sha256}\""))),
            "no `cachix push` of {pushed_out} with the run's key on the builder"
        );

        claims.note();
        // ---- job `destroy`: a new runner, the run's state only.
        let mut destroy = Job::new("destroy", root, &env, &terraform);
        destroy
            .env
            .insert("TF_VAR_flake_ref".into(), "unused-by-destroy".into());
        for script in &destroy_steps {
            destroy.step(script);
        }
        drop(admin_key);
        let state_json: Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(
            state_json["resources"].as_array().map(Vec::len),
            Some(0),
            "destroy left resources in the state"
        );

        // Every path the run built (closures included) is in the cache,
        // signed with the run's key.
        let closure = Command::new("nix-store")
            .arg("-qR")
            .args(&built)
            .output()
            .unwrap();
        assert!(closure.status.success());
        let closure = lines(&String::from_utf8_lossy(&closure.stdout));
        assert_eq!(closure.len(), 3, "app, activation, lib: {closure:?}");
        for path in &closure {
            let info = narinfo(&cache_url, path)
                .unwrap_or_else(|| panic!("{path} is not in the cache after destroy"));
            assert!(info.contains(&format!("Sig: {CACHE}-1:")), "{path}: {info}");
            verify_signed(&cache_url, path, public.trim()).unwrap_or_else(|e| {
                panic!("{path} in the cache is not signed with the run's key: {e}")
            });
        }
        // The check itself can fail: the world's own key for that name does
        // not verify these paths.
        let world_key = w.json["cachix_api"]["caches"][CACHE]["public_key"]
            .as_str()
            .unwrap();
        assert!(
            verify_signed(&cache_url, &closure[0], world_key).is_err(),
            "a foreign key verified the run's path"
        );
        eprintln!(
            "ci example on Terraform {version}: {} paths built, pushed and signed; {:.0} s",
            closure.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
