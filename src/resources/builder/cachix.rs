//! The `cachix` block as a [`Block`]: the CLI and the `watch-store` service
//! (`cachix.sh`), the drift the builder check reports for them, the
//! service's secrets (see [`watch_store`](super::watch_store)) and its stop
//! before a destroy. The substituter the block adds to the managed config
//! is the config's (`CachixTarget` in `mod.rs`).

use async_trait::async_trait;
use tf_provider::{AttributePath, Diagnostics};

use super::blocks::{only_at, Applying, Block, CleanPhase, Cleaning, Phase, Queue};
use super::config::{BuilderPrivate, BuilderState, CACHIX_ENV_FILE, WATCH_STORE_UNIT};
use super::watch_store::{self, Secrets, WatchStoreSecret};
use crate::context::{Context, SecretValue};
use crate::host::Facts;
use crate::resources::timeouts::Operation;
use crate::ssh::steps::Step;
use crate::ssh::Remote;

pub struct Cachix;

#[async_trait]
impl Block for Cachix {
    fn check_plan(&self, configured: &Context, state: &BuilderState, diags: &mut Diagnostics) {
        if state.watch_store()
            && WatchStoreSecret::AuthToken.in_effect(configured, state) == SecretValue::Absent
        {
            diags.error(
                "cachix.watch_store needs an auth token",
                "set the provider's `cachix.auth_token` (or CACHIX_AUTH_TOKEN), or `cachix.auth_token` here",
                AttributePath::new("cachix").index(0).attribute("watch_store"),
            );
        }
    }

    fn write_only_args(&self, state: &BuilderState) -> Vec<&'static str> {
        watch_store::write_only_args(state)
    }

    /// Also without a `cachix` block: a service or token left behind goes.
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        if phase != Phase::AfterConfig {
            return vec![];
        }
        let state = apply.state;
        let cache = state
            .cachix
            .as_ref_option()
            .and_then(|c| c.cache.as_ref_option().cloned())
            .unwrap_or_default();
        let env = if state.watch_store() {
            apply.secrets.env_file()
        } else {
            String::new()
        };
        vec![cachix_step(
            &cache,
            state.cachix_install(),
            state.watch_store(),
            env,
            state.timeout(Operation::Delete),
        )]
    }

    fn drift_in_facts(
        &self,
        state: &BuilderState,
        private: &BuilderPrivate,
        facts: &Facts,
        secrets: &Secrets,
    ) -> Vec<String> {
        if !state.watch_store() {
            return leftover_watch_store(facts);
        }
        let mut drift = Vec::new();
        if facts.unit != "active" {
            drift.push(format!(
                "cachix watch-store service is `{}`",
                if facts.unit.is_empty() {
                    "unknown"
                } else {
                    &facts.unit
                }
            ));
        }
        drift.extend(secrets.drift(private));
        drift
    }

    fn record_applied(
        &self,
        state: &BuilderState,
        private: &mut BuilderPrivate,
        secrets: &Secrets,
    ) {
        secrets.record(state, private);
    }

    fn clean_steps(&self, phase: CleanPhase, clean: &Cleaning) -> Vec<Step> {
        only_at(phase, CleanPhase::BeforeConfig, || {
            let stop_timeout = clean.state.timeout(Operation::Delete);
            vec![cachix_step("", false, false, String::new(), stop_timeout)]
        })
    }

    /// watch-store uploads what it queued when it is stopped.
    fn queue(&self, state: &BuilderState) -> Option<Queue> {
        state.watch_store().then(|| Queue {
            what: "cachix watch-store queue",
            lost: "Paths watch-store had queued",
            at: AttributePath::new("cachix")
                .index(0)
                .attribute("watch_store"),
        })
    }

    async fn drain(
        &self,
        remote: &Remote,
        deadline: tokio::time::Instant,
        keep: bool,
        host: &str,
        diags: &mut Diagnostics,
    ) -> Option<()> {
        watch_store::stop(remote, deadline, keep, host, diags).await
    }

    fn drain_timed_out(&self, host: &str, _timeout: std::time::Duration, diags: &mut Diagnostics) {
        diags.error(
            format!("Stopping cachix watch-store of {host} timed out"),
            "the builder is kept so that the paths watch-store queued are not lost: raise `timeouts.delete` and destroy again",
            AttributePath::new("timeouts"),
        );
    }
}

/// `cachix.sh`: converge the CLI and the watch-store service (whose stop
/// may take `stop_timeout`: it uploads its queue); with `watch = false`,
/// remove a service and token file left on the host.
fn cachix_step(
    cache: &str,
    install: bool,
    watch: bool,
    env: String,
    stop_timeout: std::time::Duration,
) -> Step {
    let flag = |b: bool| if b { "true" } else { "false" };
    let stop_seconds = stop_timeout.as_secs().max(1).to_string();
    Step::new(
        "cachix",
        crate::scripts::CACHIX,
        &[
            cache,
            flag(install),
            flag(watch),
            WATCH_STORE_UNIT,
            CACHIX_ENV_FILE,
            &stop_seconds,
        ],
    )
    .input(env)
    .serves("cachix")
}

/// Drift when no watch-store is wanted but its pieces are on the host.
fn leftover_watch_store(facts: &Facts) -> Vec<String> {
    let mut drift = Vec::new();
    if !facts.unit.is_empty() && facts.unit != "absent" {
        drift.push(format!(
            "the cachix watch-store service {WATCH_STORE_UNIT} is on the host, but no watch_store is configured"
        ));
    }
    if facts.cachix_env {
        drift.push(format!(
            "the Cachix token file {CACHIX_ENV_FILE} is on the host, but no watch_store is configured"
        ));
    }
    drift
}
