//! The `push` block of `nixbuild_builder`: a Nix `post-build-hook` that
//! queues every path the builder builds (its own builds and those it runs for
//! remote clients) and a worker that signs and copies them to any store
//! `nix copy --to` writes, without ever holding up or failing a build. Its
//! type (its schema), validation, the files it puts on the host, the converge
//! steps, drift check and removal; the builder calls these and holds nothing
//! else of it. The hook line itself is part of the managed `nixbuild.conf`
//! ([`HOOK_PATH`]).

use base64::Engine;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::blocks::{only_at, Applying, Block, Checking, CleanPhase, Cleaning, Phase, Queue};
pub use super::config::PushBlock;
use super::config::{known_strings, BuilderPrivate, BuilderState};
use super::watch_store::Secrets;
use crate::cache::store::{validate_secret_key, validate_store_uri};
use crate::nix::conf::sha256_hex;
use crate::resources::cache_push::compile_exclude;
use crate::secrets::Secret;
use crate::ssh::steps::Step;
use crate::ssh::Remote;
use crate::write_only::{content_fingerprint, effective, file_fingerprint, Pair};

/// Where the hook is installed; `post-build-hook` in the managed config names it.
pub const HOOK_PATH: &str = "/etc/nixbuild/push/hook";
pub const SERVICE_UNIT: &str = "nixbuild-push.service";
pub const PATH_UNIT: &str = "nixbuild-push.path";
/// The worker's log on hosts without systemd (with systemd: the journal of [`SERVICE_UNIT`]).
pub const LOG_FILE: &str = "/var/log/nixbuild-push.log";

pub struct Push;

#[async_trait::async_trait]
impl Block for Push {
    fn validate(&self, config: &BuilderState, diags: &mut Diagnostics) {
        validate(config, diags);
    }

    fn write_only_args(&self, state: &BuilderState) -> Vec<&'static str> {
        write_only_args(&state.push)
    }

    /// Installed before the config names the hook (the daemon never runs a
    /// missing one), removed after the daemon restarted without the line.
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        let value = &apply.state.push;
        match phase {
            Phase::BeforeConfig => install_step(value).into_iter().collect(),
            Phase::AfterRestart => remove_unless_configured_step(value).into_iter().collect(),
            Phase::BeforeAnyChange | Phase::AfterConfig => vec![],
        }
    }

    fn check_step(&self, checking: &Checking) -> Option<Step> {
        check_step(&checking.state.push)
    }

    fn drift(&self, checking: &Checking, output: Option<&str>) -> Vec<String> {
        output
            .map(|text| drift_in(&checking.state.push, text, checking.private))
            .unwrap_or_default()
    }

    fn record_applied(&self, state: &BuilderState, private: &mut BuilderPrivate, _: &Secrets) {
        private.push_key_digest = applied_key_digest(&state.push, &private.token_salt);
    }

    /// After the daemon restarted without the managed config's hook line.
    fn clean_steps(&self, phase: CleanPhase, _clean: &Cleaning) -> Vec<Step> {
        only_at(phase, CleanPhase::AfterRestart, || vec![clean_step()])
    }

    /// What the builder built but has not uploaded yet would go with the host.
    fn queue(&self, state: &BuilderState) -> Option<Queue> {
        state.push.is_value().then(|| Queue {
            what: "Push queue",
            lost: "Builds still queued on the host for the `push` store",
            at: AttributePath::new("push"),
        })
    }

    async fn drain(
        &self,
        remote: &Remote,
        deadline: tokio::time::Instant,
        _keep: bool,
        host: &str,
        diags: &mut Diagnostics,
    ) -> Option<()> {
        drain(remote, deadline, host, diags).await
    }

    fn drain_timed_out(&self, host: &str, timeout: std::time::Duration, diags: &mut Diagnostics) {
        timed_out(host, timeout, diags);
    }
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
    for (key, name) in [
        (&block.secret_key, "secret_key"),
        (&block.secret_key_wo, "secret_key_wo"),
    ] {
        if let Value::Value(key) = key {
            if let Err(e) = validate_secret_key(key.expose()) {
                diags.error(format!("Invalid push {name}"), e, at(name));
            }
        }
    }
    if block.secret_key.is_null() && block.secret_key_wo.is_null() {
        diags.error(
            "Missing push secret_key",
            "`push.secret_key` (or its write-only twin `push.secret_key_wo`) is required: every pushed path is signed",
            at("secret_key"),
        );
    }
    Pair {
        name: "secret_key",
        plain: &block.secret_key,
        write_only: &block.secret_key_wo,
        version: &block.secret_key_wo_version,
    }
    .validate(
        |name| AttributePath::new("push").index(0).attribute(name),
        diags,
    );
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

/// The private state's name of the key argument that has a write-only twin.
pub const SECRET_KEY: &str = "push.secret_key";

/// `["push.secret_key"]` when the key comes from `secret_key_wo`.
pub fn write_only_args(value: &Value<PushBlock>) -> Vec<&'static str> {
    match value.as_ref_option() {
        Some(block) if !block.secret_key_wo.is_null() => vec![SECRET_KEY],
        _ => vec![],
    }
}

/// The files of the `push` block, as they are written on the host.
struct Files {
    store_uri: String,
    exclude: String,
    /// `None` in a refresh of a key given as `secret_key_wo` (the state
    /// holds none): the key file is then checked by its keyed digest.
    secret_key: Option<Secret>,
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
            secret_key: match effective(&block.secret_key, &block.secret_key_wo) {
                Value::Unknown => return None,
                Value::Null => None,
                Value::Value(key) => Some(Secret::new(key.expose().trim())),
            },
        })
    }

    /// `(name on the host, content)` in the order apply writes them (the
    /// key only when known).
    fn entries(&self) -> Vec<(&'static str, &str)> {
        let mut entries = vec![
            ("hook", crate::scripts::PUSH_HOOK),
            ("store-uri", self.store_uri.as_str()),
            ("exclude", self.exclude.as_str()),
        ];
        if let Some(key) = &self.secret_key {
            entries.push(("secret-key", key.expose()));
        }
        entries.extend([(SERVICE_UNIT, SERVICE), (PATH_UNIT, PATH)]);
        entries
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

/// After a successful apply: the keyed digest of the key file it wrote
/// (empty without the block).
pub fn applied_key_digest(value: &Value<PushBlock>, salt: &str) -> String {
    Files::of(value)
        .and_then(|files| files.secret_key)
        .map(|key| content_fingerprint(salt, Some(key.expose())))
        .unwrap_or_default()
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
    Step::new(name, crate::scripts::PUSH_HOOK_SETUP, &[mode]).serves("push")
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

/// What a drain left waiting on the host: queued (or failed) builds and the
/// out paths they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    pub builds: u64,
    pub paths: u64,
}

/// Destroy, before anything is removed: run the worker until every queued
/// build reached the store, for at most `within` (the host's script stops
/// there and reports what is left).
pub fn drain_step(within: std::time::Duration) -> Step {
    let seconds = within.as_secs().max(1).to_string();
    Step::new(
        "upload the push queue",
        crate::scripts::PUSH_HOOK_SETUP,
        &["drain", &seconds],
    )
    .serves("push")
}

/// The drain's report (`builds=N paths=M`).
pub fn parse_pending(report: &str) -> Result<Pending, String> {
    let mut pending = (None, None);
    for word in report.split_whitespace() {
        match word.split_once('=') {
            Some(("builds", n)) => pending.0 = n.parse().ok(),
            Some(("paths", n)) => pending.1 = n.parse().ok(),
            _ => {}
        }
    }
    match pending {
        (Some(builds), Some(paths)) => Ok(Pending { builds, paths }),
        _ => Err(format!("unexpected report of the push queue: {report:?}")),
    }
}

/// How long before the destroy's deadline the drain stops, so that its
/// report (and the clean steps after it) still fit.
const DRAIN_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Destroy with the block: upload every queued build before the host (or
/// the hook) goes, until `deadline`. `None` after an error saying how many
/// paths are left.
pub async fn drain(
    remote: &Remote,
    deadline: tokio::time::Instant,
    host: &str,
    diags: &mut Diagnostics,
) -> Option<()> {
    let within = std::time::Duration::from_secs(
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(DRAIN_MARGIN)
            .as_secs(),
    );
    tracing::info!(
        host,
        "uploading the push queue before destroy (at most {})",
        humantime::format_duration(within)
    );
    let report = match drain_step(within).run(remote, true).await {
        Ok(out) => out.stdout_text(),
        Err(e) if e.is_interrupted() => {
            crate::context::interrupted(diags, &e, AttributePath::new("push"));
            return None;
        }
        Err(e) => {
            diags.error(
                format!("Cannot upload the push queue of {host}"),
                format!("{e}. The builder is kept: destroying it would lose the builds still queued for the `push` store."),
                AttributePath::new("push"),
            );
            return None;
        }
    };
    match parse_pending(&report) {
        Ok(Pending { builds: 0, .. }) => Some(()),
        Ok(Pending { builds, paths }) => {
            diags.error(
                format!("{paths} built path(s) on {host} were not uploaded"),
                format!(
                    "After {} the push queue of {host} still holds {builds} build(s) ({paths} out path(s)) that the `push` store did not take; destroying the builder now would lose them, so it is kept. The worker's log says why (/var/log/nixbuild-push.log, or `journalctl -u nixbuild-push.service` on systemd hosts). Make the store reachable and destroy again, or raise `timeouts.delete`; to give the builds up, remove the `push` block and apply first.",
                    humantime::format_duration(within)
                ),
                AttributePath::new("push"),
            );
            None
        }
        Err(e) => {
            diags.error(
                format!("Cannot upload the push queue of {host}"),
                e,
                AttributePath::new("push"),
            );
            None
        }
    }
}

/// The destroy of a builder with the block ran out of `timeouts.delete`.
pub fn timed_out(host: &str, timeout: std::time::Duration, diags: &mut Diagnostics) {
    diags.error(
        format!("Uploading the push queue of {host} timed out"),
        format!(
            "gave up after {} (`timeouts.delete`); the builder is kept so that its queued builds are not lost: raise `timeouts.delete`, or remove the `push` block and apply first to give them up",
            humantime::format_duration(timeout)
        ),
        AttributePath::new("timeouts"),
    );
}

/// The check as a step (`None`: no block, nothing to check).
pub fn check_step(value: &Value<PushBlock>) -> Option<Step> {
    Files::of(value).map(|_| step("check push hook", "check"))
}

/// What the check's output `report` shows out of line with the block (a
/// key the state does not hold against its keyed digest in `private`).
pub fn drift_in(value: &Value<PushBlock>, report: &str, private: &BuilderPrivate) -> Vec<String> {
    Files::of(value).map_or_else(Vec::new, |files| {
        drift(
            &files,
            report,
            &private.token_salt,
            &private.push_key_digest,
        )
    })
}

fn drift(files: &Files, report: &str, salt: &str, applied_key: &str) -> Vec<String> {
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
    if files.secret_key.is_none() {
        let path = "/etc/nixbuild/push/secret-key";
        let found = get("secret-key");
        if found.is_empty() {
            drift.push(format!("the push hook's {path} is missing"));
        } else if file_fingerprint(salt, &found) != applied_key {
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

    fn block() -> PushBlock {
        PushBlock {
            store_uri: Value::Value("http://127.0.0.1:8750".into()),
            secret_key: Value::Value(Secret::new(format!("{KEY}\n"))),
            exclude: Value::Value(vec![Value::Value("-doc$".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn drain_reports() {
        assert_eq!(
            parse_pending("builds=2 paths=3\n"),
            Ok(Pending {
                builds: 2,
                paths: 3
            })
        );
        assert_eq!(parse_pending("builds=0 paths=0"), Ok(Pending::default()));
        assert!(parse_pending("").is_err());
        assert!(parse_pending("builds=x paths=1").is_err());
    }

    fn files() -> Files {
        Files::of(&Value::Value(block())).unwrap()
    }

    /// `drift` with no keyed digest (the state holds the key).
    fn drift(files: &Files, report: &str) -> Vec<String> {
        super::drift(files, report, "salt", "")
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
        assert_eq!(files.secret_key.as_ref().unwrap().expose(), KEY);
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

    /// A key given as `secret_key_wo`: written like `secret_key` at apply;
    /// a refresh (the state holds no key) checks the file's digest against
    /// the keyed fingerprint the apply recorded.
    #[test]
    fn a_write_only_key_is_checked_by_its_keyed_digest() {
        let mut wo = block();
        wo.secret_key_wo = std::mem::take(&mut wo.secret_key);
        wo.secret_key_wo_version = Value::Value(1);
        let applied = Files::of(&Value::Value(wo.clone())).unwrap();
        assert_eq!(applied.stdin(), files().stdin());
        assert_eq!(write_only_args(&Value::Value(wo.clone())), [SECRET_KEY]);
        assert!(write_only_args(&Value::Value(block())).is_empty());
        let digest = applied_key_digest(&Value::Value(wo.clone()), "salt");
        assert_eq!(digest, applied_key_digest(&Value::Value(block()), "salt"));
        assert!(!digest.is_empty() && !digest.contains(&sha256_hex(KEY.as_bytes())));

        // As a refresh sees it: the plugin layer nulls `secret_key_wo`.
        wo.secret_key_wo = Value::Null;
        let refreshed = Files::of(&Value::Value(wo)).unwrap();
        assert!(refreshed.secret_key.is_none());
        let host = report(&files(), "systemd");
        assert!(super::drift(&refreshed, &host, "salt", &digest).is_empty());
        let changed = host.replace(&sha256_hex(KEY.as_bytes()), &sha256_hex(b"another key"));
        assert_eq!(
            super::drift(&refreshed, &changed, "salt", &digest),
            ["the push hook's /etc/nixbuild/push/secret-key was changed on the host"]
        );
        let missing = host.replace(
            &format!("secret-key={}", sha256_hex(KEY.as_bytes())),
            "secret-key=",
        );
        assert_eq!(
            super::drift(&refreshed, &missing, "salt", &digest),
            ["the push hook's /etc/nixbuild/push/secret-key is missing"]
        );
    }

    #[test]
    fn key_pairs_are_checked() {
        let errors = |block: PushBlock| {
            let mut diags = Diagnostics::default();
            validate(
                &BuilderState {
                    push: Value::Value(block),
                    ..Default::default()
                },
                &mut diags,
            );
            diags
                .errors
                .iter()
                .map(|d| format!("{}: {:?}", d.summary, d.attribute))
                .collect::<Vec<_>>()
        };
        assert!(errors(block()).is_empty());
        let mut both = block();
        both.secret_key_wo = both.secret_key.clone();
        let e = errors(both);
        assert!(e.len() == 1 && e[0].contains("secret_key_wo"), "{e:?}");
        let mut neither = block();
        neither.secret_key = Value::Null;
        let e = errors(neither.clone());
        assert!(
            e.len() == 1 && e[0].contains("Missing push secret_key"),
            "{e:?}"
        );
        neither.secret_key_wo_version = Value::Value(3);
        let e = errors(neither);
        assert!(
            e.iter().any(|e| e.contains("secret_key_wo_version")),
            "{e:?}"
        );
        let mut bad = block();
        bad.secret_key_wo = Value::Value(Secret::new("not a key"));
        bad.secret_key = Value::Null;
        let e = errors(bad);
        assert!(
            e.len() == 1 && e[0].contains("Invalid push secret_key_wo"),
            "{e:?}"
        );
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
