//! Ownership per resource (issue 28, hole 5). Every `nixbuild_builder`
//! resource has an owner id (random, the computed `owner_id`). The host keeps
//! which resource owns its managed objects in a claim file
//! ([`OWNER_FILE`], `host_owner.sh`): those objects are one per host
//! (`nixbuild.conf`, the include line, the watch-store, push, monitoring and
//! gc units, the credential files), so one claim covers them. The build
//! user's record names its owner too (`build_user.sh`). An apply or a clean
//! whose resource does not own the host stops before changing anything;
//! `adopt_owner` names an owner whose objects an apply takes over.

use tf_provider::{AttributePath, Diagnostics};

use super::config::{BuilderPrivate, BuilderState, OWNER_FILE};
use crate::ssh::steps::{Step, StepsOutput};

/// The step that reads the host's claim (read-only) and stops on another's.
pub const CHECK_STEP: &str = "check host owner";
/// The step that writes the host's claim for this resource.
pub const CLAIM_STEP: &str = "claim host";
/// The line `host_owner.sh` prints for a host another resource owns.
const OTHER: &str = "owner=other";

/// Whose objects a run may touch: this resource's owner id, and the id of
/// another owner it takes over (`adopt_owner`; empty: none).
#[derive(Clone, Debug)]
pub struct Owner {
    pub id: String,
    pub adopt: String,
}

impl Owner {
    /// The owner of `state` (made now, into `state`, when it has no id yet:
    /// it claims what it finds unclaimed) and its `adopt_owner`.
    pub fn of(state: &mut BuilderState) -> Self {
        if !state.owner_id.is_value() {
            state.owner_id = tf_provider::value::Value::Value(new_owner_id());
        }
        Self::known(state)
    }

    /// The owner of `state`, whose id [`of`](Self::of) has made.
    pub fn known(state: &BuilderState) -> Self {
        let id = state.owner_id.as_ref_option().cloned().unwrap_or_default();
        debug_assert!(!id.is_empty(), "owner id made before");
        Self {
            id,
            adopt: state.adopt_owner(),
        }
    }

    /// The owner of `state` during an apply: a create that replaces an
    /// object which left its claim on the host (`predecessor`, see
    /// [`Context::take_left_owner`](crate::context::Context::take_left_owner))
    /// takes that claim over, unless `adopt_owner` names another.
    pub fn applying(state: &BuilderState, predecessor: &str) -> Self {
        let mut owner = Self::known(state);
        if owner.adopt.is_empty() {
            owner.adopt = predecessor.to_string();
        }
        owner
    }

    fn step(&self, name: &str, mode: &str, user: &str) -> Step {
        Step::new(
            name,
            crate::scripts::HOST_OWNER,
            &[mode, OWNER_FILE, &self.id, &self.adopt, user],
        )
    }

    /// Read the host's claim; the batch stops when another resource owns it.
    pub fn check_step(&self, user: &str) -> Step {
        self.step(CHECK_STEP, "check", user).stop_on(OTHER)
    }

    /// Claim the host (or take it over from `adopt`); stops on another's claim.
    pub fn claim_step(&self, user: &str) -> Step {
        self.step(CLAIM_STEP, "claim", user).stop_on(OTHER)
    }

    /// Remove the host's claim if it is this resource's (after a clean).
    pub fn release_step(&self) -> Step {
        self.step("release host", "release", "")
    }
}

/// A new owner id (128 random bits, lowercase hex).
pub fn new_owner_id() -> String {
    crate::secrets::random_hex()
}

/// The claim of another resource that stopped a run, as the host shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OtherOwner {
    pub id: String,
    pub build_user: String,
    pub since: String,
}

impl OtherOwner {
    /// Parse the lines of a step that stopped on [`OTHER`].
    fn parse(text: &str) -> Option<Self> {
        if !text.lines().any(|l| l == OTHER) {
            return None;
        }
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_default()
                .to_string()
        };
        Some(Self {
            id: field("other_owner="),
            build_user: field("other_build_user="),
            since: field("other_since="),
        })
    }

    /// The other owner that stopped `out` at one of the ownership steps.
    pub fn in_output(out: &StepsOutput) -> Option<Self> {
        [CHECK_STEP, CLAIM_STEP]
            .iter()
            .find_map(|step| out.stdout(step).and_then(Self::parse))
    }

    /// What the error says: whose objects they are, and how to take over.
    pub fn message(&self, host: &str) -> String {
        let user = if self.build_user.is_empty() {
            String::new()
        } else {
            format!(", build user `{}`", self.build_user)
        };
        let since = if self.since.is_empty() {
            String::new()
        } else {
            format!(", since {}", self.since)
        };
        format!(
            "the builder objects on {host} (/etc/nix/nixbuild.conf and its include line, the build user, the watch-store, push, monitoring and gc units, the credential files) belong to another nixbuild_builder resource (owner id {id}{user}{since}; the claim is {OWNER_FILE}); nothing was changed. A host has one builder resource: remove this one or the other. To move them to this resource, destroy the other one with on_destroy = \"keep\" (or remove it from its state), then set adopt_owner = \"{id}\" here.",
            id = self.id
        )
    }
}

/// Plan-time half of the rule: the last Read found the host owned by another
/// resource, and the configuration does not take it over. A warning, not an
/// error: Terraform's destroy plans the configuration first (its refresh),
/// and an error there would keep a resource that owns nothing from being
/// destroyed. The refresh's drift plans an update, which the apply refuses
/// with the same message before changing anything.
pub fn warn_other_owner(
    state: &BuilderState,
    private: &BuilderPrivate,
    host: &str,
    diags: &mut Diagnostics,
) {
    if private.other_owner.is_empty() || state.adopt_owner() == private.other_owner {
        return;
    }
    let other = OtherOwner {
        id: private.other_owner.clone(),
        ..Default::default()
    };
    diags.warning(
        format!("{host} belongs to another nixbuild_builder resource"),
        other.message(host),
        AttributePath::new("host"),
    );
}

/// The host's owner as a Read sees it: another resource's id, or empty
/// (none, or this resource's).
pub fn other_owner_found(state: &BuilderState, host_owner: &str) -> String {
    if host_owner.is_empty()
        || state.owner_id.as_ref_option().map(String::as_str) == Some(host_owner)
    {
        String::new()
    } else {
        host_owner.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_owners_claim_is_parsed_for_the_error() {
        let text = "owner=other\nother_owner=0a1b\nother_build_user=nixbuild\nother_since=2026-12-06T11:00:00Z\n";
        let other = OtherOwner::parse(text).unwrap();
        assert_eq!(other.id, "0a1b");
        assert_eq!(other.build_user, "nixbuild");
        let message = other.message("h1");
        assert!(message.contains("owner id 0a1b"), "{message}");
        assert!(message.contains("adopt_owner = \"0a1b\""), "{message}");
        assert_eq!(OtherOwner::parse("owner=this\n"), None);
        // A line only starting like the stop line is not one.
        assert_eq!(OtherOwner::parse("owner=otherwise\n"), None);
    }

    #[test]
    fn a_state_without_an_owner_id_gets_one_once() {
        let mut state = BuilderState::default();
        let first = Owner::of(&mut state);
        assert_eq!(first.id.len(), 32);
        assert!(super::super::config::check_owner_id(&first.id).is_ok());
        assert_eq!(Owner::of(&mut state).id, first.id);
        assert_eq!(Owner::known(&state).id, first.id);
    }

    #[test]
    fn only_another_id_is_another_owner() {
        let state = BuilderState {
            owner_id: tf_provider::value::Value::Value("aa".into()),
            ..Default::default()
        };
        assert_eq!(other_owner_found(&state, ""), "");
        assert_eq!(other_owner_found(&state, "aa"), "");
        assert_eq!(other_owner_found(&state, "bb"), "bb");
        // Without an id yet, any claim is another resource's: this one
        // never claimed the host.
        assert_eq!(other_owner_found(&BuilderState::default(), "bb"), "bb");
    }
}
