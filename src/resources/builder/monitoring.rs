//! The `monitoring` block of `nixbuild_builder`: the distribution's Prometheus
//! node exporter as the service `nixbuild-node-exporter`, with a textfile
//! collector fed every minute by the provider's `nix_metrics.sh` (store size,
//! free space of the store's file system, builds running, daemon up). Its
//! type (its schema), validation, converge step, drift check and removal; the builder
//! calls these and holds nothing else of it.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

pub use super::config::MonitoringBlock;
use crate::nix::conf::sha256_hex;
use crate::resources::cache_proxy::config::parse_listen;
use crate::ssh::steps::Step;
use crate::ssh::{Remote, SshError};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9100";

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

/// Read and apply: what is out of line, appended to `drift` (only with the block).
pub async fn check(
    remote: &Remote,
    value: &Value<MonitoringBlock>,
) -> Result<Vec<String>, SshError> {
    match check_step(value) {
        Some(step) => Ok(drift_in(
            value,
            &step.run(remote, true).await?.stdout_text(),
        )),
        None => Ok(vec![]),
    }
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
