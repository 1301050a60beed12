//! The build user's account steps (`build_user.sh`): the owner check
//! before any change, create or adopt, claim, release, and the messages of
//! a refused account.

use super::config::ACCOUNT_RECORDS;
use super::ownership::Owner;
use crate::ssh::steps::Step;

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
