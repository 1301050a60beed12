//! Checks of `examples/`: every example is `terraform fmt` clean, and every
//! example whose providers are available offline (only this one) passes a real
//! `terraform validate` on every supported Terraform version, through
//! `dev_overrides` like the acceptance tests. The Hetzner environments (dev,
//! prod) need `hetznercloud/hcloud` from the registry, which cannot be reached
//! here: they are checked for fmt only and reported as not validated; the
//! GitHub workflow validates them (job `examples` of ci.yml; with network
//! access, `NIXBUILD_EXAMPLES_ONLINE=1` makes this test do it too).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{hcl, provider_binary, terraform_versions, world, SOURCE};
use serde_json::Value;

/// Examples that need only this provider, relative to `examples/`.
const OFFLINE: &[&str] = &[
    "provider",
    "resources/nixbuild_builder",
    "resources/nixbuild_machines_file",
    "resources/nixbuild_cache_push",
    "resources/nixbuild_cache_proxy",
    "data-sources/nixbuild_host",
    "data-sources/nixbuild_builder_status",
    "data-sources/nixbuild_cachix_cache",
    "data-sources/nixbuild_flake_outputs",
    "modules/builder",
    "modules/fleet",
    "environments/local",
];

/// Examples that also need `hetznercloud/hcloud`.
const NEED_HCLOUD: &[&str] = &[
    "environments/dev",
    "environments/prod",
    "modules/cache-proxy",
];

fn examples() -> PathBuf {
    common::repo_root().join("examples")
}

/// Every directory under `examples/` that holds `.tf` files, relative.
fn example_dirs() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut has_tf = false;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') {
                    walk(root, &path, out);
                }
            } else if name.ends_with(".tf") {
                has_tf = true;
            }
        }
        if has_tf {
            out.push(
                dir.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    let mut out = Vec::new();
    walk(&examples(), &examples(), &mut out);
    out
}

/// Copy `examples/` into `dest` (so relative module sources keep working),
/// leaving out anything a local `terraform` run may have left behind.
fn copy_examples(dest: &Path) {
    fn copy(src: &Path, dest: &Path) {
        std::fs::create_dir_all(dest).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == ".terraform"
                || name == ".terraform.lock.hcl"
                || name.ends_with(".tfstate")
                || name.ends_with(".tfstate.backup")
                || name.ends_with(".tfvars")
            {
                continue;
            }
            if path.is_dir() {
                copy(&path, &dest.join(&name));
            } else {
                std::fs::copy(&path, dest.join(&name)).unwrap();
            }
        }
    }
    copy(&examples(), dest);
}

struct Run {
    version: String,
    bin: PathBuf,
    cli_config: PathBuf,
    /// HOME for Terraform and the provider, when not the caller's.
    home: Option<PathBuf>,
}

impl Run {
    fn new(version: &str, cli_config: PathBuf) -> Self {
        Self {
            version: version.to_string(),
            bin: world().terraform(version),
            cli_config,
            home: None,
        }
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_DATA_DIR");
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        cmd.output().expect("run terraform")
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "terraform {} ({}) in {} failed\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            self.version,
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `terraform validate -json`: valid, with no errors and no warnings.
    fn validate(&self, dir: &Path, example: &str) {
        if let Some(problems) = self.validation_problems(dir, example) {
            panic!("{problems}");
        }
    }

    /// What `terraform validate -json` finds wrong in `dir` (errors, or
    /// warnings other than the one saying dev_overrides are in effect).
    fn validation_problems(&self, dir: &Path, example: &str) -> Option<String> {
        let out = self.run(dir, &["validate", "-json", "-no-color"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{example} ({}): validate -json printed no JSON ({e}):\n{stdout}\n{}",
                self.version,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let diagnostics = report["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let problems: Vec<String> = diagnostics
            .iter()
            .filter(|d| d["summary"] != "Provider development overrides are in effect")
            .map(|d| {
                format!(
                    "{} in {}:{}: {}: {}",
                    d["severity"].as_str().unwrap_or("?"),
                    d["range"]["filename"].as_str().unwrap_or("?"),
                    d["range"]["start"]["line"],
                    d["summary"].as_str().unwrap_or("?"),
                    d["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        if out.status.success() && report["valid"] == true && problems.is_empty() {
            return None;
        }
        Some(format!(
            "{example} is not valid, or has warnings, on Terraform {}:\n{}",
            self.version,
            problems.join("\n")
        ))
    }
}

/// A CLI config that serves this provider from the binary cargo built.
fn dev_overrides_config(dir: &Path) -> PathBuf {
    let path = dir.join("dev-overrides.tfrc");
    std::fs::write(
        &path,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    {} = {}\n  }}\n  direct {{}}\n}}\n",
            hcl(&format!("registry.terraform.io/{SOURCE}")),
            hcl(provider_binary().parent().unwrap().to_str().unwrap())
        ),
    )
    .unwrap();
    path
}

/// A CLI config that installs this provider from a scratch filesystem mirror
/// holding the cargo-built binary as the release version of Cargo.toml's
/// (`0.2.0` for `0.2.0-dev`: Terraform picks a pre-release only when a
/// configuration names it, and the examples name no version), and every
/// other provider from
/// its registry. Unlike `dev_overrides`, `terraform init` then works on every
/// version (Terraform 1.6 asks the registry for an overridden provider).
fn mirror_config(dir: &Path) -> PathBuf {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let version = env!("CARGO_PKG_VERSION").split('-').next().unwrap();
    let mirror = dir.join("mirror");
    let platform_dir = mirror
        .join("registry.terraform.io")
        .join(SOURCE)
        .join(version)
        .join(format!("{}_{arch}", std::env::consts::OS));
    std::fs::create_dir_all(&platform_dir).unwrap();
    std::fs::copy(
        provider_binary(),
        platform_dir.join(format!("terraform-provider-nixbuild_v{version}")),
    )
    .unwrap();
    let address = hcl(&format!("registry.terraform.io/{SOURCE}"));
    let path = dir.join("mirror.tfrc");
    std::fs::write(
        &path,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {}\n    include = [{address}]\n  }}\n  direct {{\n    exclude = [{address}]\n  }}\n}}\n",
            hcl(mirror.to_str().unwrap())
        ),
    )
    .unwrap();
    path
}

/// The directory to validate `example` in, inside a copy of `examples/`.
/// Resource and data-source examples are snippets, as the docs show them:
/// they are validated together with `examples/provider/provider.tf`, which
/// holds their `required_providers` and provider block.
fn prepare(copy: &Path, example: &str) -> PathBuf {
    let dir = copy.join(example);
    if example.starts_with("resources/") || example.starts_with("data-sources/") {
        std::fs::copy(
            copy.join("provider/provider.tf"),
            dir.join("provider_example.tf"),
        )
        .unwrap();
    }
    dir
}

/// Every example directory is in exactly one of the two lists, so a new
/// example cannot go unchecked; the layout the docs rely on is there.
#[test]
fn every_example_is_classified() {
    let found = example_dirs();
    for dir in &found {
        assert!(
            OFFLINE.contains(&dir.as_str()) || NEED_HCLOUD.contains(&dir.as_str()),
            "examples/{dir} is in neither OFFLINE nor NEED_HCLOUD of tests/examples.rs"
        );
    }
    for dir in OFFLINE.iter().chain(NEED_HCLOUD) {
        assert!(
            found.contains(&dir.to_string()),
            "examples/{dir} is missing"
        );
    }
    for file in [
        "provider/provider.tf",
        "resources/nixbuild_builder/resource.tf",
        "resources/nixbuild_builder/import.sh",
        "resources/nixbuild_machines_file/resource.tf",
        "resources/nixbuild_cache_push/resource.tf",
        "data-sources/nixbuild_host/data-source.tf",
        "environments/local/flake/flake.nix",
        "ci/builders.yml",
        "ci/forgejo.yml",
    ] {
        assert!(
            examples().join(file).is_file(),
            "examples/{file} is missing"
        );
    }
    // import.sh imports a resource that resource.tf declares, with the
    // documented `user@host:port` id.
    let import =
        std::fs::read_to_string(examples().join("resources/nixbuild_builder/import.sh")).unwrap();
    let resource =
        std::fs::read_to_string(examples().join("resources/nixbuild_builder/resource.tf")).unwrap();
    let line = import
        .lines()
        .find(|l| l.starts_with("terraform import "))
        .expect("import.sh has a terraform import line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let (_, name) = words[2].split_once('.').unwrap();
    assert!(
        resource.contains(&format!("resource \"nixbuild_builder\" \"{name}\"")),
        "{line}: no such resource in resource.tf"
    );
    assert!(
        nixbuild_import_id_ok(words[3]),
        "{line}: id is not user@host:port"
    );
}

fn nixbuild_import_id_ok(id: &str) -> bool {
    id.split_once('@')
        .and_then(|(user, rest)| rest.rsplit_once(':').map(|(h, p)| (user, h, p)))
        .is_some_and(|(user, host, port)| {
            !user.is_empty() && !host.is_empty() && port.parse::<u16>().is_ok()
        })
}

/// The source address appears only as `SOURCE`, and each root module or
/// module declares it (resource snippets get it from provider.tf).
#[test]
fn source_address_is_the_one_namespace() {
    let pattern = format!("source = \"{SOURCE}\"");
    for dir in example_dirs() {
        let mut declares = false;
        for entry in std::fs::read_dir(examples().join(&dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "tf") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text
                    .lines()
                    .filter(|l| l.contains("source") && l.contains("/nixbuild\""))
                {
                    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
                    assert_eq!(line, pattern, "{}", path.display());
                    declares = true;
                }
            }
        }
        let snippet = dir.starts_with("resources/") || dir.starts_with("data-sources/");
        assert_eq!(
            declares, !snippet,
            "examples/{dir}: required_providers with {SOURCE} expected only in roots and modules"
        );
    }
}

#[test]
fn examples_are_fmt_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let run = Run::new("1.15.5", dev_overrides_config(tmp.path()));
    let out = run.run(
        &examples(),
        &["fmt", "-check", "-recursive", "-diff", "-no-color"],
    );
    assert!(
        out.status.success(),
        "terraform fmt -check -recursive examples failed; run `terraform fmt -recursive examples`\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Explicitly, the Hetzner environments that cannot be validated here.
    for dir in NEED_HCLOUD {
        let out = run.run(&examples().join(dir), &["fmt", "-check", "-no-color"]);
        assert!(out.status.success(), "examples/{dir} is not fmt clean");
    }
}

/// Real `terraform validate` of every offline example on every Terraform
/// version. With `dev_overrides` no `init` is needed for this provider;
/// `terraform get` installs local modules (`init` would ask the registry
/// for the overridden provider on Terraform 1.6).
#[test]
fn offline_examples_validate_on_every_version() {
    let tmp = tempfile::tempdir().unwrap();
    let cli_config = dev_overrides_config(tmp.path());
    for version in terraform_versions() {
        let copy = tmp.path().join(format!("examples-{version}"));
        copy_examples(&copy);
        let run = Run::new(&version, cli_config.clone());
        for example in OFFLINE {
            let dir = prepare(&copy, example);
            run.ok(&dir, &["get", "-no-color"]);
            run.validate(&dir, example);
            eprintln!("validated examples/{example} on Terraform {version}");
        }
    }
}

/// The Hetzner environments: with `NIXBUILD_EXAMPLES_ONLINE=1` (the GitHub
/// workflow, which can reach the registry) `init` + `validate` them with this
/// provider from a filesystem mirror; otherwise say loudly that they were not
/// validated. The mirror mechanism itself is checked here on the local
/// environment, which needs no registry.
#[test]
fn hcloud_examples_validate_online_only() {
    let online = std::env::var("NIXBUILD_EXAMPLES_ONLINE").is_ok_and(|v| v == "1");
    let tmp = tempfile::tempdir().unwrap();
    let cli_config = mirror_config(tmp.path());
    for version in terraform_versions() {
        let copy = tmp.path().join(format!("examples-{version}"));
        copy_examples(&copy);
        let run = Run::new(&version, cli_config.clone());
        let mut targets = vec!["environments/local"];
        if online {
            targets.extend(NEED_HCLOUD);
        }
        for example in targets {
            let dir = prepare(&copy, example);
            run.ok(
                &dir,
                &["init", "-backend=false", "-input=false", "-no-color"],
            );
            run.validate(&dir, example);
            eprintln!("validated examples/{example} on Terraform {version} (init from a filesystem mirror)");
        }
    }
    if !online {
        for dir in NEED_HCLOUD {
            for file in ["main.tf", "versions.tf"] {
                assert!(examples().join(dir).join(file).is_file());
            }
            let versions =
                std::fs::read_to_string(examples().join(dir).join("versions.tf")).unwrap();
            assert!(versions.contains("hetznercloud/hcloud"), "{dir}");
            eprintln!(
                "NOT VALIDATED HERE: examples/{dir} needs hetznercloud/hcloud from the registry \
                 (offline); only `terraform fmt -check` ran. The GitHub workflow validates it \
                 (.github/workflows/ci.yml, job `examples`; or here with network access: \
                 NIXBUILD_EXAMPLES_ONLINE=1 cargo test --test examples)."
            );
        }
    }
}

/// The CI recipe for temporary builders (examples/ci/builders.yml) is
/// actionlint-clean with shellcheck over its `run:` blocks, every `run:` is
/// a script of examples/ci/scripts (tests/ci_example.rs runs them), and
/// every `TF_VAR_x` it or its scripts set is a variable of
/// environments/dev, which it applies.
#[test]
fn ci_recipe_lints_and_matches_the_dev_variables() {
    let workflow = examples().join("ci/builders.yml");
    assert_actionlint_clean(&workflow, "examples/ci/builders.yml");
    let text = std::fs::read_to_string(&workflow).unwrap();
    assert!(
        text.contains("INFRA_DIR: infra/environments/dev"),
        "the recipe applies environments/dev"
    );
    let scripts = every_run_is_a_script("builders.yml", &text);
    let all = format!("{text}\n{scripts}");
    assert_tf_vars_are_dev_variables("builders.yml", &all, 12);
    // Temporary builders: destroyed whatever happened, bounded in time,
    // cleaned up by label, one run at a time per ref, secrets only behind an
    // environment (builds behind a protected one, teardown behind one with no
    // approval), never for forks; PR commits by an exact reference.
    for needle in [
        "if: always() && needs.build.result != 'skipped'",
        "timeout-minutes: ${{ fromJSON(vars.BUILD_JOB_TIMEOUT_MINUTES || '240') }}",
        "TF_VAR_push_create_timeout: ${{ vars.PUSH_CREATE_TIMEOUT || '3h' }}",
        "schedule:",
        "-l cleanup=ci",
        "concurrency:",
        "environment: builders\n",
        "environment: builders-teardown\n",
        "github.event.pull_request.head.repo.full_name == github.repository",
        "backend \"${TF_BACKEND:-s3}\"",
        "TF_VAR_name_prefix: ci-${{ github.run_id }}-${{ github.run_attempt }}",
        "ssh-keygen -q -t ed25519",
        "github:$FLAKE_REPOSITORY/$FLAKE_REV",
        "ref=$FLAKE_GIT_REF&rev=$FLAKE_REV",
        "TF_VAR_nix_access_tokens",
        "CACHIX_SIGNING_KEY: ${{ secrets.CACHIX_SIGNING_KEY }}",
    ] {
        assert!(
            all.contains(needle),
            "examples/ci/builders.yml (or its scripts) lacks `{needle}`"
        );
    }
    assert!(
        !text.contains("BUILDERS_ADMIN_SSH_KEY"),
        "a shared admin key makes two runs collide on Hetzner's key fingerprints"
    );
    // Jobs that see a secret are exactly those behind an environment; the
    // build job's is the protected one, destroy and cleanup need no approval.
    let bodies = job_bodies(&text);
    assert!(
        bodies.len() >= 4,
        "checks, build, destroy, cleanup: {bodies:?}"
    );
    for job in &bodies {
        if job.contains("secrets.") {
            let env = if job.starts_with("  build:") {
                "environment: builders\n"
            } else {
                "environment: builders-teardown\n"
            };
            assert!(
                job.contains(env),
                "a job reads secrets without `{}`:\n{job}",
                env.trim()
            );
        }
    }
}

/// The Forgejo Actions variant calls the same scripts. actionlint knows
/// GitHub only: it refuses Forgejo's runner labels (`runs-on: docker`) and
/// actions named by URL (`uses: https://github.com/...`), which Forgejo
/// documents, and warns that node20 actions are deprecated on GitHub (the
/// mirrored actions/checkout@v4 Forgejo's runners use). Exactly those
/// findings are ignored; everything else (expressions, contexts, shellcheck
/// of each `run:`) must be clean.
#[test]
fn forgejo_recipe_lints_and_runs_the_same_scripts() {
    let workflow = examples().join("ci/forgejo.yml");
    let out = actionlint_run(
        &workflow,
        &[
            r#"label "docker" is unknown"#,
            r#"specifying action "https://github\.com/[^"]+" in invalid format"#,
            r#"runtime "node20" is deprecated"#,
        ],
    );
    assert!(
        out.status.success(),
        "actionlint reports problems in examples/ci/forgejo.yml beyond Forgejo's known differences:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&workflow).unwrap();
    let scripts = every_run_is_a_script("forgejo.yml", &text);
    assert_tf_vars_are_dev_variables("forgejo.yml", &format!("{text}\n{scripts}"), 10);
    let github = std::fs::read_to_string(examples().join("ci/builders.yml")).unwrap();
    let runs = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.contains("run: infra/ci/scripts/"))
            .map(|l| l.split("run: ").nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(runs(&text), runs(&github), "forgejo.yml runs other steps");
    for needle in [
        "if: always() && needs.build.result != 'skipped'",
        "concurrency:",
        "FLAKE_FORGE: git",
        "refs/pull/{0}/head",
        "runs-on: docker",
    ] {
        assert!(
            text.contains(needle),
            "examples/ci/forgejo.yml lacks `{needle}`"
        );
    }
}

fn actionlint_run(workflow: &Path, ignore: &[&str]) -> Output {
    let mut cmd = Command::new(actionlint());
    cmd.arg("-shellcheck").arg("shellcheck");
    for pattern in ignore {
        cmd.arg("-ignore").arg(pattern);
    }
    cmd.arg(workflow).output().expect("run actionlint")
}

/// Every `run:` of the workflow is exactly one script of examples/ci/scripts
/// (the workflow sees them as infra/ci/scripts), which exists and is
/// executable. Returns the scripts' text.
fn every_run_is_a_script(name: &str, text: &str) -> String {
    let mut scripts = String::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim().trim_start_matches("- ");
        let Some(run) = trimmed.strip_prefix("run:") else {
            continue;
        };
        count += 1;
        let run = run.trim();
        let script = run.strip_prefix("infra/ci/scripts/").unwrap_or_else(|| {
            panic!(
                "examples/ci/{name}:{}: `run: {run}` is not a script of infra/ci/scripts",
                n + 1
            )
        });
        assert!(
            script.ends_with(".sh") && !script.contains(char::is_whitespace),
            "examples/ci/{name}:{}: `run: {run}` is not one script",
            n + 1
        );
        let path = examples().join("ci/scripts").join(script);
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("examples/ci/{name}: {}: {e}", path.display()));
        use std::os::unix::fs::PermissionsExt;
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{} is not executable",
            path.display()
        );
        scripts.push_str(&std::fs::read_to_string(&path).unwrap());
    }
    assert!(count >= 10, "examples/ci/{name}: only {count} run: steps");
    scripts.push_str(&std::fs::read_to_string(examples().join("ci/scripts/lib.sh")).unwrap());
    scripts
}

/// Every `TF_VAR_x` in `text` is a variable of environments/dev.
fn assert_tf_vars_are_dev_variables(name: &str, text: &str, at_least: usize) {
    let variables =
        std::fs::read_to_string(examples().join("environments/dev/variables.tf")).unwrap();
    let mut names: Vec<&str> = text
        .split("TF_VAR_")
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(
        names.len() >= at_least,
        "too few TF_VAR_ names found: {names:?}"
    );
    for var in names {
        assert!(
            variables.contains(&format!("variable \"{var}\" {{")),
            "examples/ci/{name} (or a script) sets TF_VAR_{var}, but environments/dev has no variable `{var}`"
        );
    }
}

/// The jobs of a workflow, each from its key line to the next job's.
fn job_bodies(text: &str) -> Vec<String> {
    let jobs = text.split("\njobs:\n").nth(1).expect("a jobs: section");
    let mut bodies: Vec<String> = Vec::new();
    for line in jobs.lines() {
        let is_header = line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if is_header || bodies.is_empty() {
            bodies.push(String::new());
        }
        let body = bodies.last_mut().unwrap();
        body.push_str(line);
        body.push('\n');
    }
    bodies
}

/// actionlint, with shellcheck over the `run:` blocks, finds nothing in
/// `workflow` (`what` names it in the failure).
fn assert_actionlint_clean(workflow: &Path, what: &str) {
    let out = actionlint_run(workflow, &[]);
    assert!(
        out.status.success(),
        "actionlint ({}) reports problems in {what}:\n{}{}",
        actionlint().display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// actionlint: `$ACTIONLINT`, or where scripts/install-actionlint.sh puts it.
fn actionlint() -> PathBuf {
    let path = std::env::var_os("ACTIONLINT")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| world().dir.join("bin/actionlint"));
    assert!(
        path.is_file(),
        "actionlint not found at {}: run `bash scripts/install-actionlint.sh` (make lint does), or set $ACTIONLINT",
        path.display()
    );
    path
}

/// The README's quickstart, copied as it is, passes `terraform validate` on
/// every Terraform version, on a machine with no SSH key (validate needs no
/// values for its variables).
#[test]
fn readme_quickstart_validates_as_written() {
    let readme = std::fs::read_to_string(examples().join("../README.md")).unwrap();
    let section = readme
        .split("## Quickstart")
        .nth(1)
        .expect("README has a Quickstart section");
    let hcl = section
        .split("```hcl\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the Quickstart has an hcl block");
    for version in terraform_versions() {
        let mut tf = common::Tf::new(&version);
        let home = tf.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        tf.env("HOME", home.to_str().unwrap());
        tf.write(hcl);
        tf.ok(&["validate", "-no-color"]);
        eprintln!("README quickstart validated on Terraform {version}");
    }
}

/// The remote-state recipe of environments/dev and prod: each has a partial
/// `backend "s3" {}` (backend.tf) and a complete S3-compatible configuration
/// in backend.hcl.example. A real `terraform init -backend-config=…` with it,
/// the endpoint pointed at a closed loopback port, must accept every argument
/// and fail only when it reaches the store (path-style, at the bucket); on
/// Terraform before 1.10 the one refused argument is `use_lockfile`, as the
/// guide says, and the rest is accepted there too.
#[test]
fn backend_examples_configure_an_s3_compatible_store() {
    let tmp = tempfile::tempdir().unwrap();
    let cli_config = tmp.path().join("empty.tfrc");
    std::fs::write(&cli_config, "").unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    for version in terraform_versions() {
        let run = Run::new(&version, cli_config.clone());
        let locking_supported = version_at_least(&version, 1, 10);
        for env in ["dev", "prod"] {
            let source = examples().join("environments").join(env);
            let backend_tf = std::fs::read_to_string(source.join("backend.tf")).unwrap();
            assert!(
                backend_tf.contains("backend \"s3\" {}"),
                "environments/{env}/backend.tf: a partial s3 backend expected"
            );
            let example = std::fs::read_to_string(source.join("backend.hcl.example")).unwrap();
            let bucket = hcl_string_argument(&example, "bucket");
            let key = hcl_string_argument(&example, "key");
            assert_eq!(
                key,
                format!("nixbuild/{env}/terraform.tfstate"),
                "{env}: its own state key"
            );
            assert!(example.contains("use_lockfile = true"), "{env}: locking on");
            let real_endpoint = hcl_string_argument(&example, "s3");
            let config = example.replace(&format!("\"{real_endpoint}\""), &format!("\"{endpoint}\""))
                // One attempt: the store is unreachable on purpose.
                + "max_retries = 1\n";
            let dir = tmp.path().join(format!("{env}-{version}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("backend.tf"), &backend_tf).unwrap();
            let init = |config: &str| {
                std::fs::write(dir.join("backend.hcl"), config).unwrap();
                let _ = std::fs::remove_dir_all(dir.join(".terraform"));
                let out = Command::new(&run.bin)
                    .args([
                        "init",
                        "-input=false",
                        "-no-color",
                        "-backend-config=backend.hcl",
                    ])
                    .current_dir(&dir)
                    .env("TF_CLI_CONFIG_FILE", &run.cli_config)
                    .env("HOME", tmp.path())
                    .env("CHECKPOINT_DISABLE", "1")
                    .env("AWS_ACCESS_KEY_ID", "test-access-key")
                    .env("AWS_SECRET_ACCESS_KEY", "test-secret-key")
                    .env_remove("AWS_PROFILE")
                    .env_remove("TF_LOG")
                    .output()
                    .expect("run terraform init");
                assert!(
                    !out.status.success(),
                    "{env} ({version}): init reached no store, yet succeeded"
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr)
            };
            let reaches_the_store = |output: &str| {
                assert!(
                    output.contains(&format!("127.0.0.1:{closed_port}/{bucket}"))
                        && output.contains("connection refused"),
                    "{env} ({version}): init should accept backend.hcl.example and fail only at the \
                     (closed) store, path-style:\n{output}"
                );
            };
            let output = init(&config);
            if locking_supported {
                reaches_the_store(&output);
            } else {
                assert!(
                    output.contains("Unsupported argument") && output.contains("use_lockfile"),
                    "{env} ({version}): Terraform before 1.10 refuses use_lockfile:\n{output}"
                );
                let without_locking: String = config
                    .lines()
                    .filter(|l| !l.starts_with("use_lockfile"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                reaches_the_store(&init(&without_locking));
            }
            eprintln!("environments/{env}: backend.hcl.example accepted by Terraform {version} (locking: {locking_supported})");
        }
    }
}

/// The backend arguments the CI pipeline guide shows are dev's
/// backend.hcl.example, argument for argument (comments aside).
#[test]
fn ci_guide_shows_the_backend_example() {
    let arguments = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                l.split('#')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|l| !l.is_empty())
            .collect()
    };
    let guide =
        std::fs::read_to_string(common::repo_root().join("docs/guides/ci-pipeline.md")).unwrap();
    let shown = guide_snippets(&guide)
        .into_iter()
        .find(|s| s.fragment && s.text.contains("use_lockfile"))
        .expect("ci-pipeline.md shows the backend arguments");
    let example =
        std::fs::read_to_string(examples().join("environments/dev/backend.hcl.example")).unwrap();
    assert_eq!(arguments(&shown.text), arguments(&example));
}

/// `major.minor` of a version string such as `1.15.5` is at least the given.
fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (m, n) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (m, n) >= (major, minor)
}

/// The string value of `name = "…"` in an HCL file (first occurrence).
fn hcl_string_argument(text: &str, name: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|line| {
            let (left, right) = line.split_once('=')?;
            (left.trim() == name).then(|| right.trim().split('"').nth(1).map(str::to_string))?
        })
        .unwrap_or_else(|| panic!("no `{name} = \"…\"` in the backend example"))
}

/// One HCL block of a guide, with what its info string says about it:
/// ```` ```terraform ```` (or `hcl`) followed by optional words:
/// - `fragment`: a piece shown for one point (a backend block, a file of
///   backend arguments), not a configuration: not validated, only listed;
/// - `group=NAME`: the blocks of one guide with the same group (default
///   `main`) are one configuration, copied into one directory together;
/// - `min-terraform=X.Y`: the group needs that Terraform version or later
///   (ephemeral variables, write-only arguments);
/// - `online`: the block needs providers from the registry (hcloud, tls,
///   local). With `NIXBUILD_EXAMPLES_ONLINE=1` its group is installed from
///   the registry and validated whole; otherwise the group is validated
///   without it (nothing else may refer to it), and it is listed as not
///   validated here.
#[derive(Debug)]
struct GuideSnippet {
    line: usize,
    text: String,
    fragment: bool,
    group: String,
    min_terraform: Option<(u32, u32)>,
    online: bool,
}

/// The hand-written guides, docs/guides/*.md, sorted.
fn guide_files() -> Vec<PathBuf> {
    let mut guides: Vec<PathBuf> = std::fs::read_dir(common::repo_root().join("docs/guides"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    guides
}

fn guide_snippets(markdown: &str) -> Vec<GuideSnippet> {
    let mut snippets = Vec::new();
    let mut open: Option<GuideSnippet> = None;
    let mut in_other_block = false;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            if let Some(snippet) = open.as_mut() {
                // Snippets inside list items are indented like their item.
                let indent = line.len() - trimmed.len();
                snippet
                    .text
                    .push_str(&line[indent.min(line.len() - line.trim_start().len())..]);
                snippet.text.push('\n');
            }
            continue;
        };
        if let Some(snippet) = open.take() {
            snippets.push(snippet);
            continue;
        }
        if in_other_block {
            in_other_block = false;
            continue;
        }
        let mut words = info.split_whitespace();
        if !matches!(words.next(), Some("terraform" | "hcl")) {
            in_other_block = true;
            continue;
        }
        let mut snippet = GuideSnippet {
            line: index + 1,
            text: String::new(),
            fragment: false,
            group: "main".into(),
            min_terraform: None,
            online: false,
        };
        for word in words {
            match word.split_once('=') {
                None if word == "fragment" => snippet.fragment = true,
                None if word == "online" => snippet.online = true,
                Some(("group", name)) => snippet.group = name.to_string(),
                Some(("min-terraform", v)) => {
                    let (major, minor) = v.split_once('.').expect("min-terraform=X.Y");
                    snippet.min_terraform = Some((major.parse().unwrap(), minor.parse().unwrap()));
                }
                _ => panic!(
                    "line {}: unknown word `{word}` in the info string `{info}`",
                    index + 1
                ),
            }
        }
        open = Some(snippet);
    }
    assert!(open.is_none(), "an unclosed code block");
    snippets
}

/// Guide snippets compose when copied together: the HCL blocks of each guide
/// that belong together (one `group`, see `GuideSnippet`) are written into one
/// directory, one file each, and pass a real `terraform validate` on every
/// supported version (from the group's `min-terraform`), with this provider
/// through `dev_overrides`. Fragments are listed, never silently dropped.
#[test]
fn guide_snippets_compose_when_copied_together() {
    use std::collections::BTreeMap;
    let online = std::env::var("NIXBUILD_EXAMPLES_ONLINE").is_ok_and(|v| v == "1");
    let tmp = tempfile::tempdir().unwrap();
    let dev_overrides = dev_overrides_config(tmp.path());
    let mirror = mirror_config(tmp.path());
    // The guides log in with ~/.ssh/id_ed25519, which the provider reads at
    // validate: a home with such a key, as the reader's machine has.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(home.join(".ssh/id_ed25519"))
        .output()
        .expect("run ssh-keygen");
    assert!(keygen.status.success(), "{keygen:?}");
    let guides = guide_files();
    let (mut validated, mut fragments, mut not_validated) = (0, Vec::new(), Vec::new());
    let mut invalid: Vec<String> = Vec::new();
    for guide in &guides {
        let name = guide.file_stem().unwrap().to_string_lossy().into_owned();
        let mut groups: BTreeMap<String, Vec<GuideSnippet>> = BTreeMap::new();
        for snippet in guide_snippets(&std::fs::read_to_string(guide).unwrap()) {
            if snippet.fragment {
                fragments.push(format!("{name}.md:{}", snippet.line));
            } else {
                groups
                    .entry(snippet.group.clone())
                    .or_default()
                    .push(snippet);
            }
        }
        for (group, snippets) in groups {
            let label = format!(
                "docs/guides/{name}.md, group `{group}` (lines {})",
                snippets
                    .iter()
                    .map(|s| s.line.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let needs_registry = online && snippets.iter().any(|s| s.online);
            let snippets: Vec<GuideSnippet> = if online {
                snippets
            } else {
                let (offline, registry): (Vec<_>, Vec<_>) =
                    snippets.into_iter().partition(|s| !s.online);
                for snippet in registry {
                    not_validated.push(format!("docs/guides/{name}.md:{}", snippet.line));
                }
                offline
            };
            if snippets.is_empty() {
                continue;
            }
            let min = snippets.iter().filter_map(|s| s.min_terraform).max();
            for version in terraform_versions() {
                if let Some((major, minor)) = min {
                    if !version_at_least(&version, major, minor) {
                        eprintln!(
                            "{label}: needs Terraform >= {major}.{minor}, not run on {version}"
                        );
                        continue;
                    }
                }
                let dir = tmp.path().join(format!("{name}-{group}-{version}"));
                std::fs::create_dir_all(&dir).unwrap();
                for snippet in &snippets {
                    std::fs::write(
                        dir.join(format!("line_{:04}.tf", snippet.line)),
                        &snippet.text,
                    )
                    .unwrap();
                }
                // Like the resource examples, snippets rely on the sources a
                // configuration's versions.tf declares (this provider's, and
                // for registry groups Hetzner's, which is not under
                // hashicorp/) unless they declare them.
                if !snippets
                    .iter()
                    .any(|s| s.text.contains("required_providers"))
                {
                    std::fs::write(
                        dir.join("versions.tf"),
                        format!(
                            "terraform {{\n  required_providers {{\n    nixbuild = {{ source = {} }}\n{}  }}\n}}\n",
                            hcl(SOURCE),
                            if needs_registry {
                                "    hcloud = { source = \"hetznercloud/hcloud\" }\n"
                            } else {
                                ""
                            }
                        ),
                    )
                    .unwrap();
                }
                let mut run = if needs_registry {
                    let run = Run::new(&version, mirror.clone());
                    run.ok(
                        &dir,
                        &["init", "-backend=false", "-input=false", "-no-color"],
                    );
                    run
                } else {
                    Run::new(&version, dev_overrides.clone())
                };
                run.home = Some(home.clone());
                match run.validation_problems(&dir, &label) {
                    Some(problems) => invalid.push(problems),
                    None => {
                        validated += 1;
                        eprintln!("{label}: valid on Terraform {version}");
                    }
                }
            }
        }
    }
    eprintln!(
        "fragments, not validated by design: {}",
        fragments.join(", ")
    );
    for place in &not_validated {
        eprintln!(
            "NOT VALIDATED HERE: the snippet at {place} needs providers from the registry \
             (offline); NIXBUILD_EXAMPLES_ONLINE=1 validates it with its group"
        );
    }
    assert!(
        invalid.is_empty(),
        "guide snippets that do not compose when copied together:\n\n{}",
        invalid.join("\n\n")
    );
    assert!(validated >= 10, "only {validated} snippet groups validated");
}

/// Every complete GitHub workflow a guide shows (a `yaml` block with `name:`
/// and `jobs:`) is actionlint-clean, shellcheck over its `run:` blocks
/// included, like examples/ci/builders.yml.
#[test]
fn guide_workflows_lint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for guide in guide_files() {
        let text = std::fs::read_to_string(&guide).unwrap();
        for (index, block) in text.split("\n```yaml\n").skip(1).enumerate() {
            let block = block.split("\n```").next().unwrap();
            if !(block.starts_with("name:") && block.contains("\njobs:")) {
                continue;
            }
            let name = guide.file_stem().unwrap().to_string_lossy();
            let file = tmp.path().join(format!("{name}-{index}.yml"));
            std::fs::write(&file, format!("{block}\n")).unwrap();
            assert_actionlint_clean(&file, &format!("the workflow of docs/guides/{name}.md"));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no complete workflow found in the guides");
}
