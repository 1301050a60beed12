//! The build user as a [`Block`]: its account steps (`build_user.sh`: the
//! owner check before any change, create or adopt, claim, release), the
//! messages of a refused account, and the drift the builder check reports
//! for it.

use super::blocks::{Applying, Block, CleanPhase, Cleaning, Phase};
use super::config::{BuilderPrivate, BuilderState, ACCOUNT_RECORDS};
use super::legacy;
use super::ownership::Owner;
use super::watch_store::Secrets;
use crate::host::Facts;
use crate::nix::conf::sha256_hex;
use crate::ssh::steps::{Step, StepsOutput};

pub struct BuildUser;

impl Block for BuildUser {
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        let (user, owner) = (apply.user, apply.owner);
        let adopt = if apply.state.adopt_existing() {
            "yes"
        } else {
            "no"
        };
        match phase {
            Phase::BeforeAnyChange => {
                let mut steps = Vec::new();
                if legacy::is_legacy(apply.private) {
                    steps.push(claim_step(apply.previous_user.unwrap_or(user), owner));
                }
                // An account this resource did not create (or another
                // resource's) stays untouched.
                steps
                    .push(build_user_step("owner", user, adopt, owner, None).stop_on("refuse=yes"));
                steps
            }
            Phase::AfterConfig => {
                let keys = apply.state.authorized_keys_file().expect("known at apply");
                let mut steps = vec![
                    build_user_step("ensure", user, adopt, owner, Some(keys)).reports_change()
                ];
                if let Some(old) = apply.previous_user.filter(|old| *old != user) {
                    steps.push(build_user_step("release", old, "no", owner, None));
                }
                steps
            }
            Phase::BeforeConfig | Phase::AfterRestart => vec![],
        }
    }

    fn refusal(&self, out: &StepsOutput, apply: &Applying) -> Option<(String, String)> {
        let found = out.stdout(OWNER_STEP)?;
        if !found.lines().any(|l| l == "refuse=yes") {
            return None;
        }
        let message = if found.lines().any(|l| l == "owner=other") {
            other_owners_user_message(apply.user)
        } else {
            foreign_user_message(apply.user)
        };
        Some((OWNER_STEP.to_string(), message))
    }

    fn drift_in_facts(
        &self,
        state: &BuilderState,
        private: &BuilderPrivate,
        facts: &Facts,
        _secrets: &Secrets,
    ) -> Vec<String> {
        let user = state.build_user_name().unwrap_or_default();
        let found = if !facts.user {
            format!("build user `{user}` is missing")
        } else if facts.user_owner == "other" {
            format!(
                "build user `{user}` belongs to another nixbuild_builder resource (its record in {ACCOUNT_RECORDS} names another owner id)"
            )
        } else if facts.user_owner == "foreign" && !legacy::is_legacy(private) {
            format!(
                "build user `{user}` is an account nixbuild_builder did not create (no record in {ACCOUNT_RECORDS})"
            )
        } else {
            match state.authorized_keys_file() {
                Some(keys) if sha256_hex(keys.as_bytes()) != facts.user_keys_sha256 => {
                    format!("authorized_keys of `{user}` differ from build_user.authorized_keys")
                }
                _ => return vec![],
            }
        };
        vec![found]
    }

    /// Only what this resource created: an account it did not create stays.
    fn clean_steps(&self, phase: CleanPhase, clean: &Cleaning) -> Vec<Step> {
        if phase != CleanPhase::BeforeConfig {
            return vec![];
        }
        let mut steps = Vec::new();
        if legacy::is_legacy(clean.private) {
            steps.push(claim_step(clean.user, clean.owner));
        }
        steps.push(build_user_step(
            "release",
            clean.user,
            "no",
            clean.owner,
            None,
        ));
        steps
    }
}

/// Record a 0.1.0 builder's build user as created by this provider (nothing
/// happens when the host already has a record, or no such account): see
/// [`legacy`].
fn claim_step(user: &str, owner: &Owner) -> Step {
    build_user_step("claim", user, "no", owner, None)
}

/// `build_user.sh MODE NAME RECORD_DIR ADOPT OWNER_ID ADOPT_OWNER_ID` (with
/// its `account_owner`) as a step; `keys` (authorized_keys) on stdin.
pub fn build_user_step(
    mode: &str,
    user: &str,
    adopt: &str,
    owner: &Owner,
    keys: Option<String>,
) -> Step {
    let script = format!(
        "{}\n{}",
        crate::scripts::ACCOUNT,
        crate::scripts::BUILD_USER
    );
    let step = match mode {
        "release" => "release build user",
        "owner" => OWNER_STEP,
        "claim" => "claim build user",
        _ => "create build user",
    };
    let step = Step::new(
        step,
        script,
        &[mode, user, ACCOUNT_RECORDS, adopt, &owner.id, &owner.adopt],
    )
    .serves("build_user");
    match keys {
        Some(keys) => step.input(keys),
        None => step,
    }
}

/// The build user's owner check's step name.
pub const OWNER_STEP: &str = "check build user";

pub fn other_owners_user_message(user: &str) -> String {
    format!("the account `{user}` was created or adopted by another nixbuild_builder resource (its record in {ACCOUNT_RECORDS}/{user} names another owner id); nothing was changed. Choose another build_user.name, or take that resource's objects over with adopt_owner (its owner id is in the record)")
}

pub fn foreign_user_message(user: &str) -> String {
    format!("the account `{user}` already exists on the host and was not created by nixbuild_builder; nothing was changed. Choose another build_user.name, or set build_user.adopt_existing = true to manage that account as the build user (it is then never deleted)")
}
