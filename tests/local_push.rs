//! The local-push recipe (docs/guides/local-push.md): the `cache_build` shell
//! function of `examples/local-push/cache-build.sh`, and the guide's commands,
//! run by a real bash with stand-ins for `nix` and `cachix` on PATH
//! (tests/standins/argv/: they record each call's argv and refuse what the
//! real tools refuse). No store, daemon or cache needed: what is checked is
//! what reaches the two commands, word for word, after the shell has parsed
//! the guide's quoting.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ADR's activation package: the quotes are part of the attribute path.
const ACTIVATION: &str = ".#homeConfigurations.\"me@laptop\".activationPackage";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn guide() -> String {
    std::fs::read_to_string(root().join("docs/guides/local-push.md")).unwrap()
}

/// The body of every fenced block of `text` whose info string is `lang`.
fn fenced_blocks(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None if info.split_whitespace().next() == Some(lang) => {
                    current = Some(String::new());
                }
                None => current = Some(String::from("\0other")),
            }
            continue;
        }
        if let Some(block) = current.as_mut() {
            block.push_str(trimmed);
            block.push('\n');
        }
    }
    blocks.retain(|b| !b.starts_with("\0other"));
    blocks
}

/// One recorded call: which tool, its argv, and push's stdin if any.
#[derive(Debug)]
struct Call {
    tool: String,
    argv: Vec<String>,
    stdin: Option<String>,
}

/// A scratch PATH with the stand-ins, and the directory they record into.
struct Sandbox {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let log = dir.path().join("calls");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&log).unwrap();
        for tool in ["nix", "cachix"] {
            std::fs::copy(
                root().join("tests/standins/argv").join(tool),
                bin.join(tool),
            )
            .unwrap();
        }
        Self {
            _dir: dir,
            bin,
            log,
        }
    }

    /// `script` run by bash with the function sourced, `args` as `$@`.
    fn bash(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "set -u\n. {}\n{script}",
                shell_word(&root().join("examples/local-push/cache-build.sh"))
            ))
            .arg("bash")
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("ARGV_LOG_DIR", &self.log)
            .env_remove("CACHIX_AUTH_TOKEN")
            .env_remove("CACHIX_SIGNING_KEY")
            .env_remove("NIX_STANDIN_FAIL_BUILD");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("run bash")
    }

    fn calls(&self) -> Vec<Call> {
        let mut names: Vec<String> = std::fs::read_dir(&self.log)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".stdin"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let raw = std::fs::read(self.log.join(&name)).unwrap();
                let argv = raw
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8(a.to_vec()).unwrap())
                    .collect::<Vec<_>>();
                // printf '%s\0' ends every argument with NUL: drop the empty tail.
                let argv = argv[..argv.len() - 1].to_vec();
                let stdin = std::fs::read_to_string(self.log.join(format!("{name}.stdin"))).ok();
                Call {
                    tool: name.split_once('-').unwrap().1.to_string(),
                    argv,
                    stdin,
                }
            })
            .collect()
    }
}

/// A path as one single-quoted shell word (test paths hold no `'`).
fn shell_word(path: &Path) -> String {
    let text = path.to_str().unwrap();
    assert!(!text.contains('\''));
    format!("'{text}'")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Watch-exec around `nix build`, then path-info, then push of its output:
/// each with exactly `installables` (plus options) as given.
fn assert_cache_build_calls(calls: &[Call], cache: &str, args: &[&str]) {
    let tools: Vec<&str> = calls.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(tools, ["cachix", "nix", "nix", "cachix"], "{calls:#?}");
    let mut watch = strings(&["watch-exec", cache, "--", "nix", "build"]);
    watch.extend(strings(args));
    assert_eq!(calls[0].argv, watch, "cachix watch-exec");
    let mut build = strings(&["build"]);
    build.extend(strings(args));
    assert_eq!(calls[1].argv, build, "nix build");
    let mut path_info = strings(&["path-info", "--recursive"]);
    path_info.extend(strings(args));
    assert_eq!(calls[2].argv, path_info, "nix path-info");
    assert_eq!(calls[3].argv, strings(&["push", cache]), "cachix push");
    let pushed = calls[3].stdin.as_deref().expect("push read stdin");
    let installables = args.iter().filter(|a| !a.starts_with('-')).count();
    assert_eq!(
        pushed.lines().count(),
        installables,
        "push gets what path-info printed: {pushed}"
    );
    assert!(pushed.lines().all(|l| l.starts_with("/nix/store/")));
}

/// The file the guide includes and the function the guide shows are the same
/// code, line for line.
#[test]
fn guide_shows_the_function_of_the_example_file() {
    let file = std::fs::read_to_string(root().join("examples/local-push/cache-build.sh")).unwrap();
    let function = file
        .split_once("cache_build() {")
        .map(|(_, rest)| format!("cache_build() {{{rest}"))
        .expect("cache-build.sh defines cache_build");
    let normalize = |s: &str| s.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    let shown = fenced_blocks(&guide(), "sh")
        .into_iter()
        .find(|b| b.starts_with("cache_build() {"))
        .expect("local-push.md shows cache_build");
    assert_eq!(normalize(&shown), normalize(&function));
}

/// The guide's own invocation, parsed by bash as a user would paste it: the
/// activation package reaches watch-exec, nix build and path-info with its
/// double quotes, and the closure goes to the cache.
#[test]
fn guide_invocation_keeps_the_quotes_of_the_activation_package() {
    let line = fenced_blocks(&guide(), "sh")
        .into_iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .find(|l| l.starts_with("cache_build "))
        .expect("local-push.md runs cache_build");
    let sandbox = Sandbox::new();
    let out = sandbox.bash(&line, &[], &[("CACHIX_AUTH_TOKEN", "test-token")]);
    ok(&out, &line);
    assert_cache_build_calls(&sandbox.calls(), "my-team", &[ACTIVATION]);
}

/// Installables that a shell or a careless function would mangle: spaces,
/// globs, `$`, backslashes, escaped quotes inside quoted names; and options.
#[test]
fn cache_build_passes_every_argument_unchanged() {
    let args = [
        ACTIVATION,
        ".#packages.x86_64-linux.\"name with spaces\"",
        ".#legacyPackages.x86_64-linux.\"a*b?[c]\"",
        ".#x.\"$HOME\".\"back\\\\slash\".\"q\\\"uote\"",
        "-L",
    ];
    let sandbox = Sandbox::new();
    let out = sandbox.bash(
        "cache_build my-team \"$@\"",
        &args,
        &[("CACHIX_SIGNING_KEY", "k")],
    );
    ok(&out, "cache_build with tricky installables");
    assert_cache_build_calls(&sandbox.calls(), "my-team", &args);
}

/// A failed build pushes nothing and fails the function; so does a missing
/// Cachix credential (refused by cachix before the build runs); and a call
/// without an installable is a usage error that runs nothing.
#[test]
fn cache_build_fails_without_pushing() {
    let sandbox = Sandbox::new();
    let out = sandbox.bash(
        "cache_build my-team \"$@\"",
        &[ACTIVATION],
        &[("CACHIX_AUTH_TOKEN", "t"), ("NIX_STANDIN_FAIL_BUILD", "1")],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed build fails the function"
    );
    let tools: Vec<String> = sandbox.calls().into_iter().map(|c| c.tool).collect();
    assert_eq!(tools, ["cachix", "nix"], "nothing after the failed build");

    let sandbox = Sandbox::new();
    let out = sandbox.bash("cache_build my-team \"$@\"", &[ACTIVATION], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Neither auth token nor signing key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Vec<String> = sandbox.calls().into_iter().map(|c| c.tool).collect();
    assert_eq!(tools, ["cachix"], "no build without credentials");

    let sandbox = Sandbox::new();
    let out = sandbox.bash("cache_build my-team", &[], &[("CACHIX_AUTH_TOKEN", "t")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: cache_build"));
    assert!(sandbox.calls().is_empty());
}

/// The guide's manual form (`nix build '…'` then path-info into push) keeps
/// the quotes too: the line the issue found unquoted is quoted for the shell.
#[test]
fn guide_manual_push_keeps_the_quotes() {
    let block = fenced_blocks(&guide(), "sh")
        .into_iter()
        .find(|b| b.starts_with("nix build ") && b.contains("activationPackage"))
        .expect("local-push.md builds the activation package by hand");
    let sandbox = Sandbox::new();
    let out = sandbox.bash(&block, &[], &[("CACHIX_AUTH_TOKEN", "t")]);
    ok(&out, &block);
    let calls = sandbox.calls();
    assert_eq!(calls[0].tool, "nix");
    assert_eq!(calls[0].argv, strings(&["build", ACTIVATION]));
}
