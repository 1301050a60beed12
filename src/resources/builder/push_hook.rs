//! The `push` block of `nixbuild_builder`: a Nix `post-build-hook` that
//! queues every path the builder builds (its own builds and those it runs for
//! remote clients) and a worker that signs and copies them to any store
//! `nix copy --to` writes, without ever holding up or failing a build. Its
//! type (its schema), validation, the files it puts on the host, the converge
//! steps, drift check and removal; the builder calls these and holds nothing
//! else of it. The hook line itself is part of the managed `nixbuild.conf`
//! ([`HOOK_PATH`]).

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::config::{known_strings, BuilderState, StrList};
use crate::cache::store::{validate_secret_key, validate_store_uri};
use crate::nix::conf::sha256_hex;
use crate::resources::cache_push::compile_exclude;
use crate::secrets::Secret;
use crate::ssh::steps::Step;
use crate::ssh::{Remote, SshError};
use crate::tfschema::{Optional, Required};

/// Where the hook is installed; `post-build-hook` in the managed config names it.
pub const HOOK_PATH: &str = "/etc/nixbuild/push/hook";
pub const SERVICE_UNIT: &str = "nixbuild-push.service";
pub const PATH_UNIT: &str = "nixbuild-push.path";
/// The worker's log on hosts without systemd (with systemd: the journal of [`SERVICE_UNIT`]).
pub const LOG_FILE: &str = "/var/log/nixbuild-push.log";

/// Push every build to a binary cache or any store `nix copy --to` writes (the generic form of `cachix.watch_store`). Installs a Nix `post-build-hook` (`/etc/nixbuild/push/hook`, named in the managed `nixbuild.conf`) that the daemon runs as root after every build, also the builds it runs for remote clients through a machines file. The hook only queues the built paths and returns: a worker signs each path (with its closure) with `secret_key` and copies it with `nix copy --to`, one queue entry after another, so a slow or unreachable store never holds up or fails a build. On systemd hosts the worker is `nixbuild-push.service`, started by `nixbuild-push.path` when builds are queued, and logs to its journal; elsewhere the hook starts it in the background and it logs to `/var/log/nixbuild-push.log`. A failed push is logged and retried by the next run (after the next build) for a day. A changed or removed file, or (systemd) a stopped `nixbuild-push.path`, shows as drift. Removing the block (or `on_destroy = "clean"`) removes the hook line, the files, the queue and the units.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct PushBlock {
    /// Destination store, as `nix copy --to` takes it: `https://…`/`http://…` (HTTP PUT), `s3://bucket?…`, `file:///dir`, `ssh-ng://user@host`, `ssh://…`, `gs://…`. The worker runs as root on the builder, with root's Nix configuration (credentials such as `netrc-file` or AWS profiles come from there). No `secret-key=` parameter: use `secret_key`.
    #[schemars(with = "Required<String>")]
    pub store_uri: Value<String>,
    /// Binary-cache secret key (`name:base64`, as `nix-store --generate-binary-cache-key` writes it) the worker signs every pushed path with. It travels over the SSH channel's stdin into a root-only 0600 file on the builder (`/etc/nixbuild/push/secret-key`), never on a command line; a refresh compares the file's SHA-256 with this value's, so a changed file shows as drift.
    #[schemars(with = "Required<Secret>")]
    pub secret_key: Value<Secret>,
    /// Regular expressions matched against the name of each built path, the part after `<hash>-` (`hello-2.12`, `hello-2.12-doc`), anywhere in the name unless anchored with `^…$`; a matching out path is not pushed (it still is when a pushed path references it: a binary cache must hold every reference of a path it holds). They are matched on the builder with `grep -E`, so only the syntax both `grep -E` and `nixbuild_cache_push`'s `exclude` read is accepted: no `\d`-style escape classes, `(?…)` groups or lazy quantifiers (write `[0-9]`, plain groups).
    #[schemars(with = "Optional<Vec<String>>")]
    pub exclude: StrList,
}

/// Plan-time checks of the `push` block (and of an `extra_config` that would
/// set its own hook).
pub fn validate(config: &BuilderState, diags: &mut Diagnostics) {
    let Value::Value(block) = &config.push else {
        return;
    };
    let at = |name: &'static str| AttributePath::new("push").index(0).attribute(name);
    match &block.store_uri {
        Value::Value(uri) => {
            if let Err(e) = validate_store_uri(uri) {
                diags.error("Invalid push store_uri", e, at("store_uri"));
            }
        }
        Value::Null => diags.error(
            "Missing push store_uri",
            "`push.store_uri` is required",
            at("store_uri"),
        ),
        Value::Unknown => {}
    }
    match &block.secret_key {
        Value::Value(key) => {
            if let Err(e) = validate_secret_key(key.expose()) {
                diags.error("Invalid push secret_key", e, at("secret_key"));
            }
        }
        Value::Null => diags.error(
            "Missing push secret_key",
            "`push.secret_key` is required: every pushed path is signed",
            at("secret_key"),
        ),
        Value::Unknown => {}
    }
    if let Value::Value(patterns) = &block.exclude {
        let mut seen: Vec<&str> = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let Value::Value(pattern) = pattern else {
                continue;
            };
            let path = at("exclude").index(i as i64);
            if let Err(e) = check_exclude(pattern) {
                diags.error(
                    "Invalid push exclude pattern",
                    format!("`{pattern}`: {e}"),
                    path,
                );
            } else if seen.contains(&pattern.as_str()) {
                diags.error(
                    "Duplicate push exclude pattern",
                    format!("`{pattern}` is listed twice"),
                    path,
                );
            }
            seen.push(pattern);
        }
    }
    let extra = config
        .nix
        .as_ref_option()
        .and_then(|n| n.extra_config.as_ref_option().cloned())
        .unwrap_or_default();
    if extra.lines().any(|l| {
        l.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "post-build-hook")
    }) {
        diags.error(
            "Two post-build hooks",
            "nix.extra_config sets `post-build-hook`, which the `push` block installs: Nix runs one hook only. Remove the line, or the `push` block",
            AttributePath::new("nix").index(0).attribute("extra_config"),
        );
    }
}

/// An `exclude` pattern: valid for `nixbuild_cache_push` (Rust `regex`) and
/// read the same by `grep -E` on the builder.
fn check_exclude(pattern: &str) -> Result<(), String> {
    compile_exclude(pattern)?;
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut previous = None;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next.is_ascii_alphanumeric() {
                        return Err(format!(
                            "`\\{next}`: escape classes differ between grep -E (used on the builder) and Rust regex; write a bracket expression such as `[0-9]`"
                        ));
                    }
                }
                previous = None;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                // A `]` right after `[` or `[^` is part of the class.
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // `[:alpha:]` inside a class.
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
            }
            '[' => {
                return Err(
                    "nested bracket classes are Rust-only; grep -E reads them differently".into(),
                )
            }
            ']' if in_class => in_class = false,
            '(' if !in_class && chars.peek() == Some(&'?') => {
                return Err(
                    "`(?…)` groups and flags are not grep -E syntax; use a plain group `(…)`"
                        .into(),
                )
            }
            '?' if !in_class && matches!(previous, Some('*' | '+' | '?' | '}')) => {
                return Err(
                    "lazy quantifiers (`*?`, `+?`, `??`, `{n,m}?`) are not grep -E syntax".into(),
                )
            }
            '&' | '-' | '~' if in_class && previous == Some(c) => {
                return Err("class set operations (`&&`, `--`, `~~`) are Rust-only".into())
            }
            _ => {}
        }
        previous = Some(c);
    }
    Ok(())
}

/// The files of the `push` block, as they are written on the host.
struct Files {
    store_uri: String,
    exclude: String,
    secret_key: Secret,
}

impl Files {
    /// `None` without the block (or while something is unknown: not at apply).
    fn of(value: &Value<PushBlock>) -> Option<Self> {
        let block = value.as_ref_option()?;
        Some(Self {
            store_uri: format!("{}\n", block.store_uri.as_ref_option()?.trim()),
            exclude: known_strings(&block.exclude)?
                .iter()
                .map(|p| format!("{p}\n"))
                .collect(),
            secret_key: Secret::new(block.secret_key.as_ref_option()?.expose().trim()),
        })
    }

    /// `(name on the host, content)` in the order apply writes them.
    fn entries(&self) -> [(&'static str, &str); 6] {
        [
            ("hook", crate::scripts::PUSH_HOOK),
            ("store-uri", &self.store_uri),
            ("exclude", &self.exclude),
            ("secret-key", self.secret_key.expose()),
            (SERVICE_UNIT, SERVICE),
            (PATH_UNIT, PATH),
        ]
    }

    /// stdin of `push_hook_setup.sh apply`: `NAME BASE64` lines.
    fn stdin(&self) -> Vec<u8> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        self.entries()
            .iter()
            .map(|(name, content)| format!("{name} {}\n", b64(content)))
            .collect::<String>()
            .into_bytes()
    }
}

const SERVICE: &str = "# Managed by terraform-provider-nixbuild (nixbuild_builder push).
[Unit]
Description=Sign and push queued builds to the store of nixbuild_builder's push block

[Service]
Type=oneshot
Nice=10
IOSchedulingClass=idle
ExecStart=/etc/nixbuild/push/hook run
";

const PATH: &str = "# Managed by terraform-provider-nixbuild (nixbuild_builder push).
[Unit]
Description=Start nixbuild-push.service when builds are queued

[Path]
DirectoryNotEmpty=/var/lib/nixbuild/push/queue
Unit=nixbuild-push.service

[Install]
WantedBy=paths.target
";

/// `push_hook_setup.sh MODE` as a step called `name`.
fn step(name: &str, mode: &str) -> Step {
    Step::new(name, crate::scripts::PUSH_HOOK_SETUP, &[mode])
}

/// Apply, before the managed config names the hook: write the hook, its
/// configuration and (systemd) units. `None` without the block.
pub fn install_step(value: &Value<PushBlock>) -> Option<Step> {
    Files::of(value).map(|files| step("set up push hook", "apply").input(files.stdin()))
}

/// Apply without the block, after the daemon runs without the hook line:
/// remove whatever an earlier `push` block left (a no-op on a host with none).
pub fn remove_unless_configured_step(value: &Value<PushBlock>) -> Option<Step> {
    value.is_null().then(clean_step)
}

/// Remove what the block put on the host (a no-op on a host with none).
pub fn clean_step() -> Step {
    step("remove push hook", "clean")
}

/// Read and apply: what is out of line (only with the block).
pub async fn check(remote: &Remote, value: &Value<PushBlock>) -> Result<Vec<String>, SshError> {
    match check_step(value) {
        Some(step) => Ok(drift_in(
            value,
            &step.run(remote, true).await?.stdout_text(),
        )),
        None => Ok(vec![]),
    }
}

/// The check as a step (`None`: no block, nothing to check).
pub fn check_step(value: &Value<PushBlock>) -> Option<Step> {
    Files::of(value).map(|_| step("check push hook", "check"))
}

/// What the check's output `report` shows out of line with the block.
pub fn drift_in(value: &Value<PushBlock>, report: &str) -> Vec<String> {
    Files::of(value).map_or_else(Vec::new, |files| drift(&files, report))
}

fn drift(files: &Files, report: &str) -> Vec<String> {
    let get = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_default()
            .to_string()
    };
    let systemd = get("init") == "systemd";
    let mut drift = Vec::new();
    for (name, content) in files.entries() {
        let unit = name.starts_with("nixbuild-push.");
        if unit && !systemd {
            continue;
        }
        let path = if unit {
            format!("/etc/systemd/system/{name}")
        } else {
            format!("/etc/nixbuild/push/{name}")
        };
        let found = get(name);
        if found.is_empty() {
            drift.push(format!("the push hook's {path} is missing"));
        } else if found != sha256_hex(content.as_bytes()) {
            drift.push(format!("the push hook's {path} was changed on the host"));
        }
    }
    if systemd && get("path_active") != "active" {
        drift.push(format!(
            "the push unit {PATH_UNIT} is `{}`",
            get("path_active")
        ));
    }
    if get("spool") != "yes" {
        drift.push("the push queue under /var/lib/nixbuild/push is missing".into());
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-1:Z0lKmLg3ocfwxXuDvEnbFa/gt1axJPeAjHTuEQJZHn00Lg9n+CaTYHhqKSCqQ4H7cJ/ZNVo7FC+7Z6CQmUtXTw==";

    fn files() -> Files {
        Files::of(&Value::Value(PushBlock {
            store_uri: Value::Value("http://127.0.0.1:8750".into()),
            secret_key: Value::Value(Secret::new(format!("{KEY}\n"))),
            exclude: Value::Value(vec![Value::Value("-doc$".into())]),
        }))
        .unwrap()
    }

    fn report(files: &Files, init: &str) -> String {
        let mut out = format!("init={init}\npath_active=active\nspool=yes\n");
        for (name, content) in files.entries() {
            out.push_str(&format!("{name}={}\n", sha256_hex(content.as_bytes())));
        }
        out
    }

    #[test]
    fn the_key_is_written_trimmed_and_compared_by_digest() {
        let files = files();
        assert_eq!(files.secret_key.expose(), KEY);
        assert!(drift(&files, &report(&files, "systemd")).is_empty());
        let other = report(&files, "other")
            .replace(&sha256_hex(KEY.as_bytes()), &sha256_hex(b"another key"));
        assert_eq!(
            drift(&files, &other),
            ["the push hook's /etc/nixbuild/push/secret-key was changed on the host"]
        );
        // The report shows digests only.
        assert!(!report(&files, "other").contains(KEY));
    }

    #[test]
    fn units_count_on_systemd_hosts_only() {
        let files = files();
        let without_units: String = report(&files, "other")
            .lines()
            .filter(|l| !l.starts_with("nixbuild-push."))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(drift(&files, &without_units).is_empty());
        let on_systemd = without_units.replace("init=other", "init=systemd");
        assert_eq!(drift(&files, &on_systemd).len(), 2, "{on_systemd}");
        let stopped =
            report(&files, "systemd").replace("path_active=active", "path_active=inactive");
        assert_eq!(
            drift(&files, &stopped),
            ["the push unit nixbuild-push.path is `inactive`"]
        );
    }

    #[test]
    fn the_managed_config_names_the_hook_only_with_the_block() {
        let mut state = BuilderState::default();
        let conf = |state: &BuilderState| state.managed_conf(None).map(|c| c.render());
        assert!(!conf(&state).unwrap().contains("post-build-hook"));
        state.push = Value::Value(PushBlock::default());
        assert!(conf(&state)
            .unwrap()
            .lines()
            .any(|l| l == format!("post-build-hook = {HOOK_PATH}")));
        // A `dynamic "push"` block not known yet: the config is not known either.
        state.push = Value::Unknown;
        assert!(conf(&state).is_none());
    }

    #[test]
    fn exclude_patterns_read_the_same_by_grep_and_rust() {
        for ok in [
            "-doc$",
            "^glibc-[0-9.]+$",
            "[[:alpha:]]+-man",
            "a|b",
            "x{2,3}",
            "[]a]",
            "\\.drv$",
        ] {
            assert!(check_exclude(ok).is_ok(), "{ok}");
        }
        for bad in [
            "(",
            "",
            "\\d+",
            "(?i)doc",
            "(?:a)",
            "a*?",
            "a{1,2}?",
            "[a-z&&[^x]]",
            "[a[b]]",
        ] {
            assert!(check_exclude(bad).is_err(), "{bad}");
        }
    }
}
