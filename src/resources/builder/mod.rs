//! Resource `nixbuild_builder`: bootstrap a host into a Nix remote builder over
//! SSH and keep it converged. Apply runs check-then-act scripts (probe, install
//! Nix, managed config, build user, Cachix, daemon restart) and finishes with
//! the same read-only check that Read runs, so state always describes what is
//! on the host. Drift found by Read plans an update that re-converges.

mod blocks;
pub mod build_keys;
mod build_user;
mod cachix;
pub mod client;
pub mod config;
pub mod gc;
mod legacy;
pub mod monitoring;
pub mod nix_conf;
pub mod nix_credentials;
mod ownership;
pub mod push_hook;
pub mod status;
pub mod watch_store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::cache::cachix::CachixApi;
use crate::context::{
    Context, Outcome, PlannedPins, Prior, Purpose, Route, SecretValue, SeenKeys, Shared, SshBlock,
    Target,
};
use crate::host::facts::CHECK_STEP;
use crate::host::probe::PROBE_STEP;
use crate::host::{Facts, NixSnapshot};
use crate::nix::conf::{INCLUDE_LINE, MANAGED_CONF_PATH, NIX_CONF_PATH};
use crate::resources::timeouts::Operation;
use crate::secrets::Secret;
use crate::ssh::steps::{Step, StepsOutput};
use crate::ssh::{Remote, SshError};
use crate::write_only;
use blocks::{Applying, Block, Checking, CleanPhase, Cleaning, Phase};
use build_user::foreign_user_message;
use config::{
    known_strings, str_list, BuilderPrivate, BuilderState, ACCOUNT_RECORDS, CACHIX_ENV_FILE,
    OWNER_FILE, WATCH_STORE_UNIT,
};
use ownership::Owner;
use watch_store::{Secrets, WatchStoreSecret};

/// The builder's blocks, in the order their steps, checks, drift and
/// clean steps run at each point (see [`blocks`]). A new block implements
/// [`Block`] in its own file and is added here.
const BLOCKS: [&dyn Block; 6] = [
    &build_user::BuildUser,
    &cachix::Cachix,
    &push_hook::Push,
    &monitoring::Monitoring,
    &nix_credentials::Credentials,
    &gc::Gc,
];

/// Where the Cachix substituter comes from, as far as the plan knows.
#[derive(Clone, Debug, PartialEq)]
enum CachixTarget {
    None,
    Unknown,
    Known { uri: String, key: String },
}

/// How long a plan waits for the Cachix API when the last answer is known.
const CACHIX_LOOKUP_WITH_FALLBACK: std::time::Duration = std::time::Duration::from_secs(15);

/// The Cachix API's `uri` and signing key go into root's nix.conf: they pass
/// the checks a user's `extra-substituters` and `public_key` pass, and hold
/// no control character (a newline would add any setting).
fn check_cachix_answer(uri: &str, key: &str) -> Result<(), String> {
    for (what, value) in [("URI", uri), ("signing key", key)] {
        if value.chars().any(char::is_control) {
            return Err(format!("its {what} {value:?} holds a control character"));
        }
    }
    if !(uri.starts_with("https://") || uri.starts_with("http://")) {
        return Err(format!("its URI {uri:?} is not an http(s) URL"));
    }
    crate::nix::conf::check_substituter(uri).map_err(|e| format!("its URI: {e}"))?;
    crate::nix::conf::check_public_key(key).map_err(|e| format!("its signing key: {e}"))
}

/// How a create or update connects and converges.
struct HowToApply {
    /// The key pinned in state (update), `None` on create.
    pinned: Option<String>,
    purpose: Purpose,
    timeout: std::time::Duration,
    /// The build user of the prior state, when a rename replaces it.
    previous_user: Option<String>,
}

pub struct BuilderResource {
    shared: Arc<Shared>,
    /// Cachix API answers for this run, so plans over many builders ask once.
    cachix_cache: Mutex<HashMap<String, (String, String)>>,
}

impl BuilderResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            cachix_cache: Mutex::default(),
        }
    }

    /// The Cachix token in effect: `cachix.auth_token_wo`, else
    /// `cachix.auth_token`, else the provider's.
    fn token(configured: &Context, state: &BuilderState) -> SecretValue {
        WatchStoreSecret::AuthToken.in_effect(configured, state)
    }

    /// The secret arguments of `state` whose value comes from their
    /// write-only twin (the Cachix secrets only where they are written:
    /// with `watch_store`), sorted: what [`BuilderPrivate::write_only`] records.
    fn write_only_args(state: &BuilderState) -> Vec<String> {
        let mut args: Vec<String> = BLOCKS
            .iter()
            .flat_map(|block| block.write_only_args(state))
            .map(String::from)
            .collect();
        args.sort();
        args
    }

    /// The connection target: `host` and `ssh`, with the key pinned in `pinned`.
    /// The bastion's pin comes from `state` (on apply, as planned: kept,
    /// configured, or unknown for a new bastion).
    fn target<'a>(state: &'a BuilderState, host: &'a str, pinned: Option<&'a str>) -> Target<'a> {
        Target::new(host, &state.ssh)
            .pinned(pinned)
            .pinned_bastion(state.bastion_host_key.as_ref_option().map(String::as_str))
    }

    /// The Cachix substituter URI and public key: given, or from the API.
    /// The API's answer is checked like a value the user typed (it goes into
    /// root's nix.conf). When the API fails, the URI and key `known` from
    /// the last plan or apply of the same cache are used, with a warning;
    /// only a cache nothing is known of fails.
    async fn cachix_target(
        &self,
        configured: &Context,
        state: &BuilderState,
        known: Option<&BuilderPrivate>,
        diags: &mut Diagnostics,
    ) -> Option<CachixTarget> {
        if state.cachix.is_unknown() {
            return Some(CachixTarget::Unknown);
        }
        let Some(cachix) = state.cachix.as_ref_option() else {
            return Some(CachixTarget::None);
        };
        let at = |name: &'static str| AttributePath::new("cachix").index(0).attribute(name);
        let (Value::Value(cache), false) = (&cachix.cache, cachix.public_key.is_unknown()) else {
            return Some(CachixTarget::Unknown);
        };
        if let Value::Value(key) = &cachix.public_key {
            return Some(CachixTarget::Known {
                uri: format!("https://{cache}.cachix.org"),
                key: key.clone(),
            });
        }
        if let Some((uri, key)) = self
            .cachix_cache
            .lock()
            .expect("cache lock")
            .get(cache)
            .cloned()
        {
            return Some(CachixTarget::Known { uri, key });
        }
        if write_only::effective(&cachix.auth_token, &cachix.auth_token_wo).is_unknown() {
            return Some(CachixTarget::Unknown);
        }
        let token = Self::token(configured, state);
        let known = known
            .filter(|p| p.cachix_cache == *cache && !p.cachix_uri.is_empty())
            .map(|p| (p.cachix_uri.clone(), p.cachix_key.clone()));
        let api = CachixApi::new(
            crate::cache::http::client(),
            &configured.cachix.api_url,
            token.secret().map(Secret::expose),
        );
        // With a known answer to fall back on, an unresponsive API holds the
        // plan for a short while, not the client's whole timeout.
        let answer = match &known {
            Some(_) => {
                match tokio::time::timeout(CACHIX_LOOKUP_WITH_FALLBACK, api.cache(cache)).await {
                    Ok(answer) => answer.map_err(|e| e.to_string()),
                    Err(_) => Err(format!(
                        "no answer within {}s",
                        CACHIX_LOOKUP_WITH_FALLBACK.as_secs()
                    )),
                }
            }
            None => api.cache(cache).await.map_err(|e| e.to_string()),
        };
        let info = match answer {
            Ok(info) => info,
            Err(e) => {
                if let Some((uri, key)) = known {
                    diags.warning(
                        format!("The Cachix API is unavailable: planning `{cache}` with its last known key"),
                        format!("{e}. The builder keeps substituter {uri} and key {key} from its last plan or apply; the next plan with the API up checks them again."),
                        at("cache"),
                    );
                    return Some(CachixTarget::Known { uri, key });
                }
                diags.error(
                    format!("Cannot look up the Cachix cache `{cache}`"),
                    format!("{e}. Set `cachix.public_key` (the key shown on the cache's page, `{cache}-1:…`) to plan without the Cachix API."),
                    at("cache"),
                );
                return None;
            }
        };
        let Some(key) = info.public_signing_keys.first() else {
            diags.error(
                "Cachix cache has no public key",
                format!("the Cachix API lists no signing key for `{cache}`; set `public_key`"),
                at("cache"),
            );
            return None;
        };
        if let Err(e) = check_cachix_answer(&info.uri, key) {
            diags.error(
                format!("The Cachix API's answer for `{cache}` is refused"),
                format!("{e}. Nothing was written to nix.conf; set `public_key` to use the cache at https://{cache}.cachix.org."),
                at("cache"),
            );
            return None;
        }
        self.cachix_cache
            .lock()
            .expect("cache lock")
            .insert(cache.clone(), (info.uri.clone(), key.clone()));
        Some(CachixTarget::Known {
            uri: info.uri,
            key: key.clone(),
        })
    }

    /// Record in the private state what `target` resolved `state`'s Cachix
    /// cache to, for [`cachix_target`](Self::cachix_target)'s fallback.
    fn remember_cachix(private: &mut BuilderPrivate, state: &BuilderState, target: &CachixTarget) {
        let cache = state
            .cachix
            .as_ref_option()
            .and_then(|c| c.cache.as_ref_option().cloned());
        match (cache, target) {
            (Some(cache), CachixTarget::Known { uri, key }) => {
                private.cachix_cache = cache;
                private.cachix_uri = uri.clone();
                private.cachix_key = key.clone();
            }
            (_, CachixTarget::Unknown) => {}
            _ => {
                private.cachix_cache.clear();
                private.cachix_uri.clear();
                private.cachix_key.clear();
            }
        }
    }

    /// Desired hash of the managed config; unknown while inputs are unknown.
    fn desired_hash(state: &BuilderState, target: &CachixTarget) -> Value<String> {
        Self::desired_hash_with(state, target, None)
    }

    /// [`desired_hash`](Self::desired_hash), with `include_credentials` as
    /// in [`BuilderState::managed_conf_with`].
    fn desired_hash_with(
        state: &BuilderState,
        target: &CachixTarget,
        include_credentials: Option<bool>,
    ) -> Value<String> {
        let cachix = match target {
            CachixTarget::Unknown => return Value::Unknown,
            CachixTarget::None => None,
            CachixTarget::Known { uri, key } => Some((uri.as_str(), key.as_str())),
        };
        match state.managed_conf_with(cachix, include_credentials) {
            Some(conf) => Value::Value(conf.hash()),
            None => Value::Unknown,
        }
    }

    /// The hash of the managed config the last apply wrote for `prior`: its
    /// credentials may have come from write-only arguments that the prior
    /// state does not hold, and then the private state says whether the
    /// credentials file was included.
    fn prior_hash(
        prior: &BuilderState,
        target: &CachixTarget,
        private: &BuilderPrivate,
    ) -> Value<String> {
        let write_only_credentials = private
            .write_only
            .iter()
            .any(|a| a == nix_credentials::ACCESS_TOKENS || a == nix_credentials::NETRC);
        let include = write_only_credentials.then_some(!private.credentials_fingerprint.is_empty());
        Self::desired_hash_with(prior, target, include)
    }

    /// Plan-time checks that need the provider configuration, or values
    /// Terraform's validation does not see (secrets from variables are
    /// unknown there).
    fn check_plan(configured: &Context, state: &BuilderState, diags: &mut Diagnostics) {
        config::check_admin_user(
            state,
            configured
                .ssh_defaults
                .as_ref()
                .and_then(|s| s.user.as_ref_option())
                .map(String::as_str),
            diags,
        );
        for block in BLOCKS {
            block.check_plan(configured, state, diags);
        }
    }

    /// The blocks' plan-time checks against the host at `target`.
    async fn check_at_plan(
        configured: &Context,
        state: &BuilderState,
        target: &Target<'_>,
        diags: &mut Diagnostics,
    ) {
        for block in BLOCKS {
            block.check_at_plan(configured, state, target, diags).await;
        }
    }

    /// Fill the attributes that follow from the arguments and the host facts
    /// already known (system, cpus, detected features).
    fn derive(state: &mut BuilderState, host: &str) {
        if state.nix.is_unknown() {
            // A `dynamic "nix"` block whose presence is not known yet.
            state.systems = Value::Unknown;
            state.max_jobs_effective = Value::Unknown;
            state.supported_features = Value::Unknown;
            state.store_uri = Self::store_uri(state, host);
            client::derive(state);
            return;
        }
        let nix = state.nix_block();
        state.systems = match (&state.system, known_strings(&nix.extra_platforms)) {
            (Value::Value(system), Some(extra)) => {
                let mut all = vec![system.clone()];
                all.extend(extra);
                str_list(&all)
            }
            _ => Value::Unknown,
        };
        state.max_jobs_effective = match (&nix.max_jobs, &state.cpus) {
            (Value::Value(n), _) => Value::Value(*n),
            (Value::Null, Value::Value(cpus)) => Value::Value(*cpus),
            _ => Value::Unknown,
        };
        if !nix.system_features.is_null() {
            state.supported_features = match known_strings(&nix.system_features) {
                Some(features) => str_list(&features),
                None => Value::Unknown,
            };
        }
        state.store_uri = Self::store_uri(state, host);
        client::derive(state);
    }

    /// Whether an update may change the features Nix detects (reported when
    /// `nix.system_features` is unset): when `extra_config` changes a line
    /// naming features, or is not known yet, or `nix.system_features` was set
    /// before, or the managed config on the host is not what the last apply
    /// wrote (the repair rewrites a hand edit, whose features the last Read
    /// reported).
    fn detected_features_may_change(
        prior: &BuilderState,
        planned: &BuilderState,
        target: &CachixTarget,
        private: &BuilderPrivate,
    ) -> bool {
        if planned.nix.is_unknown() {
            return true;
        }
        let planned_nix = planned.nix_block();
        if !planned_nix.system_features.is_null() {
            return false;
        }
        let hand_edited = match Self::prior_hash(prior, target, private) {
            Value::Value(hash) => prior.config_hash.as_ref_option() != Some(&hash),
            _ => true,
        };
        if hand_edited {
            return true;
        }
        let prior_nix = prior.nix_block();
        // From declared to detected.
        if !prior_nix.system_features.is_null() {
            return true;
        }
        let lines = |extra: &Value<String>| {
            extra
                .as_ref_option()
                .map(|text| crate::nix::conf::feature_lines(text).join("\n"))
        };
        match &planned_nix.extra_config {
            Value::Unknown => true,
            extra => lines(extra) != lines(&prior_nix.extra_config),
        }
    }

    fn store_uri(state: &BuilderState, host: &str) -> Value<String> {
        match state.build_user_name() {
            Some(_)
                if state
                    .build_user
                    .as_ref_option()
                    .is_some_and(|u| u.protocol.is_unknown()) =>
            {
                Value::Unknown
            }
            Some(user) => Value::Value(format!("{}://{user}@{host}", state.protocol().scheme())),
            None => Value::Unknown,
        }
    }

    /// Compare what the check found with what the state says was applied.
    fn drift(
        state: &BuilderState,
        facts: &Facts,
        private: &BuilderPrivate,
        secrets: &Secrets,
    ) -> Vec<String> {
        let mut drift = Vec::new();
        if let Value::Value(applied) = &state.config_hash {
            if *applied != facts.config_sha256 {
                drift.push(if facts.config_sha256.is_empty() {
                    format!("{MANAGED_CONF_PATH} is missing")
                } else {
                    format!("{MANAGED_CONF_PATH} was changed on the host")
                });
            }
        }
        if !facts.include {
            drift.push(format!("{NIX_CONF_PATH} no longer includes nixbuild.conf"));
        }
        let other = ownership::other_owner_found(state, &facts.host_owner);
        if !other.is_empty() {
            drift.push(format!(
                "the host's builder objects belong to another nixbuild_builder resource (owner id {other}, {OWNER_FILE})"
            ));
        }
        for block in BLOCKS {
            drift.extend(block.drift_in_facts(state, private, facts, secrets));
        }
        drift
    }

    /// Record what the host looks like into `state` (and, in `private`, a
    /// build user the host shows as someone else's account).
    fn observe(
        state: &mut BuilderState,
        remote: &Remote,
        facts: &Facts,
        private: &mut BuilderPrivate,
        secrets: &Secrets,
    ) {
        private.nix_snapshot = facts.nix_snapshot();
        private.foreign_user = legacy::foreign_user_finding(private, foreign_user(state, facts));
        private.other_owner = ownership::other_owner_found(state, &facts.host_owner);
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        state.id = Value::Value(remote.endpoint().to_string());
        state.host_key = Value::Value(remote.host_key().openssh_line());
        state.host_key_base64 = Value::Value(remote.host_key().base64_line());
        state.bastion_host_key = remote.bastion_host_key().map(|k| k.openssh_line()).into();
        state.system = Value::Value(facts.probe.system.clone());
        state.cpus = Value::Value(facts.probe.cpus);
        state.nix_version = facts.probe.nix_version.clone().into();
        if state.nix_block().system_features.is_null() {
            state.supported_features = str_list(&facts.features);
        }
        state.drift = str_list(&Self::drift(state, facts, private, secrets));
        state.config_hash = Value::Value(facts.config_sha256.clone());
        Self::derive(state, &host);
    }

    /// The builder check's step (`dump`: also the whole managed config).
    fn check_step(
        state: &BuilderState,
        dump: bool,
        known: Option<&NixSnapshot>,
        owner_id: &str,
    ) -> Step {
        let user = state.build_user_name().unwrap_or_default();
        Facts::check_step(
            &[
                &user,
                MANAGED_CONF_PATH,
                NIX_CONF_PATH,
                INCLUDE_LINE,
                WATCH_STORE_UNIT,
                if dump { "yes" } else { "no" },
                ACCOUNT_RECORDS,
                CACHIX_ENV_FILE,
                OWNER_FILE,
                owner_id,
            ],
            known,
        )
    }

    /// Bring the host in line with `state`'s arguments, then check it: one
    /// remote command (docs/performance.md). Every step checks before it
    /// acts, so running it again after a failure resumes.
    async fn converge(
        &self,
        remote: &Remote,
        state: &BuilderState,
        private: &BuilderPrivate,
        target: &CachixTarget,
        secrets: &Secrets,
        previous_user: Option<&str>,
    ) -> Result<(Facts, Vec<String>), Failure> {
        let user = state.build_user_name().expect("known at apply");
        let owner = &Owner::applying(state, &private.predecessor_owner);
        let apply = Applying {
            state,
            private,
            user: &user,
            owner,
            previous_user,
            secrets,
        };
        let mut steps = converge_steps(&apply, target);
        let converge_steps = steps.len();
        // Then the check, as a Read would run it.
        steps.extend(checks(state, private, false, false));
        let out = match remote.run_steps("bootstrap", &steps, true).await {
            Ok(out) => out,
            Err(e) => {
                let step = e.step().unwrap_or_default().to_string();
                let is_check = steps[converge_steps..].iter().any(|s| s.name() == step);
                let serves = steps
                    .iter()
                    .find(|s| s.name() == step)
                    .and_then(Step::attribute);
                return Err(if is_check {
                    Failure::Check(e)
                } else {
                    Failure::Step(step, serves, e)
                });
            }
        };
        let refused = |step: &str, reason: String| {
            Failure::Step(
                step.to_string(),
                None,
                SshError::Refused {
                    host: remote.endpoint().to_string(),
                    step: step.to_string(),
                    reason,
                },
            )
        };
        if out
            .stdout(PROBE_STEP)
            .is_some_and(|o| o.lines().any(|l| l == "nixos=yes"))
        {
            return Err(refused(PROBE_STEP, "this is a NixOS host: its nix.conf is generated by NixOS. Configure Nix, the build user and Cachix in the NixOS configuration (nix.settings, users.users, nix.buildMachines) instead of nixbuild_builder".into()));
        }
        if let Some(other) = ownership::OtherOwner::in_output(&out) {
            let host = remote.endpoint().to_string();
            return Err(refused(ownership::CHECK_STEP, other.message(&host)));
        }
        if let Some((step, message)) = BLOCKS.iter().find_map(|b| b.refusal(&out, &apply)) {
            return Err(refused(&step, message));
        }
        read_checks(remote, state, private, false, &out).map_err(Failure::Check)
    }

    /// Create and update: connect, converge, check, and describe the result.
    async fn apply(
        &self,
        diags: &mut Diagnostics,
        mut state: BuilderState,
        mut private: BuilderPrivate,
        how: HowToApply,
    ) -> Option<(BuilderState, BuilderPrivate)> {
        let HowToApply {
            pinned,
            purpose,
            timeout,
            previous_user,
        } = how;
        let configured = self.shared.get(diags)?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        let target = self
            .cachix_target(&configured, &state, Some(&private), diags)
            .await?;
        Self::remember_cachix(&mut private, &state, &target);
        // Made now for a state from before owner ids.
        Owner::of(&mut state);
        if purpose == Purpose::Create {
            // A replacement takes over what the object it replaces left.
            let target = Self::target(&state, &host, None);
            private.predecessor_owner = configured.take_left_owner(&target).unwrap_or_default();
        }
        let secrets = Secrets::in_effect(&configured, &state);
        // The key this apply connected with, kept if a later step fails.
        let seen_key: std::sync::Mutex<Option<(crate::ssh::HostKey, SeenKeys)>> =
            Default::default();
        let work = async {
            let remote = configured
                .connect_or_fail(
                    &Self::target(&state, &host, pinned.as_deref()),
                    purpose,
                    diags,
                )
                .await?;
            *seen_key.lock().expect("seen key") =
                Some((remote.host_key().clone(), SeenKeys::of(&remote)));
            let converged = self
                .converge(
                    &remote,
                    &state,
                    &private,
                    &target,
                    &secrets,
                    previous_user.as_deref(),
                )
                .await;
            match converged {
                Ok(facts) => Some((remote, facts)),
                Err(Failure::Step(_, _, e) | Failure::Check(e)) if e.is_interrupted() => {
                    crate::context::interrupted(diags, &e, AttributePath::new("host"));
                    None
                }
                Err(Failure::Step(step, serves, e)) => {
                    // At the block the step carries out (`gc`, `cachix`…),
                    // so the user looks where the fix is. Terraform shows
                    // a path that ends at a block as the resource, so the
                    // detail names the block too.
                    let (path, detail) = match serves {
                        Some(block) => (
                            AttributePath::new(block).index(0),
                            format!("This step carries out the `{block}` block. {e}"),
                        ),
                        None => (AttributePath::new("host"), e.to_string()),
                    };
                    diags.error(
                        format!("Bootstrapping {host} failed at step `{step}`"),
                        detail,
                        path,
                    );
                    None
                }
                Err(Failure::Check(e)) => {
                    diags.error(
                        format!("Checking {host} after bootstrap failed"),
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
                    format!("Bootstrapping {host} timed out"),
                    format!("gave up after {}; raise `timeouts`, then apply again: finished steps are kept", humantime::format_duration(timeout)),
                    AttributePath::new("timeouts"),
                );
                None
            }
        };
        let Some((remote, (facts, monitoring_drift))) = worked else {
            let seen = seen_key.lock().expect("seen key").take();
            return match (purpose, seen) {
                // A create that got as far as a connection stays in the state
                // (Terraform taints it) with the key it pinned: the re-apply
                // replaces it against that key, never trusting another.
                (Purpose::Create, Some((key, seen))) => {
                    state.host_key = Value::Value(key.openssh_line());
                    state.host_key_base64 = Value::Value(key.base64_line());
                    state.bastion_host_key = seen.bastion_host_key.into();
                    settle_unknowns(&mut state);
                    Some((state, private))
                }
                _ => None,
            };
        };
        private.pin_from_import = false;
        private.records_ownership = true;
        for block in BLOCKS {
            block.record_applied(&state, &mut private, &secrets);
        }
        private.write_only = Self::write_only_args(&state);
        state.config_hash = Value::Null;
        Self::observe(&mut state, &remote, &facts, &mut private, &secrets);
        add_drift(&mut state, monitoring_drift);
        let expected = Self::desired_hash(&state, &target);
        if expected != state.config_hash {
            state.drift = {
                let mut d = known_strings(&state.drift).unwrap_or_default();
                d.push(format!(
                    "{MANAGED_CONF_PATH} differs from what was just written"
                ));
                str_list(&d)
            };
        }
        let drift = known_strings(&state.drift).unwrap_or_default();
        if !drift.is_empty() {
            diags.error(
                format!("{host} did not converge"),
                format!(
                    "after every step succeeded, the check still finds: {}",
                    drift.join("; ")
                ),
                AttributePath::new("host"),
            );
            return None;
        }
        Some((state, private))
    }
}

/// An apply's converge steps, in order: the builder's own, with the
/// blocks' steps at each [`Phase`]. Every step checks before it acts, so
/// running them again after a failure resumes.
fn converge_steps(apply: &Applying, target: &CachixTarget) -> Vec<Step> {
    let (state, owner) = (apply.state, apply.owner);
    let blocks_at =
        |phase: Phase| -> Vec<Step> { BLOCKS.iter().flat_map(|b| b.steps(phase, apply)).collect() };
    // NixOS generates its own Nix config: stop before anything changes.
    let mut steps =
        vec![Step::new(PROBE_STEP, crate::scripts::NIXOS_CHECK, &[]).stop_on("nixos=yes")];
    // Before any change: another resource's host stays untouched.
    steps.push(owner.check_step(apply.user));
    steps.extend(blocks_at(Phase::BeforeAnyChange));
    // The first write: the host is this resource's from here on.
    steps.push(owner.claim_step(apply.user));
    let daemon = if state.daemon() { "true" } else { "false" };
    // Without systemd no installer starts a daemon: the script refuses a
    // multi-user install unless this command can start one.
    let has_restart = if state.nix_block().daemon_restart_command.is_value() {
        "true"
    } else {
        "false"
    };
    steps.push(
        Step::new(
            "install Nix",
            crate::scripts::INSTALL_NIX,
            &[
                &state.install_method(),
                &state.installer_url(),
                daemon,
                has_restart,
            ],
        )
        .serves("nix"),
    );
    steps.extend(blocks_at(Phase::BeforeConfig));
    let cachix = match target {
        CachixTarget::Known { uri, key } => Some((uri.as_str(), key.as_str())),
        _ => None,
    };
    let conf = state
        .managed_conf(cachix)
        .expect("arguments are known at apply");
    steps.push(
        Step::new(
            "write Nix config",
            crate::scripts::WRITE_CONFIG,
            &[MANAGED_CONF_PATH, NIX_CONF_PATH, INCLUDE_LINE],
        )
        .input(conf.render())
        .reports_change()
        .serves("nix"),
    );
    steps.extend(blocks_at(Phase::AfterConfig));
    // A new trusted user, config or credential reaches the daemon only
    // when it restarts.
    steps.push(restart_daemon_step(state).only_after_change());
    steps.extend(blocks_at(Phase::AfterRestart));
    steps
}

/// A `clean` destroy's steps, in order: the owner check first (another
/// resource's host is left alone), the blocks' clean steps at each
/// [`CleanPhase`] around the managed config's removal and the daemon
/// restart, and the claim's release last.
fn clean_steps(clean: &Cleaning) -> Vec<Step> {
    let blocks_at = |phase: CleanPhase| -> Vec<Step> {
        BLOCKS
            .iter()
            .flat_map(|b| b.clean_steps(phase, clean))
            .collect()
    };
    let mut steps = vec![clean.owner.check_step(clean.user)];
    steps.extend(blocks_at(CleanPhase::BeforeConfig));
    steps.extend([
        Step::new(
            "clean builder",
            crate::scripts::BUILDER_CLEAN,
            &[MANAGED_CONF_PATH, NIX_CONF_PATH, INCLUDE_LINE],
        ),
        restart_daemon_step(clean.state),
    ]);
    steps.extend(blocks_at(CleanPhase::AfterRestart));
    steps.push(clean.owner.release_step());
    steps
}

/// Terraform's validation of a configuration: the arguments
/// ([`config::validate`]), then each block's (here, so that `config` does
/// not import them: see `builder_imports_form_no_circle`).
fn validate(config: &BuilderState, diags: &mut Diagnostics) {
    config::validate(config, diags);
    for block in BLOCKS {
        block.validate(config, diags);
    }
}

/// The pins a plan promises (see [`Context::plan_pins`]), with the host key
/// also as the machines file's base64 column.
fn set_planned_pins(state: &mut BuilderState, pins: PlannedPins) {
    state.host_key_base64 = pins.host_key_base64();
    state.host_key = pins.host_key;
    state.bastion_host_key = pins.bastion_host_key;
}

/// Computed attributes still unknown become null: a state saved after a
/// failed create must be fully known.
fn settle_unknowns(state: &mut BuilderState) {
    fn string(v: &mut Value<String>) {
        if v.is_unknown() {
            *v = Value::Null;
        }
    }
    fn list(v: &mut config::StrList) {
        match v {
            Value::Unknown => *v = Value::Null,
            Value::Value(items) => items.retain(|i| !i.is_unknown()),
            Value::Null => {}
        }
    }
    for v in [
        &mut state.id,
        &mut state.system,
        &mut state.nix_version,
        &mut state.store_uri,
        &mut state.config_hash,
        &mut state.ssh_host_alias,
        &mut state.ssh_config,
        &mut state.known_hosts,
    ] {
        string(v);
    }
    for v in [&mut state.cpus, &mut state.max_jobs_effective] {
        if v.is_unknown() {
            *v = Value::Null;
        }
    }
    for v in [
        &mut state.systems,
        &mut state.supported_features,
        &mut state.drift,
    ] {
        list(v);
    }
}

/// Every check of a builder as steps: the builder check, then each block's
/// (only for what it uses). Nix's own facts come from the last snapshot
/// while the host's Nix fingerprint still matches it. `refresh`: a Read,
/// whose state holds no write-only value (files written from one are
/// checked by their keyed digests in `private`).
fn checks(state: &BuilderState, private: &BuilderPrivate, dump: bool, refresh: bool) -> Vec<Step> {
    let mut steps = vec![BuilderResource::check_step(
        state,
        dump,
        Some(&private.nix_snapshot),
        &state.owner_id.as_ref_option().cloned().unwrap_or_default(),
    )];
    let checking = Checking {
        state,
        private,
        refresh,
    };
    steps.extend(BLOCKS.iter().filter_map(|b| b.check_step(&checking)));
    steps
}

/// The facts and the blocks' drift in the output of [`checks`] (`refresh`
/// as there).
fn read_checks(
    remote: &Remote,
    state: &BuilderState,
    private: &BuilderPrivate,
    refresh: bool,
    out: &StepsOutput,
) -> Result<(Facts, Vec<String>), SshError> {
    let facts = Facts::from_check(
        remote,
        out.stdout(CHECK_STEP).unwrap_or_default(),
        Some(&private.nix_snapshot),
    )?;
    let checking = Checking {
        state,
        private,
        refresh,
    };
    let drift = BLOCKS
        .iter()
        .flat_map(|block| {
            let output = block
                .check_step(&checking)
                .and_then(|step| out.stdout(step.name()));
            block.drift(&checking, output)
        })
        .collect();
    Ok((facts, drift))
}

/// A destroy's upload of the blocks' queues (see [`Block::queue`]).
struct Drain<'a> {
    queued: &'a [(&'static dyn Block, blocks::Queue)],
    /// The index in `queued` of the queue being uploaded, for the message
    /// when the deadline catches it.
    draining: &'a Mutex<usize>,
    deadline: tokio::time::Instant,
    host: &'a str,
}

impl Drain<'_> {
    /// Upload every queue in order; `keep`: the blocks' services run again
    /// afterwards.
    async fn run(&self, remote: &Remote, keep: bool, diags: &mut Diagnostics) -> Option<()> {
        for (index, (block, _)) in self.queued.iter().enumerate() {
            *self.draining.lock().expect("draining") = index;
            block
                .drain(remote, self.deadline, keep, self.host, diags)
                .await?;
        }
        Some(())
    }
}

/// Why an apply's one command failed: a converge step (its name), or the
/// check after it.
enum Failure {
    /// A step failed: its name, the attribute it serves (see
    /// [`Step::serves`]; `host` when none), and the error.
    Step(String, Option<&'static str>, SshError),
    Check(SshError),
}

/// Append what the blocks' checks found to `state.drift`.
fn add_drift(state: &mut BuilderState, more: Vec<String>) {
    if !more.is_empty() {
        let mut drift = known_strings(&state.drift).unwrap_or_default();
        drift.extend(more);
        state.drift = str_list(&drift);
    }
}

/// The drift a refresh reports instead of reading a host whose key only an
/// import has seen (an import ID without a key): the next apply confirms it.
pub const PIN_UNCONFIRMED: &str = "host key pinned by an import, not yet confirmed against ssh.host_key: the host is read again after the next apply";

fn new_salt() -> String {
    crate::secrets::random_salt()
}

/// The build user's name when the host shows it as an account this provider
/// neither created nor adopted; else empty.
fn foreign_user(state: &BuilderState, facts: &Facts) -> String {
    match state.build_user_name() {
        Some(user) if facts.user_owner == "foreign" => user,
        _ => String::new(),
    }
}

fn host_of(state: &BuilderState) -> String {
    state.host.as_ref_option().cloned().unwrap_or_default()
}

/// Plan-time half of the ownership rule: the last Read found the build user
/// as a foreign account.
fn refuse_foreign_user(state: &BuilderState, foreign: &str, host: &str, diags: &mut Diagnostics) {
    if foreign.is_empty()
        || state.adopt_existing()
        || state.build_user_name().as_deref() != Some(foreign)
    {
        return;
    }
    diags.error(
        format!("The account `{foreign}` on {host} was not created by nixbuild_builder"),
        foreign_user_message(foreign),
        AttributePath::new("build_user").index(0).attribute("name"),
    );
}

/// Restart the daemon (the user's command, or systemd's unit) and, for a
/// multi-user Nix, wait until it answers: the apply ends with a builder that
/// serves the next client.
fn restart_daemon_step(state: &BuilderState) -> Step {
    let custom = state
        .nix_block()
        .daemon_restart_command
        .as_option()
        .unwrap_or_default();
    let daemon = if state.daemon() { "true" } else { "false" };
    Step::new(
        "restart Nix daemon",
        crate::scripts::RESTART_DAEMON,
        &[custom.as_str(), daemon],
    )
    .serves("nix")
}

/// `user@host:port`, optionally followed by whitespace and the expected host
/// key line → (user, host, port, key).
pub fn parse_import_id(
    id: &str,
) -> Result<(String, String, u16, Option<crate::ssh::HostKey>), String> {
    let id = id.trim();
    let (address, key) = match id.split_once(char::is_whitespace) {
        Some((address, key)) => {
            let key = crate::ssh::HostKey::parse(key)
                .map_err(|e| format!("the host key after the address: {e}"))?;
            (address, Some(key))
        }
        None => (id, None),
    };
    let (user, host, port) = crate::ssh::settings::parse_login(address).map_err(|e| {
        format!("{e}: expected `user@host:port [host key line]`, e.g. `root@203.0.113.7:22 ssh-ed25519 AAAA…`")
    })?;
    Ok((user, host, port, key))
}

#[async_trait]
impl Resource for BuilderResource {
    type State<'a> = BuilderState;
    type PrivateState<'a> = Value<BuilderPrivate>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        crate::tfschema::or_diag(config::schema(), diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        validate(&config, diags);
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
        let private = private_state.as_ref_option().cloned().unwrap_or_default();
        if private.pin_from_import && !private.imported {
            // The pin is only the first key an import saw, and a Read does not
            // see the configuration's `ssh.host_key`: logging in with the pin
            // could log in to the very host that key would refuse. The plan
            // compares them first (`plan_pins`); the apply it plans (drift)
            // logs in and confirms the pin.
            let mut state = state;
            if !known_strings(&state.drift)
                .unwrap_or_default()
                .iter()
                .any(|d| d == PIN_UNCONFIRMED)
            {
                add_drift(&mut state, vec![PIN_UNCONFIRMED.to_string()]);
            }
            tracing::info!(host, "not refreshed: the host key was pinned by an import and is not confirmed by an apply yet");
            return Some((state, private_state));
        }
        let pinned = state.host_key.as_ref_option().cloned();
        let outcome = configured
            .connect(
                &Self::target(&state, &host, pinned.as_deref()),
                Purpose::Read,
                diags,
            )
            .await;
        let remote = match outcome {
            Outcome::Connected(remote) => remote,
            Outcome::KeepState | Outcome::Interrupted => return Some((state, private_state)),
            Outcome::Failed => return None,
        };
        let checked = Context::within_read_budget(&remote, CHECK_STEP, async {
            let out = remote
                .run_steps(
                    CHECK_STEP,
                    &checks(&state, &private, private.imported, true),
                    true,
                )
                .await?;
            read_checks(&remote, &state, &private, true, &out)
        })
        .await;
        let (facts, monitoring_drift) = match checked {
            Ok(checked) => checked,
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
        let secrets = Secrets::in_effect(&configured, &state);
        let mut state = state;
        let mut private = private;
        if private.imported {
            // An import manages the host as it finds it: the resource whose
            // claim it finds is this one from now on.
            if !facts.host_owner.is_empty() {
                state.owner_id = Value::Value(facts.host_owner.clone());
            }
            match &facts.config_text {
                Some(text) => state.adopt(
                    text,
                    facts.keys_text.as_deref(),
                    facts.unit != "absent",
                    facts.user_owner == "adopted",
                ),
                None => diags.warning(
                    format!("{host} has no managed Nix config"),
                    "the import found no /etc/nix/nixbuild.conf: the next apply bootstraps the host",
                    AttributePath::new("host"),
                ),
            }
            private.imported = false;
        }
        // A state from an earlier release: its id from now on (this Read
        // claims nothing; the next apply or clean claims an unclaimed host).
        if !state.owner_id.is_value() {
            state.owner_id = Value::Value(ownership::new_owner_id());
        }
        Self::observe(&mut state, &remote, &facts, &mut private, &secrets);
        add_drift(&mut state, monitoring_drift);
        Some((state, Value::Value(private)))
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
        Self::check_plan(&configured, &state, diags);
        let target = self.cachix_target(&configured, &state, None, diags).await?;
        let host = state.host.as_ref_option().cloned();
        state.id = match &host {
            Some(host) => match configured.settings(&Target::new(host, &state.ssh), diags) {
                Some(settings) => Value::Value(settings.endpoint.to_string()),
                None => return None,
            },
            None => Value::Unknown,
        };
        let pins = configured.plan_pins(&Route::new(&state.host, &state.ssh), None, diags)?;
        set_planned_pins(&mut state, pins);
        state.system = Value::Unknown;
        state.nix_version = Value::Unknown;
        state.cpus = Value::Unknown;
        state.supported_features = Value::Unknown;
        state.config_hash = Self::desired_hash(&state, &target);
        state.drift = Value::Value(vec![]);
        // Made by the apply: Terraform plans twice, and the two must agree.
        state.owner_id = Value::Unknown;
        Self::derive(&mut state, host.as_deref().unwrap_or_default());
        if let Some(host) = &host {
            Self::check_at_plan(
                &configured,
                &state,
                &Self::target(&state, host, None),
                diags,
            )
            .await;
        }
        let mut private = BuilderPrivate {
            token_salt: new_salt(),
            token_fingerprint: String::new(),
            imported: false,
            pin_from_import: false,
            records_ownership: true,
            ..Default::default()
        };
        Self::remember_cachix(&mut private, &state, &target);
        Some((state, Value::Value(private)))
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
        Self::check_plan(&configured, &state, diags);
        if let Some(private) = prior_private_state.as_ref_option() {
            refuse_foreign_user(&state, &private.foreign_user, &host_of(&state), diags);
            ownership::warn_other_owner(&state, private, &host_of(&state), diags);
        }
        let target = self
            .cachix_target(
                &configured,
                &state,
                prior_private_state.as_ref_option(),
                diags,
            )
            .await?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        // A changed `ssh.port` or `ssh.user` is another endpoint (and another
        // `ssh_config` for clients).
        state.id = match configured.settings(&Target::new(&host, &state.ssh), diags) {
            Some(settings) => Value::Value(settings.endpoint.to_string()),
            None => return None,
        };
        state.config_hash = Self::desired_hash(&state, &target);
        state.drift = Value::Value(vec![]);
        // A state from an earlier release gets its id at a refresh; without
        // one (`-refresh=false`), the apply makes it.
        if state.owner_id.is_null() {
            state.owner_id = Value::Unknown;
        }
        Self::derive(&mut state, &host);
        let mut private = prior_private_state
            .as_option()
            .unwrap_or_else(|| BuilderPrivate {
                token_salt: new_salt(),
                token_fingerprint: String::new(),
                imported: false,
                pin_from_import: false,
                ..Default::default()
            });
        Self::remember_cachix(&mut private, &state, &target);
        if Self::detected_features_may_change(&prior_state, &state, &target, &private) {
            state.supported_features = Value::Unknown;
        }
        // A write-only value is not in the prior state, and may differ on
        // every run (e.g. from an ephemeral resource): only adding or
        // removing a twin (or a new `_wo_version`, an ordinary change)
        // plans an update, which writes what is then in effect.
        if Self::write_only_args(&state) != private.write_only {
            state.drift = Value::Unknown;
        }
        let prior = Prior::new(
            &prior_state.host,
            &prior_state.ssh,
            &prior_state.host_key,
            &prior_state.bastion_host_key,
        )
        .pinned_at_import(private.pin_from_import);
        let pins =
            configured.plan_pins(&Route::new(&state.host, &state.ssh), Some(&prior), diags)?;
        set_planned_pins(&mut state, pins);
        // The client attributes follow the planned key and endpoint.
        client::derive(&mut state);
        let pinned = prior_state.host_key.as_ref_option().map(String::as_str);
        Self::check_at_plan(
            &configured,
            &state,
            &Self::target(&prior_state, &host, pinned),
            diags,
        )
        .await;
        Some((state, Value::Value(private), vec![]))
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
        let private = planned_private_state.as_option().unwrap_or_default();
        let timeout = planned_state.timeout(Operation::Create);
        let (state, private) = self
            .apply(
                diags,
                planned_state,
                private,
                HowToApply {
                    pinned: None,
                    purpose: Purpose::Create,
                    timeout,
                    previous_user: None,
                },
            )
            .await?;
        Some((state, Value::Value(private)))
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
        let private = planned_private_state.as_option().unwrap_or_default();
        let timeout = planned_state.timeout(Operation::Update);
        let previous_user = prior_state.build_user_name();
        let pinned = prior_state.host_key.as_option();
        let (state, private) = self
            .apply(
                diags,
                planned_state,
                private,
                HowToApply {
                    pinned,
                    purpose: Purpose::Update,
                    timeout,
                    previous_user,
                },
            )
            .await?;
        Some((state, Value::Value(private)))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let configured = self.shared.get(diags)?;
        let private = private_state.as_option().unwrap_or_default();
        // A state from before owner ids (not refreshed since) cleans a host
        // nobody claimed.
        let owner = Owner::of(&mut state.clone());
        // Everything below, the queues' upload included, within
        // `timeouts.delete`.
        let delete_timeout = state.timeout(Operation::Delete);
        let deadline = tokio::time::Instant::now() + delete_timeout;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        // What the blocks queued on the host (watch-store's paths, the push
        // hook's builds) is uploaded before the host, or the block, goes.
        let queued: Vec<(&'static dyn Block, blocks::Queue)> = BLOCKS
            .iter()
            .filter_map(|block| block.queue(&state).map(|queue| (*block, queue)))
            .collect();
        // Which queue the deadline caught, for its message.
        let draining = Mutex::new(0);
        let drain = Drain {
            queued: &queued,
            draining: &draining,
            deadline,
            host: &host,
        };
        let timed_out = |diags: &mut Diagnostics| {
            let index = *draining.lock().expect("draining");
            if let Some((block, _)) = queued.get(index) {
                block.drain_timed_out(&host, delete_timeout, diags);
            }
        };
        if !state.on_destroy_clean() {
            // `keep`: touch nothing. A replacement at the same address
            // inherits the pin.
            let pinned = state.host_key.as_ref_option().map(String::as_str);
            let target = Self::target(&state, &host, pinned);
            configured.remember_pin(&target);
            configured.leave_owner(&target, &owner.id);
            if queued.is_empty() {
                // No connection at all: the host is usually gone.
                return Some(());
            }
            // A host that cannot be reached (the read policy: a short
            // connect, a warning) has nothing this destroy can save.
            let work = async {
                let mut attempt = Diagnostics::default();
                match configured
                    .connect(&target, Purpose::Read, &mut attempt)
                    .await
                {
                    // `keep`: the blocks' services run again afterwards.
                    Outcome::Connected(remote) => drain.run(&remote, true, diags).await,
                    Outcome::Interrupted => {
                        diags.errors.extend(attempt.errors);
                        None
                    }
                    Outcome::KeepState | Outcome::Failed => {
                        for (_, queue) in &queued {
                            for d in attempt.errors.iter().chain(&attempt.warnings) {
                                diags.warning(
                                    format!("{} of {host} not checked: {}", queue.what, d.summary),
                                    format!(
                                        "{} {}, if any, are not uploaded; the builder is destroyed (on_destroy = \"keep\" touches nothing on the host).",
                                        d.detail, queue.lost
                                    ),
                                    queue.at.clone(),
                                );
                            }
                        }
                        Some(())
                    }
                }
            };
            return match tokio::time::timeout_at(deadline, work).await {
                Ok(result) => result,
                Err(_) => {
                    timed_out(diags);
                    None
                }
            };
        }
        let user = state.build_user_name().unwrap_or_default();
        let cleaning = Cleaning {
            state: &state,
            private: &private,
            user: &user,
            owner: &owner,
        };
        let work = async {
            let remote = configured
                .connect_or_fail(
                    &Self::target(
                        &state,
                        &host,
                        state.host_key.as_ref_option().map(String::as_str),
                    ),
                    Purpose::Delete,
                    diags,
                )
                .await?;
            drain.run(&remote, false, diags).await?;
            let steps = clean_steps(&cleaning);
            let out = match remote.run_steps("clean builder", &steps, true).await {
                Ok(out) => out,
                Err(e) => {
                    diags.error(
                        format!("Cleaning {host} failed"),
                        e.to_string(),
                        AttributePath::new("on_destroy"),
                    );
                    return None;
                }
            };
            if let Some(other) = ownership::OtherOwner::in_output(&out) {
                // This resource owns nothing there: it goes, the host stays.
                diags.warning(
                    format!("{host} was not cleaned: another nixbuild_builder resource owns it"),
                    format!(
                        "{} This destroy removed the resource from the state only.",
                        other.message(&host)
                    ),
                    AttributePath::new("on_destroy"),
                );
            }
            Some(())
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                diags.error(
                    format!("Cleaning {host} timed out"),
                    "raise `timeouts.delete`, or set on_destroy = \"keep\"",
                    AttributePath::new("timeouts"),
                );
                None
            }
        }
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let (user, host, port, expected) = match parse_import_id(&id) {
            Ok(parts) => parts,
            Err(e) => {
                diags.root_error("Invalid import ID", format!("`{id}`: {e}"));
                return None;
            }
        };
        match &expected {
            Some(key) => {
                tracing::info!(host, host_key = %key.fingerprint(), "import expects the host key given in the ID")
            }
            None => tracing::info!(
                host,
                "import ID carries no host key: the first key the host presents is pinned"
            ),
        }
        let ssh = SshBlock::for_login(&user, port);
        let pin_from_import = expected.is_none();
        let state = BuilderState {
            host: Value::Value(host),
            ssh,
            host_key: expected.as_ref().map(|k| k.openssh_line()).into(),
            host_key_base64: expected.as_ref().map(|k| k.base64_line()).into(),
            ..Default::default()
        };
        let private = BuilderPrivate {
            token_salt: new_salt(),
            token_fingerprint: String::new(),
            imported: true,
            pin_from_import,
            records_ownership: true,
            ..Default::default()
        };
        Some((state, Value::Value(private)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids() {
        let parts = |id: &str| {
            let (u, h, p, k) = parse_import_id(id).unwrap();
            (u, h, p, k.map(|k| k.openssh_line()))
        };
        assert_eq!(
            parts("root@203.0.113.7:22"),
            ("root".into(), "203.0.113.7".into(), 22, None)
        );
        assert_eq!(
            parts("deploy@builder.example.com"),
            ("deploy".into(), "builder.example.com".into(), 22, None)
        );
        assert_eq!(
            parts("root@[2001:db8::1]:2222"),
            ("root".into(), "2001:db8::1".into(), 2222, None)
        );
        const KEY: &str =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";
        assert_eq!(
            parts(&format!("root@203.0.113.7:22 {KEY} root@builder")),
            (
                "root".into(),
                "203.0.113.7".into(),
                22,
                Some(KEY.to_string())
            )
        );
        assert!(parse_import_id("root@203.0.113.7:22 ssh-ed25519 nope").is_err());
        for bad in [
            "203.0.113.7",
            "root@:22",
            "root@h:0",
            "a;b@h:22",
            "root@h:x",
        ] {
            assert!(parse_import_id(bad).is_err(), "{bad}");
        }
    }

    fn secret(s: &str) -> Value<Secret> {
        Value::Value(Secret::new(s))
    }

    /// A builder with every secret given as its write-only twin (as plan and
    /// apply see it: the plugin layer copies the values from the
    /// configuration), and the same as a refresh sees it (twins null).
    fn write_only_builder() -> (BuilderState, BuilderState) {
        let planned = BuilderState {
            nix: Value::Value(config::NixBlock {
                netrc_wo: secret("machine h login u password p"),
                netrc_wo_version: Value::Value(1),
                ..Default::default()
            }),
            cachix: Value::Value(config::CachixBlock {
                cache: Value::Value("c".into()),
                public_key: Value::Value("c-1:AAAA".into()),
                watch_store: Value::Value(true),
                auth_token_wo: secret("tok"),
                ..Default::default()
            }),
            push: Value::Value(push_hook::PushBlock {
                store_uri: Value::Value("file:///c".into()),
                secret_key_wo: secret("k-1:AAAA"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut refreshed = planned.clone();
        if let Value::Value(nix) = &mut refreshed.nix {
            nix.netrc_wo = Value::Null;
        }
        if let Value::Value(cachix) = &mut refreshed.cachix {
            cachix.auth_token_wo = Value::Null;
        }
        if let Value::Value(push) = &mut refreshed.push {
            push.secret_key_wo = Value::Null;
        }
        (planned, refreshed)
    }

    /// The step names of a builder with every block (`every`) or none, as
    /// an apply converges, checks and cleans: each block's steps sit at its
    /// phase, in the order of [`BLOCKS`].
    fn step_names(every: bool) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut state, _) = write_only_builder();
        state.host = Value::Value("h".into());
        state.owner_id = Value::Value("0123456789abcdef0123456789abcdef".into());
        if every {
            state.monitoring = Value::Value(config::MonitoringBlock::default());
            state.gc = Value::Value(config::GcBlock {
                schedule: Value::Value("daily".into()),
                ..Default::default()
            });
        } else {
            state.cachix = Value::Null;
            state.push = Value::Null;
            state.nix = Value::Null;
        }
        // A 0.1.0 state whose build user is renamed.
        let private = BuilderPrivate {
            credentials_fingerprint: "applied".into(),
            ..Default::default()
        };
        let owner = Owner::applying(&state, "");
        let secrets = Secrets::of(Some("t"), None);
        let user = state.build_user_name().unwrap();
        let apply = Applying {
            state: &state,
            private: &private,
            user: &user,
            owner: &owner,
            previous_user: Some("old"),
            secrets: &secrets,
        };
        let target = CachixTarget::Known {
            uri: "https://c.cachix.org".into(),
            key: "c-1:AAAA".into(),
        };
        let names = |steps: Vec<Step>| steps.iter().map(|s| s.name().to_string()).collect();
        let clean = Cleaning {
            state: &state,
            private: &private,
            user: &user,
            owner: &owner,
        };
        (
            names(converge_steps(&apply, &target)),
            names(checks(&state, &private, false, false)),
            names(clean_steps(&clean)),
        )
    }

    #[test]
    fn blocks_run_at_their_phases_in_list_order() {
        let (converge, checks, clean) = step_names(true);
        assert_eq!(
            converge,
            [
                PROBE_STEP,
                ownership::CHECK_STEP,
                "claim build user",
                build_user::OWNER_STEP,
                ownership::CLAIM_STEP,
                "install Nix",
                "set up push hook",
                "write Nix credentials",
                "write Nix config",
                "create build user",
                "release build user",
                "cachix",
                "restart Nix daemon",
                "set up monitoring",
                "set up periodic gc",
            ]
        );
        assert_eq!(
            checks,
            [
                CHECK_STEP,
                "check push hook",
                "check monitoring",
                "check Nix credentials",
                "check periodic gc",
            ]
        );
        let clean_order = [
            ownership::CHECK_STEP,
            "claim build user",
            "release build user",
            "cachix",
            "remove monitoring",
            "remove Nix credentials",
            "remove periodic gc",
            "clean builder",
            "restart Nix daemon",
            "remove push hook",
            "release host",
        ];
        assert_eq!(clean, clean_order);
        // Without the blocks: what an earlier apply left goes, after the
        // daemon restarted without it.
        let (converge, checks, clean) = step_names(false);
        assert_eq!(
            converge[converge.len() - 4..],
            [
                "restart Nix daemon",
                "remove push hook",
                "remove monitoring",
                "remove periodic gc"
            ]
        );
        assert_eq!(checks, [CHECK_STEP, "check Nix credentials"]);
        assert_eq!(clean, clean_order);
    }

    #[test]
    fn write_only_arguments_are_recorded_by_name() {
        let (planned, refreshed) = write_only_builder();
        assert_eq!(
            BuilderResource::write_only_args(&planned),
            ["cachix.auth_token", "nix.netrc", "push.secret_key"]
        );
        assert!(BuilderResource::write_only_args(&refreshed).is_empty());
        // The token counts only where it is written (watch_store).
        let mut no_watch = planned.clone();
        if let Value::Value(cachix) = &mut no_watch.cachix {
            cachix.watch_store = Value::Null;
        }
        assert_eq!(
            BuilderResource::write_only_args(&no_watch),
            ["nix.netrc", "push.secret_key"]
        );
    }

    /// The refresh of a token given as `auth_token_wo` falls back to the
    /// provider's (here: none), which is not what the apply wrote: that is
    /// no drift, since the state cannot hold the write-only token.
    #[test]
    fn a_write_only_token_is_not_compared_on_refresh() {
        let (planned, refreshed) = write_only_builder();
        let mut private = BuilderPrivate {
            token_salt: "salt".into(),
            ..Default::default()
        };
        Secrets::of(Some("tok"), None).record(&planned, &mut private);
        let facts = Facts {
            unit: "active".into(),
            user: true,
            include: true,
            ..Default::default()
        };
        let token_drift = |state: &BuilderState, private: &BuilderPrivate, token: Option<&str>| {
            BuilderResource::drift(state, &facts, private, &Secrets::of(token, None))
                .into_iter()
                .filter(|d| d.contains("Cachix auth token"))
                .count()
        };
        assert_eq!(
            token_drift(&refreshed, &private, None),
            1,
            "without the record"
        );
        private.write_only = BuilderResource::write_only_args(&planned);
        assert_eq!(token_drift(&refreshed, &private, None), 0);
        assert_eq!(token_drift(&planned, &private, Some("tok")), 0);
    }

    /// The config hash of the prior state counts the credentials file that
    /// write-only arguments (absent from the prior state) asked for.
    #[test]
    fn the_prior_config_hash_includes_write_only_credentials() {
        let (planned, refreshed) = write_only_builder();
        let target = CachixTarget::None;
        let applied = BuilderResource::desired_hash(&planned, &target);
        let mut private = BuilderPrivate {
            token_salt: "salt".into(),
            ..Default::default()
        };
        nix_credentials::record_applied(&planned, &mut private);
        assert!(!private.credentials_fingerprint.is_empty());
        assert_ne!(
            BuilderResource::prior_hash(&refreshed, &target, &private),
            applied
        );
        private.write_only = BuilderResource::write_only_args(&planned);
        assert_eq!(
            BuilderResource::prior_hash(&refreshed, &target, &private),
            applied
        );
        // The state the apply left: the host's hash is the one it wrote.
        let mut refreshed = refreshed;
        refreshed.config_hash = applied;
        assert!(!BuilderResource::detected_features_may_change(
            &refreshed, &planned, &target, &private
        ));
    }

    /// The modules of this directory and which of them each one uses:
    /// `super::x` (`x` a sibling, else this `mod.rs`), `crate::resources::builder::x`,
    /// and in `mod.rs` a child's `x::`. Comments and `#[cfg(test)]` code
    /// (whose `super::` is the file itself) do not count.
    fn builder_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/resources/builder");
        let mut sources = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path.file_stem().unwrap().to_string_lossy().to_string();
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: String = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                sources.insert(name, code);
            }
        }
        let modules: std::collections::BTreeSet<String> = sources.keys().cloned().collect();
        let ident = regex::Regex::new(
            r"(super|crate::resources::builder)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)",
        )
        .unwrap();
        let child = regex::Regex::new(r"(^|[^A-Za-z0-9_:])([a-z_][a-z0-9_]*)::").unwrap();
        let mut graph = std::collections::BTreeMap::new();
        for (name, code) in &sources {
            let mut uses = std::collections::BTreeSet::new();
            let mut add = |item: &str| {
                let first = item.trim().split("::").next().unwrap_or_default().trim();
                if first.is_empty() || first == "*" || first == "self" {
                    return;
                }
                uses.insert(if modules.contains(first) {
                    first.to_string()
                } else {
                    "mod".to_string()
                });
            };
            for c in ident.captures_iter(code) {
                let what = &c[2];
                match what.strip_prefix('{') {
                    Some(list) => list.trim_end_matches('}').split(',').for_each(&mut add),
                    None => add(what),
                }
            }
            if name == "mod" {
                for line in code.lines().filter(|l| {
                    !l.trim_start().starts_with("pub mod ") && !l.trim_start().starts_with("mod ")
                }) {
                    for c in child.captures_iter(line) {
                        if modules.contains(&c[2]) && &c[2] != "mod" {
                            uses.insert(c[2].to_string());
                        }
                    }
                }
            }
            uses.remove(name);
            graph.insert(name.clone(), uses);
        }
        graph
    }

    /// A circle in `graph` (module → the modules it uses), as its path.
    fn circle(
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    ) -> Option<Vec<String>> {
        fn visit(
            node: &str,
            graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut std::collections::BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|p| p == node) {
                let mut found = path[at..].to_vec();
                found.push(node.to_string());
                return Some(found);
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(found) = visit(next, graph, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            done.insert(node.to_string());
            None
        }
        let mut done = std::collections::BTreeSet::new();
        graph
            .keys()
            .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
    }

    /// The files of `src/resources/builder` use each other without a circle
    /// (docs/decisions.md, "The builder's blocks"): `config` holds the
    /// arguments, the blocks use it, `mod.rs` uses them all.
    #[test]
    fn builder_imports_form_no_circle() {
        let graph = builder_imports();
        // The parse sees the edges it must.
        for (from, to) in [
            ("mod", "config"),
            ("mod", "gc"),
            ("push_hook", "config"),
            ("build_user", "legacy"),
            ("gc", "blocks"),
            ("nix_conf", "push_hook"),
        ] {
            assert!(
                graph[from].contains(to),
                "{from} → {to} not seen: {graph:?}"
            );
        }
        assert_eq!(
            circle(&graph),
            None,
            "import circle in src/resources/builder: {graph:?}"
        );
        // And the search finds a circle when there is one.
        let mut with_circle = graph.clone();
        with_circle
            .get_mut("config")
            .unwrap()
            .insert("push_hook".into());
        assert_eq!(
            circle(&with_circle),
            Some(
                ["blocks", "config", "push_hook", "blocks"]
                    .map(String::from)
                    .to_vec()
            )
        );
    }

    #[test]
    fn salts_differ() {
        assert_ne!(new_salt(), new_salt());
    }
}
