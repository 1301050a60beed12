//! The `monitoring` block of `nixbuild_builder`: the distribution's Prometheus
//! node exporter as the service `nixbuild-node-exporter`, with a textfile
//! collector fed every minute by the provider's `nix_metrics.sh` (store size,
//! free space of the store's file system, builds running, daemon up). Its
//! type (its schema), validation, converge step, drift check and removal; the builder
//! calls these and holds nothing else of it.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::blocks::{only_at, Applying, Block, Checking, CleanPhase, Cleaning, Phase};
use super::config::BuilderState;
pub use super::config::MonitoringBlock;
use crate::nix::conf::sha256_hex;
use crate::resources::cache_proxy::config::parse_listen;
use crate::ssh::steps::Step;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9100";

pub struct Monitoring;

impl Block for Monitoring {
    fn validate(&self, config: &BuilderState, diags: &mut Diagnostics) {
        validate(&config.monitoring, diags);
    }

    /// After the restart: its first collection (at install) then sees the
    /// daemon as it is after this apply.
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        only_at(phase, Phase::AfterRestart, || {
            vec![converge_step(&apply.state.monitoring)]
        })
    }

    fn check_step(&self, checking: &Checking) -> Option<Step> {
        check_step(&checking.state.monitoring)
    }

    fn drift(&self, checking: &Checking, output: Option<&str>) -> Vec<String> {
        output
            .map(|text| drift_in(&checking.state.monitoring, text))
            .unwrap_or_default()
    }

    fn clean_steps(&self, phase: CleanPhase, _clean: &Cleaning) -> Vec<Step> {
        only_at(phase, CleanPhase::BeforeConfig, || vec![clean_step()])
    }
}

pub fn validate(value: &Value<MonitoringBlock>, diags: &mut Diagnostics) {
    if let Value::Value(block) = value {
        if let Value::Value(listen) = &block.listen {
            if let Err(e) = parse_listen(listen) {
                diags.error(
                    "Invalid monitoring listen address",
                    e,
                    AttributePath::new("monitoring")
                        .index(0)
                        .attribute("listen"),
                );
            }
        }
    }
}

fn listen(block: &MonitoringBlock) -> String {
    block
        .listen
        .as_ref_option()
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string())
}

/// `monitoring.sh MODE LISTEN` as a step called `name`.
fn step(name: &str, mode: &str, listen: &str) -> Step {
    Step::new(name, crate::scripts::MONITORING, &[mode, listen]).serves("monitoring")
}

/// Apply: set up the exporter and the timer (the metrics script on stdin),
/// or remove them when the block is absent (a no-op on a host that has none).
pub fn converge_step(value: &Value<MonitoringBlock>) -> Step {
    match value.as_ref_option() {
        Some(block) => {
            step("set up monitoring", "apply", &listen(block)).input(crate::scripts::NIX_METRICS)
        }
        None => clean_step(),
    }
}

/// Remove what the block put on the host (a no-op on a host with none).
pub fn clean_step() -> Step {
    step("remove monitoring", "clean", "")
}

/// The check as a step (`None`: no block, nothing to check).
pub fn check_step(value: &Value<MonitoringBlock>) -> Option<Step> {
    value
        .as_ref_option()
        .map(|_| step("check monitoring", "check", ""))
}

/// What the check's output `text` shows out of line with the block.
pub fn drift_in(value: &Value<MonitoringBlock>, text: &str) -> Vec<String> {
    let Some(block) = value.as_ref_option() else {
        return vec![];
    };
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_default()
            .to_string()
    };
    let mut drift = Vec::new();
    for (key, unit) in [
        ("exporter", "nixbuild-node-exporter.service"),
        ("timer", "nixbuild-nix-metrics.timer"),
    ] {
        if get(key) != "active" {
            drift.push(format!("the monitoring unit {unit} is `{}`", get(key)));
        }
    }
    if get("exporter_listen") != listen(block) {
        drift.push(format!(
            "the node exporter listens on `{}`, not `{}`",
            get("exporter_listen"),
            listen(block)
        ));
    }
    if get("script_sha256") != sha256_hex(crate::scripts::NIX_METRICS.as_bytes()) {
        drift.push("the Nix metrics script was changed or removed".into());
    }
    drift
}
