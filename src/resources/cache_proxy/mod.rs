//! Resource `nixbuild_cache_proxy`: a caching HTTP proxy for Nix binary caches
//! on a systemd host, with the distribution's nginx run as a service of its
//! own. Apply writes the rendered files (the TLS key over stdin) and finishes
//! with the same read-only check that Read runs; Read reports hand edits and
//! a stopped service as drift, which plans an update that restores them.
//!
//! - [`config`]: arguments, schema, plan-time validation;
//! - [`nginx`]: the nginx config and systemd unit rendered from them.

pub mod config;
pub mod nginx;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::context::{Context, KeysSeen, Outcome, Prior, Purpose, Route, Shared, Target};
use crate::nix::conf::sha256_hex;
use crate::resources::timeouts::Operation;
use crate::ssh::{Remote, SshError};
use crate::write_only::{self, content_fingerprint, file_fingerprint};
use config::{
    check_upstream_url, parse_size, parse_ttl, strings, CacheProxyState, ProxyPrivate,
    DEFAULT_MAX_SIZE, DEFAULT_NARINFO_TTL, DEFAULT_NAR_TTL, DEFAULT_NEGATIVE_TTL, DEFAULT_PRIORITY,
};
use nginx::{ProxyConfig, CACHE_DIR, CONF_DIR, UNIT};

/// The files the host should hold. The key is kept apart so nothing prints it.
struct Desired {
    conf: String,
    unit: String,
    certificate: Option<String>,
    /// `None` without TLS, and in a refresh of a key given as
    /// `tls.private_key_wo` (the state holds none: the key file is then
    /// checked by its keyed digest in the private state).
    private_key: Option<crate::secrets::Secret>,
}

impl Desired {
    /// `None` while an argument is unknown (or invalid: validation said so).
    fn of(state: &CacheProxyState) -> Option<Self> {
        let Value::Value(blocks) = &state.upstream else {
            return None;
        };
        let mut upstreams = Vec::new();
        for block in blocks {
            upstreams.push(check_upstream_url(block.url.as_ref_option()?).ok()?);
        }
        let text = |v: &Value<String>, default: &str| -> Option<String> {
            match v {
                Value::Unknown => None,
                Value::Null => Some(default.to_string()),
                Value::Value(s) => Some(s.trim().to_string()),
            }
        };
        let max_size = text(&state.max_size, DEFAULT_MAX_SIZE)?;
        parse_size(&max_size).ok()?;
        let ttl = |v: &Value<String>, default: &str| parse_ttl(&text(v, default)?).ok();
        let (certificate, private_key) = match &state.tls {
            Value::Unknown => return None,
            Value::Null => (None, None),
            Value::Value(tls) => (
                Some(tls.certificate.as_ref_option()?.clone()),
                match write_only::effective(&tls.private_key, &tls.private_key_wo) {
                    Value::Unknown => return None,
                    key => key.as_option(),
                },
            ),
        };
        if state.priority.is_unknown() {
            return None;
        }
        let proxy = ProxyConfig {
            upstreams,
            listen: state.listen_text()?,
            tls: certificate.is_some(),
            max_size,
            nar_ttl: ttl(&state.nar_ttl, DEFAULT_NAR_TTL)?,
            narinfo_ttl: ttl(&state.narinfo_ttl, DEFAULT_NARINFO_TTL)?,
            negative_ttl: ttl(&state.negative_ttl, DEFAULT_NEGATIVE_TTL)?,
            priority: state.priority.as_option().unwrap_or(DEFAULT_PRIORITY),
        };
        Some(Self {
            conf: proxy.render(),
            unit: nginx::unit(),
            certificate,
            private_key,
        })
    }

    fn conf_hash(&self) -> String {
        sha256_hex(self.conf.as_bytes())
    }

    /// stdin of `cache_proxy.sh apply`: `NAME BASE64` lines.
    fn stdin(&self) -> Vec<u8> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut out = format!(
            "nginx.conf {}\nunit {}\n",
            b64(self.conf.as_bytes()),
            b64(self.unit.as_bytes())
        );
        if let (Some(cert), Some(key)) = (&self.certificate, &self.private_key) {
            out.push_str(&format!("tls.crt {}\n", b64(cert.as_bytes())));
            out.push_str(&format!("tls.key {}\n", b64(key.expose().as_bytes())));
        }
        out.into_bytes()
    }

    /// What the check found out of line, in words (a key the state does
    /// not hold against its keyed digest in `private`).
    fn drift(&self, found: &HashMap<String, String>, private: &ProxyPrivate) -> Vec<String> {
        let get = |k: &str| found.get(k).map(String::as_str).unwrap_or_default();
        let mut drift = Vec::new();
        let file = |key: &str, want: Option<String>, what: &str, drift: &mut Vec<String>| {
            let have = get(key);
            match want {
                Some(_) if have.is_empty() => drift.push(format!("{what} is missing")),
                Some(want) if want != have => drift.push(format!("{what} was changed on the host")),
                None if !have.is_empty() => {
                    drift.push(format!("{what} is on the host, but no TLS is configured"))
                }
                _ => {}
            }
        };
        file(
            "config_sha256",
            Some(self.conf_hash()),
            &format!("{CONF_DIR}/nginx.conf"),
            &mut drift,
        );
        file(
            "unit_sha256",
            Some(sha256_hex(self.unit.as_bytes())),
            &format!("/etc/systemd/system/{UNIT}"),
            &mut drift,
        );
        file(
            "tls_crt_sha256",
            self.certificate.as_ref().map(|c| sha256_hex(c.as_bytes())),
            &format!("{CONF_DIR}/tls.crt"),
            &mut drift,
        );
        let key_path = format!("{CONF_DIR}/tls.key");
        match (&self.certificate, &self.private_key) {
            (Some(_), None) => {
                let have = get("tls_key_sha256");
                if have.is_empty() {
                    drift.push(format!("{key_path} is missing"));
                } else if file_fingerprint(&private.salt, have) != private.tls_key_digest {
                    drift.push(format!("{key_path} was changed on the host"));
                }
            }
            (_, key) => file(
                "tls_key_sha256",
                key.as_ref().map(|k| sha256_hex(k.expose().as_bytes())),
                &key_path,
                &mut drift,
            ),
        }
        if get("active") != "active" {
            drift.push(format!("the service {UNIT} is `{}`", get("active")));
        }
        if get("enabled") != "enabled" && get("active") != "absent" {
            drift.push(format!(
                "the service {UNIT} is `{}` at boot",
                get("enabled")
            ));
        }
        if get("nginx") != "yes" {
            drift.push("nginx is not installed".into());
        }
        drift
    }
}

pub struct CacheProxyResource {
    shared: Arc<Shared>,
}

impl CacheProxyResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The connection target: `host` and `ssh`, with the key pinned in
    /// `pinned`. The bastion's pin comes from `state` (on apply, as planned:
    /// kept, configured, or unknown for a new bastion).
    fn target<'a>(
        state: &'a CacheProxyState,
        host: &'a str,
        pinned: Option<&'a str>,
    ) -> Target<'a> {
        Target::new(host, &state.ssh)
            .pinned(pinned)
            .pinned_bastion(state.bastion_host_key.as_ref_option().map(String::as_str))
    }

    /// `cache_proxy.sh MODE …`.
    async fn script(
        remote: &Remote,
        step: &str,
        mode: &str,
        stdin: Option<&[u8]>,
    ) -> Result<crate::ssh::exec::ExecOutput, SshError> {
        remote
            .run_script(
                step,
                crate::scripts::CACHE_PROXY,
                &[mode, CONF_DIR, UNIT, CACHE_DIR],
                stdin,
                true,
            )
            .await
    }

    async fn check(remote: &Remote) -> Result<HashMap<String, String>, SshError> {
        let out = Self::script(remote, "check cache proxy", "check", None).await?;
        Ok(out
            .stdout_text()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The attributes that follow from the arguments alone.
    fn derive(state: &mut CacheProxyState) {
        state.substituter_url = state.substituter_url();
        state.trusted_public_keys = state.upstream_keys();
        state.config_hash = match Desired::of(state) {
            Some(desired) => Value::Value(desired.conf_hash()),
            None => Value::Unknown,
        };
        state.drift = Value::Value(vec![]);
    }

    /// Record what the check found.
    fn observe(
        state: &mut CacheProxyState,
        remote: &Remote,
        found: &HashMap<String, String>,
        private: &ProxyPrivate,
    ) {
        state.id = Value::Value(remote.endpoint().to_string());
        state.host_key = Value::Value(remote.host_key().openssh_line());
        state.bastion_host_key = remote.bastion_host_key().map(|k| k.openssh_line()).into();
        let drift = Desired::of(state)
            .map(|d| d.drift(found, private))
            .unwrap_or_default();
        state.substituter_url = state.substituter_url();
        state.trusted_public_keys = state.upstream_keys();
        state.config_hash = Value::Value(found.get("config_sha256").cloned().unwrap_or_default());
        state.drift = strings(&drift);
    }

    /// Plan time: a host that is reachable and runs no systemd is an error
    /// now, not halfway through an apply. An unreachable host (it may still
    /// be booting), or one whose host key is not known yet (a plan never
    /// trusts on first use), is checked by the apply.
    async fn check_systemd(configured: &Context, state: &CacheProxyState, diags: &mut Diagnostics) {
        let Value::Value(host) = &state.host else {
            return;
        };
        let mut quiet = Diagnostics::default();
        let outcome = configured
            .connect(&Self::target(state, host, None), Purpose::Plan, &mut quiet)
            .await;
        let Outcome::Connected(remote) = outcome else {
            diags.errors.extend(quiet.errors);
            return;
        };
        if let Ok(Ok(found)) = tokio::time::timeout(
            crate::context::policy::READ_COMMAND_BUDGET,
            Self::check(&remote),
        )
        .await
        {
            if found.get("init").map(String::as_str) == Some("other") {
                diags.error(
                    format!("{host} does not run systemd"),
                    "nixbuild_cache_proxy runs nginx as a systemd service; this host has no systemd (no /run/systemd/system). Use a systemd host, or run a caching nginx there yourself",
                    AttributePath::new("host"),
                );
            }
        }
    }

    async fn apply(
        &self,
        diags: &mut Diagnostics,
        mut state: CacheProxyState,
        private: Value<ProxyPrivate>,
        pinned: Option<String>,
        purpose: Purpose,
        timeout: std::time::Duration,
    ) -> Option<(CacheProxyState, Value<ProxyPrivate>)> {
        let configured = self.shared.get(diags)?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        let Some(desired) = Desired::of(&state) else {
            diags.error(
                "Cache proxy arguments are not known at apply",
                "every upstream, size and TTL must be known",
                AttributePath::new("upstream"),
            );
            return None;
        };
        if desired.certificate.is_some() && desired.private_key.is_none() {
            diags.error(
                "No TLS private key at apply",
                "set `tls.private_key` or `tls.private_key_wo` (the write-only value reaches the provider only on Terraform ≥ 1.11)",
                AttributePath::new("tls").index(0).attribute("private_key"),
            );
            return None;
        }
        let mut private = private.as_option().unwrap_or_default();
        if private.salt.is_empty() {
            private.salt = crate::secrets::random_salt();
        }
        private.tls_key_digest = content_fingerprint(
            &private.salt,
            desired.private_key.as_ref().map(|k| k.expose()),
        );
        let seen = KeysSeen::default();
        let work = async {
            let remote = configured
                .connect_or_fail(
                    &Self::target(&state, &host, pinned.as_deref()),
                    purpose,
                    diags,
                )
                .await?;
            seen.note(&remote);
            let applied = Self::script(
                &remote,
                "set up cache proxy",
                "apply",
                Some(&desired.stdin()),
            )
            .await;
            if let Err(e) = applied {
                diags.error(
                    format!("Setting up the cache proxy on {host} failed"),
                    e.to_string(),
                    AttributePath::new("host"),
                );
                return None;
            }
            match Self::check(&remote).await {
                Ok(found) => Some((remote, found)),
                Err(e) => {
                    diags.error(
                        format!("Checking the cache proxy on {host} failed"),
                        e.to_string(),
                        AttributePath::new("host"),
                    );
                    None
                }
            }
        };
        let worked = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                diags.error(
                    format!("Setting up the cache proxy on {host} timed out"),
                    format!(
                        "gave up after {}; raise `timeouts`, then apply again",
                        humantime::format_duration(timeout)
                    ),
                    AttributePath::new("timeouts"),
                );
                None
            }
        };
        let Some((remote, found)) = worked else {
            // What the failed create installed (unit, TLS key) stays known:
            // tainted, with its pins, so destroy or the re-apply cleans up
            // against the same key.
            let keys = seen.kept_by_failed(purpose)?;
            state.host_key = Value::Value(keys.host_key);
            state.bastion_host_key = keys.bastion_host_key.into();
            settle_unknowns(&mut state);
            return Some((state, Value::Value(private)));
        };
        Self::observe(&mut state, &remote, &found, &private);
        let drift = config_drift(&state);
        if !drift.is_empty() {
            diags.error(
                format!("The cache proxy on {host} did not converge"),
                format!(
                    "after every step succeeded, the check still finds: {}",
                    drift.join("; ")
                ),
                AttributePath::new("host"),
            );
            // A create keeps what it found (tainted), an update its prior.
            settle_unknowns(&mut state);
            return (purpose == Purpose::Create).then_some((state, Value::Value(private)));
        }
        Some((state, Value::Value(private)))
    }
}

fn config_drift(state: &CacheProxyState) -> Vec<String> {
    match &state.drift {
        Value::Value(items) => items
            .iter()
            .filter_map(|v| v.as_ref_option().cloned())
            .collect(),
        _ => vec![],
    }
}

#[async_trait]
impl Resource for CacheProxyResource {
    type State<'a> = CacheProxyState;
    /// Null in a state of a release before [`ProxyPrivate`].
    type PrivateState<'a> = Value<ProxyPrivate>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        crate::tfschema::or_diag(config::schema(), diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        config::validate(&config, diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let configured = self.shared.get(diags)?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        let pinned = state.host_key.as_ref_option().cloned();
        let remote = match configured
            .connect(
                &Self::target(&state, &host, pinned.as_deref()),
                Purpose::Read,
                diags,
            )
            .await
        {
            Outcome::Connected(remote) => remote,
            Outcome::KeepState | Outcome::Interrupted => return Some((state, private_state)),
            Outcome::Failed => return None,
        };
        let found =
            match Context::within_read_budget(&remote, "check cache proxy", Self::check(&remote))
                .await
            {
                Ok(found) => found,
                Err(e) if e.is_interrupted() => {
                    crate::context::interrupted(diags, &e, AttributePath::new("host"));
                    return Some((state, private_state));
                }
                Err(e) => {
                    diags.warning(
                        format!("Checking {host} failed; keeping the last known state"),
                        e.to_string(),
                        AttributePath::new("host"),
                    );
                    return Some((state, private_state));
                }
            };
        let mut state = state;
        Self::observe(
            &mut state,
            &remote,
            &found,
            &private_state.as_ref_option().cloned().unwrap_or_default(),
        );
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let configured = self.shared.get(diags)?;
        let mut state = proposed_state;
        state.id = match &state.host {
            Value::Value(host) => {
                let settings = configured.settings(&Target::new(host, &state.ssh), diags)?;
                Value::Value(settings.endpoint.to_string())
            }
            _ => Value::Unknown,
        };
        let pins = configured.plan_pins(&Route::new(&state.host, &state.ssh), None, diags)?;
        (state.host_key, state.bastion_host_key) = (pins.host_key, pins.bastion_host_key);
        Self::derive(&mut state);
        Self::check_systemd(&configured, &state, diags).await;
        Some((state, Value::Null))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        if proposed_state.host != prior_state.host {
            let (state, private) = self
                .plan_create(diags, proposed_state, config_state, meta)
                .await?;
            return Some((state, private, vec![AttributePath::new("host")]));
        }
        let configured = self.shared.get(diags)?;
        let mut state = proposed_state;
        Self::derive(&mut state);
        let prior = Prior::new(
            &prior_state.host,
            &prior_state.ssh,
            &prior_state.host_key,
            &prior_state.bastion_host_key,
        );
        let pins =
            configured.plan_pins(&Route::new(&state.host, &state.ssh), Some(&prior), diags)?;
        (state.host_key, state.bastion_host_key) = (pins.host_key, pins.bastion_host_key);
        Some((state, prior_private_state, vec![]))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let timeout = planned_state.timeout(Operation::Create);
        self.apply(
            diags,
            planned_state,
            planned_private_state,
            None,
            Purpose::Create,
            timeout,
        )
        .await
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let timeout = planned_state.timeout(Operation::Update);
        self.apply(
            diags,
            planned_state,
            planned_private_state,
            prior_state.host_key.as_option(),
            Purpose::Update,
            timeout,
        )
        .await
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        _private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let configured = self.shared.get(diags)?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        let pinned = state.host_key.as_ref_option().map(String::as_str);
        let target = Self::target(&state, &host, pinned);
        if !state.on_destroy_clean() {
            // `keep`: touch nothing, need no connection.
            configured.remember_pin(&target);
            return Some(());
        }
        let work = async {
            let remote = configured
                .connect_or_fail(&target, Purpose::Delete, diags)
                .await?;
            match Self::script(&remote, "remove cache proxy", "clean", None).await {
                Ok(_) => Some(()),
                Err(e) => {
                    diags.error(
                        format!("Removing the cache proxy from {host} failed"),
                        e.to_string(),
                        AttributePath::new("on_destroy"),
                    );
                    None
                }
            }
        };
        match tokio::time::timeout(state.timeout(Operation::Delete), work).await {
            Ok(result) => result,
            Err(_) => {
                diags.error(
                    format!("Removing the cache proxy from {host} timed out"),
                    "raise `timeouts.delete`, or set on_destroy = \"keep\"",
                    AttributePath::new("timeouts"),
                );
                None
            }
        }
    }
}

/// Terraform refuses unknown values after an apply, a failed one too.
fn settle_unknowns(state: &mut CacheProxyState) {
    for value in [
        &mut state.id,
        &mut state.substituter_url,
        &mut state.config_hash,
    ] {
        if !value.is_value() {
            *value = Value::Null;
        }
    }
    for list in [&mut state.trusted_public_keys, &mut state.drift] {
        if !list.is_value() {
            *list = Value::Null;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use config::{TlsBlock, UpstreamBlock};

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

    fn state(tls: TlsBlock) -> CacheProxyState {
        CacheProxyState {
            host: Value::Value("203.0.113.7".into()),
            upstream: Value::Value(vec![UpstreamBlock {
                url: Value::Value("https://cache.nixos.org".into()),
                ..Default::default()
            }]),
            tls: Value::Value(TlsBlock {
                certificate: Value::Value("cert".into()),
                ..tls
            }),
            ..Default::default()
        }
    }

    /// What the host's check reports for the files `desired` writes.
    fn found(desired: &Desired, key: &str) -> HashMap<String, String> {
        [
            ("config_sha256", desired.conf_hash()),
            ("unit_sha256", sha256_hex(desired.unit.as_bytes())),
            ("tls_crt_sha256", sha256_hex(b"cert")),
            ("tls_key_sha256", sha256_hex(key.as_bytes())),
            ("active", "active".into()),
            ("enabled", "enabled".into()),
            ("nginx", "yes".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A key given as `private_key_wo` is written like `private_key`; a
    /// refresh (the state holds no key) checks the file against the keyed
    /// digest the apply recorded.
    #[test]
    fn a_write_only_key_is_written_and_checked_by_its_keyed_digest() {
        let plain = Desired::of(&state(TlsBlock {
            private_key: Value::Value(Secret::new(PEM)),
            ..Default::default()
        }))
        .unwrap();
        let wo = Desired::of(&state(TlsBlock {
            private_key_wo: Value::Value(Secret::new(PEM)),
            private_key_wo_version: Value::Value(1),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(plain.stdin(), wo.stdin());
        let private = ProxyPrivate {
            salt: "salt".into(),
            tls_key_digest: content_fingerprint("salt", Some(PEM)),
        };
        assert!(!private.tls_key_digest.contains(&sha256_hex(PEM.as_bytes())));

        let refreshed = Desired::of(&state(TlsBlock {
            private_key_wo_version: Value::Value(1),
            ..Default::default()
        }))
        .expect("a refresh without the key still knows the other files");
        assert!(refreshed.private_key.is_none());
        assert!(refreshed.drift(&found(&wo, PEM), &private).is_empty());
        assert_eq!(
            refreshed.drift(&found(&wo, "another key"), &private),
            [format!("{CONF_DIR}/tls.key was changed on the host")]
        );
        let mut gone = found(&wo, PEM);
        gone.insert("tls_key_sha256".into(), String::new());
        assert_eq!(
            refreshed.drift(&gone, &private),
            [format!("{CONF_DIR}/tls.key is missing")]
        );
        // A key in the state is compared by its own digest, as before.
        assert!(plain
            .drift(&found(&plain, PEM), &ProxyPrivate::default())
            .is_empty());
        // Unknown at plan time: nothing to render yet.
        assert!(Desired::of(&state(TlsBlock {
            private_key_wo: Value::Unknown,
            ..Default::default()
        }))
        .is_none());
    }

    #[test]
    fn the_key_pair_is_checked_at_plan_time() {
        let errors = |tls: TlsBlock| {
            let mut diags = Diagnostics::default();
            config::validate(&state(tls), &mut diags);
            diags
                .errors
                .iter()
                .map(|d| format!("{}: {:?}", d.summary, d.attribute))
                .collect::<Vec<_>>()
        };
        let e = errors(TlsBlock::default());
        assert!(
            e.iter().any(|e| e.contains("Missing TLS private key")),
            "{e:?}"
        );
        let e = errors(TlsBlock {
            private_key: Value::Value(Secret::new(PEM)),
            private_key_wo: Value::Value(Secret::new(PEM)),
            ..Default::default()
        });
        assert!(e.iter().any(|e| e.contains("private_key_wo")), "{e:?}");
        let e = errors(TlsBlock {
            private_key: Value::Value(Secret::new(PEM)),
            private_key_wo_version: Value::Value(1),
            ..Default::default()
        });
        assert!(
            e.iter().any(|e| e.contains("private_key_wo_version")),
            "{e:?}"
        );
    }
}
