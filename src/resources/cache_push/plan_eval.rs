//! The plan's evaluation of a push (`evaluate_at_plan`): bounded and
//! optional. It connects with the key the plan pins (never trusting a key
//! on first use at plan time), evaluates every installable in one remote
//! command ([`super::evaluate::evaluate`]) and asks each destination which
//! of the out paths it lacks (the refresh's narinfo checks). A builder that
//! does not answer, an evaluation that fails or runs out of its share of
//! the time: a warning, and the values stay unknown as without it. A changed
//! host key or Terraform's stop: an error, as everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::{destinations, evaluate, job, strings, CachePushState, Counts, TIMEOUTS};
use crate::cache::http;
use crate::context::{Context, Outcome, Purpose, Target};
use crate::resources::timeouts::{self, Operation};

/// The plan's share of the operation's time limit: a tenth.
const PLAN_SHARE: u32 = 10;

/// What the plan learnt.
pub struct PlanEvaluation {
    pub out_paths: Vec<String>,
    /// Per destination that could be asked: how many out paths it lacks.
    pub missing: Counts,
}

/// The plan fails (an error diagnostic was added).
pub struct PlanFails;

/// How long a plan may spend evaluating a push planned as `op`.
pub fn budget(state: &CachePushState, op: Operation) -> Duration {
    timeouts::get(&state.timeouts, op, TIMEOUTS) / PLAN_SHARE
}

/// Whether the reference is locked (Nix's rule: a revision or a `narHash`),
/// so that the same reference always evaluates to the same out paths. An
/// unlocked one (`github:owner/repo`, `path:/dir`, `nixpkgs`) is evaluated on
/// every plan: upstream may have moved.
pub fn is_locked(reference: &str) -> bool {
    if reference.starts_with("/nix/store/") {
        return true;
    }
    let (base, query) = reference.split_once('?').unwrap_or((reference, ""));
    if query
        .split('&')
        .any(|kv| kv.starts_with("rev=") || kv.starts_with("narHash="))
    {
        return true;
    }
    // github:owner/repo/<40 hex>, likewise gitlab: and sourcehut:.
    ["github:", "gitlab:", "sourcehut:"].iter().any(|scheme| {
        base.strip_prefix(scheme).is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() == 3
                && parts[2].len() == 40
                && parts[2].chars().all(|c| c.is_ascii_hexdigit())
        })
    })
}

/// Whether `state`'s installables could evaluate differently without any
/// argument changing (see [`is_locked`]). An uploaded `source` is locked by
/// its content hash.
pub fn is_unlocked(state: &CachePushState) -> bool {
    match (&state.flake, &state.source) {
        (Value::Value(flake), _) => !is_locked(flake),
        (_, Value::Value(_)) => false,
        _ => strings(&state.installables)
            .iter()
            .any(|i| !is_locked(i.split_once('#').map_or(i.as_str(), |(r, _)| r))),
    }
}

/// Everything the evaluation needs is known at plan time.
fn evaluable(state: &CachePushState) -> bool {
    let installables_known = state
        .installables
        .as_ref_option()
        .is_some_and(|l| !l.is_empty() && l.iter().all(Value::is_value));
    let build_args_known = match &state.build_args {
        Value::Value(l) => l.iter().all(Value::is_value),
        Value::Null => true,
        Value::Unknown => false,
    };
    state.evaluate_at_plan.as_ref_option() != Some(&false)
        && state.host.is_value()
        && !state.ssh.is_unknown()
        && !state.flake.is_unknown()
        && !state.source.is_unknown()
        && !state.source_hash.is_unknown()
        && installables_known
        && build_args_known
        // Connect only with a key the plan pins: never trust on first use.
        && state.host_key.is_value()
        && !state.bastion_host_key.is_unknown()
}

/// The key the plan's answer is kept under on the builder: the inputs, and
/// the mark of the refresh this plan follows (`refreshed`: a random word
/// each Read puts in the private state, `None` for a new push). Terraform
/// plans every change again at apply, from the state the plan refreshed
/// (the same mark): that plan finds the record and promises exactly what
/// the first one did, with no evaluation and whether upstream moved or not.
/// The next refresh makes a new mark, so the next plan evaluates afresh.
pub fn record_key(state: &CachePushState, refreshed: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut part = |label: &str, value: &str| {
        h.update(label.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
        h.update(b"\0");
    };
    part("v", "1");
    part("refreshed", refreshed.unwrap_or("-"));
    part(
        "host",
        state.host.as_ref_option().map_or("", String::as_str),
    );
    part(
        "flake",
        state.flake.as_ref_option().map_or("", String::as_str),
    );
    part(
        "source_hash",
        state.source_hash.as_ref_option().map_or("", String::as_str),
    );
    for i in strings(&state.installables) {
        part("installable", &i);
    }
    for a in strings(&state.build_args) {
        part("build_arg", &a);
    }
    hex::encode(&h.finalize()[..16])
}

/// Evaluate `state` (planned, with its pins) at plan time, within `budget`.
/// `Ok(None)`: not evaluated (not possible, or a warning was added).
pub async fn run(
    state: &CachePushState,
    refreshed: Option<&str>,
    configured: &Context,
    budget: Duration,
    diags: &mut Diagnostics,
) -> Result<Option<PlanEvaluation>, PlanFails> {
    if !evaluable(state) {
        tracing::debug!("plan: the installables are not evaluated (not enabled, or not all known)");
        return Ok(None);
    }
    let host = state.host.as_ref_option().cloned().unwrap_or_default();
    let target = Target::new(&host, &state.ssh)
        .pinned(state.host_key.as_ref_option().map(String::as_str))
        .pinned_bastion(state.bastion_host_key.as_ref_option().map(String::as_str));
    let record = record_key(state, refreshed);
    let work = evaluate_on(&target, state, &record, configured, diags);
    match tokio::time::timeout(budget, work).await {
        Ok(result) => result,
        Err(_) => {
            diags.warning(
                "Evaluation at plan time ran out of time",
                format!(
                    "evaluating the installables on {host} took longer than {} (a tenth of the push's timeout). {} Raise `timeouts`, or set `evaluate_at_plan = false` for a configuration this slow to evaluate.",
                    humantime::format_duration(budget),
                    crate::context::policy::PLAN_WARNING_ADVICE
                ),
                AttributePath::new("evaluate_at_plan"),
            );
            Ok(None)
        }
    }
}

async fn evaluate_on(
    target: &Target<'_>,
    state: &CachePushState,
    record: &str,
    configured: &Context,
    diags: &mut Diagnostics,
) -> Result<Option<PlanEvaluation>, PlanFails> {
    let remote = match configured.connect(target, Purpose::Plan, diags).await {
        Outcome::Connected(remote) => remote,
        Outcome::KeepState => return Ok(None),
        Outcome::Failed | Outcome::Interrupted => return Err(PlanFails),
    };
    let evaluation = match evaluate::evaluate(&remote, &job(state), Some(record)).await {
        Ok(e) => {
            if e.recorded {
                tracing::info!(host = %remote.endpoint(), "plan: reused the evaluation recorded by the plan this apply follows ({record})");
            }
            e
        }
        Err(f) if f.interrupted => {
            diags.error(f.summary, f.detail, f.attribute);
            return Err(PlanFails);
        }
        Err(f) => {
            diags.warning(
                format!("{} at plan time", f.summary),
                format!(
                    "{}\n\n{}",
                    f.detail,
                    crate::context::policy::PLAN_WARNING_ADVICE
                ),
                f.attribute,
            );
            return Ok(None);
        }
    };
    let out_paths = evaluation.out_paths();
    let missing = missing_by_destination(state, configured, &out_paths, diags).await;
    Ok(Some(PlanEvaluation { out_paths, missing }))
}

/// Per destination that can be asked over HTTP: how many of `out_paths` it
/// lacks. One that cannot be asked is left out (with a warning when it did
/// not answer).
async fn missing_by_destination(
    state: &CachePushState,
    configured: &Context,
    out_paths: &[String],
    diags: &mut Diagnostics,
) -> Counts {
    let mut per = BTreeMap::new();
    for d in destinations::resolve(state, configured, &http::client()) {
        match d.lacking(out_paths).await {
            Some(Ok(lacking)) => {
                per.insert(d.name.clone(), Value::Value(lacking.len() as i64));
            }
            Some(Err(e)) => diags.warning(
                "Cannot check the binary cache at plan time",
                format!(
                    "{e}. `out_paths_missing_by_destination` leaves {} out.",
                    d.name
                ),
                d.at.clone(),
            ),
            None => {}
        }
    }
    Value::Value(per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_references_carry_a_revision_or_a_nar_hash() {
        for locked in [
            "github:o/r/0123456789abcdef0123456789abcdef01234567",
            "git+https://example.com/r.git?ref=main&rev=0123456789abcdef0123456789abcdef01234567",
            "path:/srv/f?narHash=sha256-AAAA",
            "/nix/store/0sfqllzc4sprpz0827x1jbc3gbvybjy7-a.drv^out",
        ] {
            assert!(is_locked(locked), "{locked}");
        }
        for unlocked in [
            "github:o/r",
            "github:o/r/main",
            "git+https://example.com/r.git?ref=main",
            "path:/srv/f",
            "nixpkgs",
            "git+file:///srv/repo",
        ] {
            assert!(!is_locked(unlocked), "{unlocked}");
        }
    }

    #[test]
    fn a_record_belongs_to_one_refresh_and_one_set_of_inputs() {
        let state = CachePushState {
            host: Value::Value("h".into()),
            flake: Value::Value("github:o/r".into()),
            installables: Value::Value(vec![Value::Value("a".into())]),
            ..Default::default()
        };
        let key = record_key(&state, Some("n1"));
        assert_eq!(key, record_key(&state, Some("n1")));
        assert_eq!(key.len(), 32);
        assert_ne!(key, record_key(&state, Some("n2")), "a new refresh");
        assert_ne!(key, record_key(&state, None));
        let other = CachePushState {
            installables: Value::Value(vec![Value::Value("b".into())]),
            ..state.clone()
        };
        assert_ne!(key, record_key(&other, Some("n1")), "other inputs");
    }

    #[test]
    fn the_plan_gets_a_tenth_of_the_push_time() {
        let state = CachePushState::default();
        assert_eq!(
            budget(&state, Operation::Update),
            Duration::from_secs(6 * 60)
        );
    }

    #[test]
    fn no_evaluation_without_a_pinned_key_or_when_turned_off() {
        let known = CachePushState {
            host: Value::Value("h".into()),
            flake: Value::Value("path:/f".into()),
            installables: Value::Value(vec![Value::Value("a".into())]),
            host_key: Value::Value("ssh-ed25519 AAAA".into()),
            ..Default::default()
        };
        assert!(evaluable(&known));
        let unpinned = CachePushState {
            host_key: Value::Unknown,
            ..known.clone()
        };
        assert!(!evaluable(&unpinned));
        let off = CachePushState {
            evaluate_at_plan: Value::Value(false),
            ..known.clone()
        };
        assert!(!evaluable(&off));
        let unknown_installable = CachePushState {
            installables: Value::Value(vec![Value::Unknown]),
            ..known
        };
        assert!(!evaluable(&unknown_installable));
    }
}
