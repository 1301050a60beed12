//! The `cachix watch-store` service's two secrets and its stop at destroy.
//!
//! Secrets: the Cachix auth token and signing key, each a resource argument
//! with its write-only twin and the provider's fallback. Which value is in
//! effect, the environment file the service reads, the write-only record,
//! the keyed fingerprint and the drift are written here once, for both.
//!
//! Stop: on SIGTERM the real `cachix watch-store` stops watching the store,
//! uploads every path it has queued, says "Waiting to finish: N pushing, M
//! in queue" every second meanwhile, and exits; an upload that keeps failing
//! ends it with the rest of the queue lost (cachix 1.11.1,
//! src/Cachix/Client/PushQueue.hs, `exitOnceQueueIsEmpty`, and `retryAll` in
//! Client/Retry.hs). Destroy stops the unit and waits for that, within the
//! delete timeout. Not here: the unit itself (`scripts/cachix.sh`).

use tf_provider::{AttributePath, Diagnostics};

use super::config::{BuilderPrivate, BuilderState, CachixBlock, WATCH_STORE_UNIT};
use crate::context::{Context, SecretValue};
use crate::secrets::Secret;
use crate::ssh::steps::Step;
use crate::ssh::Remote;
use crate::write_only;

/// One secret of the watch-store environment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStoreSecret {
    AuthToken,
    SigningKey,
}

/// Every secret, in the order of [`CachixBlock::secret_pairs`].
pub const WATCH_STORE_SECRETS: [WatchStoreSecret; 2] =
    [WatchStoreSecret::AuthToken, WatchStoreSecret::SigningKey];

impl WatchStoreSecret {
    /// Its name in [`BuilderPrivate::write_only`].
    pub fn arg(self) -> &'static str {
        match self {
            Self::AuthToken => "cachix.auth_token",
            Self::SigningKey => "cachix.signing_key",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::AuthToken => "auth token",
            Self::SigningKey => "signing key",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::AuthToken => 0,
            Self::SigningKey => 1,
        }
    }

    /// The value in effect: the twin, else the argument, else the provider's.
    pub fn in_effect(self, configured: &Context, state: &BuilderState) -> SecretValue {
        let own = state
            .cachix
            .as_ref_option()
            .map(|c| {
                let pair = &c.secret_pairs()[self.index()];
                write_only::effective(pair.plain, pair.write_only)
            })
            .unwrap_or_default();
        match self {
            Self::AuthToken => configured.cachix.auth_token(&own),
            Self::SigningKey => configured.cachix.signing_key(&own),
        }
    }

    /// Whether its write-only twin is set in `cachix`.
    fn write_only_set(self, cachix: &CachixBlock) -> bool {
        !cachix.secret_pairs()[self.index()].write_only.is_null()
    }

    /// The fingerprint the last apply recorded.
    fn recorded(self, private: &BuilderPrivate) -> &str {
        match self {
            Self::AuthToken => &private.token_fingerprint,
            Self::SigningKey => &private.signing_key_fingerprint,
        }
    }

    fn record(self, private: &mut BuilderPrivate, fingerprint: String) {
        match self {
            Self::AuthToken => private.token_fingerprint = fingerprint,
            Self::SigningKey => private.signing_key_fingerprint = fingerprint,
        }
    }

    /// Keyed by the resource's salt; empty for no value. The token's name
    /// is the one states before the signing key recorded.
    pub fn fingerprint(self, salt: &str, value: Option<&str>) -> String {
        match value.filter(|v| !v.is_empty()) {
            None => String::new(),
            Some(v) => crate::secrets::fingerprint(
                salt,
                &[(
                    &format!("cachix_{}", self.what().replace(' ', "_")),
                    Some(v.to_string()),
                )],
            ),
        }
    }
}

/// The values in effect for one plan, apply or refresh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Secrets([Option<Secret>; 2]);

impl Secrets {
    pub fn in_effect(configured: &Context, state: &BuilderState) -> Self {
        Self(WATCH_STORE_SECRETS.map(|s| s.in_effect(configured, state).secret().cloned()))
    }

    #[cfg(test)]
    pub fn of(token: Option<&str>, signing_key: Option<&str>) -> Self {
        Self([token.map(Secret::new), signing_key.map(Secret::new)])
    }

    pub fn get(&self, secret: WatchStoreSecret) -> Option<&str> {
        self.0[secret.index()].as_ref().map(Secret::expose)
    }

    /// The service's environment file (`NAME=value` lines; values are single
    /// lines, checked at plan time): what the cachix CLI reads.
    pub fn env_file(&self) -> String {
        crate::cache::cachix::credentials_file(
            self.get(WatchStoreSecret::AuthToken),
            self.get(WatchStoreSecret::SigningKey),
        )
    }

    /// Record what an apply wrote (nothing without `watch_store`).
    pub fn record(&self, state: &BuilderState, private: &mut BuilderPrivate) {
        for secret in WATCH_STORE_SECRETS {
            let value = state.watch_store().then(|| self.get(secret)).flatten();
            secret.record(private, secret.fingerprint(&private.token_salt, value));
        }
    }

    /// Drift: a value in effect other than the one written. A value from a
    /// write-only twin is not in the state a refresh sees: only its
    /// `_wo_version` rotates it.
    pub fn drift(&self, private: &BuilderPrivate) -> Vec<String> {
        WATCH_STORE_SECRETS
            .iter()
            .filter(|s| !private.write_only.iter().any(|a| a == s.arg()))
            .filter(|s| s.fingerprint(&private.token_salt, self.get(**s)) != s.recorded(private))
            .map(|s| format!("the Cachix {} changed", s.what()))
            .collect()
    }
}

/// The secrets of `state` whose value comes from their write-only twin (only
/// where they are written: with `watch_store`).
pub fn write_only_args(state: &BuilderState) -> Vec<&'static str> {
    match state.cachix.as_ref_option() {
        Some(cachix) if state.watch_store() => WATCH_STORE_SECRETS
            .iter()
            .filter(|s| s.write_only_set(cachix))
            .map(|s| s.arg())
            .collect(),
        _ => vec![],
    }
}

/// How long before the destroy's deadline the stop gives up waiting, so
/// that its report still fits.
const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The step that stops the service and waits until it exited, at most
/// `within`; `restart`: start it again after (`on_destroy = "keep"`).
pub fn stop_step(within: std::time::Duration, restart: bool) -> Step {
    let seconds = within.as_secs().max(1).to_string();
    Step::new(
        "stop cachix watch-store",
        crate::scripts::WATCH_STORE_STOP,
        &[
            WATCH_STORE_UNIT,
            &seconds,
            if restart { "yes" } else { "no" },
        ],
    )
}

/// What the stop reported: `state=stopped|failed|stopping|absent` and
/// `queued=N` (the last count watch-store printed; absent: unknown).
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    pub state: String,
    pub queued: Option<u64>,
}

pub fn parse_stop(report: &str) -> Result<Stopped, String> {
    let mut state = None;
    let mut queued = None;
    for word in report.split_whitespace() {
        match word.split_once('=') {
            Some(("state", s)) => state = Some(s.to_string()),
            Some(("queued", n)) => queued = n.parse().ok(),
            _ => {}
        }
    }
    state
        .map(|state| Stopped { state, queued })
        .ok_or_else(|| format!("unexpected report of the watch-store stop: {report:?}"))
}

/// Destroy with `watch_store`: stop the service so that it uploads what it
/// queued, until `deadline`. `None` after an error saying how many paths
/// were left (the builder then stays in the state).
pub async fn stop(
    remote: &Remote,
    deadline: tokio::time::Instant,
    restart: bool,
    host: &str,
    diags: &mut Diagnostics,
) -> Option<()> {
    let within = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .saturating_sub(STOP_MARGIN);
    tracing::info!(
        host,
        "stopping cachix watch-store so that it uploads its queue (at most {})",
        humantime::format_duration(std::time::Duration::from_secs(within.as_secs()))
    );
    let at = || {
        AttributePath::new("cachix")
            .index(0)
            .attribute("watch_store")
    };
    let report = match stop_step(within, restart).run(remote, true).await {
        Ok(out) => out.stdout_text(),
        Err(e) if e.is_interrupted() => {
            crate::context::interrupted(diags, &e, at());
            return None;
        }
        Err(e) => {
            diags.error(
                format!("Cannot stop cachix watch-store on {host}"),
                format!("{e}. The builder is kept: destroying it could lose the paths watch-store has not uploaded yet."),
                at(),
            );
            return None;
        }
    };
    let stopped = match parse_stop(&report) {
        Ok(stopped) => stopped,
        Err(e) => {
            diags.error(format!("Cannot stop cachix watch-store on {host}"), e, at());
            return None;
        }
    };
    let left = match stopped.queued {
        Some(n) => format!("{n} store paths were still queued (as watch-store last reported)"),
        None => {
            "how many paths were still queued is unknown (watch-store reported no count)".into()
        }
    };
    let journal = format!("`journalctl -u {WATCH_STORE_UNIT}` on the host says why");
    match stopped.state.as_str() {
        "stopped" | "absent" => Some(()),
        "failed" => {
            diags.error(
                format!("cachix watch-store on {host} exited without uploading its queue"),
                format!("{left}; {journal}. The builder is kept: fix the cache (or its credentials), then destroy again (the paths are still on the builder, but a new watch-store does not push paths built before it started: push them with `cachix push`), or set `cachix.watch_store = false` and apply to give them up."),
                at(),
            );
            None
        }
        _ => {
            diags.error(
                format!("cachix watch-store on {host} did not finish uploading within `timeouts.delete`"),
                format!("{left}; it is still uploading. The builder is kept: raise `timeouts.delete` and destroy again."),
                AttributePath::new("timeouts"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_provider::value::Value;

    #[test]
    fn the_environment_file_holds_what_is_set() {
        assert_eq!(Secrets::of(None, None).env_file(), "");
        assert_eq!(
            Secrets::of(Some("t"), Some("k")).env_file(),
            "CACHIX_AUTH_TOKEN=t\nCACHIX_SIGNING_KEY=k\n"
        );
        assert_eq!(
            Secrets::of(None, Some("k")).env_file(),
            "CACHIX_SIGNING_KEY=k\n"
        );
    }

    #[test]
    fn drift_names_the_secret_that_changed_unless_write_only() {
        let state = BuilderState {
            cachix: Value::Value(CachixBlock {
                watch_store: Value::Value(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut private = BuilderPrivate {
            token_salt: "salt".into(),
            ..Default::default()
        };
        Secrets::of(Some("t"), Some("k")).record(&state, &mut private);
        assert!(!private.signing_key_fingerprint.is_empty());
        assert!(Secrets::of(Some("t"), Some("k")).drift(&private).is_empty());
        assert_eq!(
            Secrets::of(Some("t"), Some("k2")).drift(&private),
            ["the Cachix signing key changed"]
        );
        assert_eq!(
            Secrets::of(Some("t"), None).drift(&private),
            ["the Cachix signing key changed"]
        );
        private.write_only = vec!["cachix.signing_key".into()];
        assert!(Secrets::of(Some("t"), None).drift(&private).is_empty());
        // A state from before the signing key: no key, no drift.
        let mut old = BuilderPrivate {
            token_salt: "salt".into(),
            ..Default::default()
        };
        old.token_fingerprint = WatchStoreSecret::AuthToken.fingerprint("salt", Some("t"));
        assert!(Secrets::of(Some("t"), None).drift(&old).is_empty());
        // Without watch_store nothing is written, nothing recorded.
        let mut none = private.clone();
        Secrets::of(Some("t"), Some("k")).record(&BuilderState::default(), &mut none);
        assert_eq!(none.signing_key_fingerprint, "");
        assert_eq!(none.token_fingerprint, "");
    }

    #[test]
    fn fingerprints_differ_by_secret_salt_and_value() {
        let token = WatchStoreSecret::AuthToken;
        let key = WatchStoreSecret::SigningKey;
        assert_eq!(token.fingerprint("s", None), "");
        assert_eq!(key.fingerprint("s", Some("")), "");
        assert_ne!(
            token.fingerprint("s", Some("a")),
            key.fingerprint("s", Some("a"))
        );
        assert_ne!(
            key.fingerprint("s", Some("a")),
            key.fingerprint("t", Some("a"))
        );
        assert_ne!(
            key.fingerprint("s", Some("a")),
            key.fingerprint("s", Some("b"))
        );
        // The token's fingerprint is the one states before the key recorded.
        assert_eq!(
            token.fingerprint("s", Some("a")),
            crate::secrets::fingerprint("s", &[("cachix_auth_token", Some("a".into()))])
        );
    }

    #[test]
    fn stop_reports() {
        assert_eq!(
            parse_stop("state=failed queued=3\n").unwrap(),
            Stopped {
                state: "failed".into(),
                queued: Some(3)
            }
        );
        assert_eq!(parse_stop("state=stopped").unwrap().queued, None);
        assert!(parse_stop("garbage").is_err());
    }
}
