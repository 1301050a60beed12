//! The one interface of the builder's blocks: the build user, Cachix,
//! `push`, `monitoring`, the Nix credentials and `gc`. Each block says, in
//! its own file, what it adds at each point of the builder's life: its
//! validation, its converge steps at each [`Phase`], its check step and the
//! drift in that check's output, what an apply records in the private
//! state, its clean steps at each [`CleanPhase`], and a queue a destroy
//! uploads first. `mod.rs` holds the list ([`super::BLOCKS`]) and walks it
//! in that order at every point; the builder's own steps (probe, owner
//! claim, Nix install, managed config, daemon restart, the builder check)
//! stay in `mod.rs` between the phases.
//!
//! This file imports no block file, and no block file imports `mod.rs`:
//! see `builder_imports_form_no_circle`.

use async_trait::async_trait;
use tf_provider::{AttributePath, Diagnostics};

use super::config::{BuilderPrivate, BuilderState};
use super::ownership::Owner;
use super::watch_store::Secrets;
use crate::context::{Context, Target};
use crate::host::Facts;
use crate::ssh::steps::{Step, StepsOutput};
use crate::ssh::Remote;

/// Where a block's converge steps go in an apply's one remote command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// After the host's owner check, before the owner claim: read-only
    /// checks that refuse a host before anything changes.
    BeforeAnyChange,
    /// After Nix is installed, before the managed config is written: what
    /// the config names must be on the host first.
    BeforeConfig,
    /// After the managed config, before the daemon restarts (a step that
    /// reports a change restarts it).
    AfterConfig,
    /// After the daemon restarted, before the check.
    AfterRestart,
}

/// Where a block's clean steps go in a `clean` destroy's remote command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanPhase {
    /// After the owner check, before the managed config goes.
    BeforeConfig,
    /// After the daemon restarted without the managed config.
    AfterRestart,
}

/// `steps` when `phase` is `wanted`, else none: a block with steps at one
/// point only.
pub fn only_at<P: PartialEq>(phase: P, wanted: P, steps: impl FnOnce() -> Vec<Step>) -> Vec<Step> {
    if phase == wanted {
        steps()
    } else {
        vec![]
    }
}

/// What an apply converges to, as the blocks' converge steps see it.
pub struct Applying<'a> {
    pub state: &'a BuilderState,
    pub private: &'a BuilderPrivate,
    /// The build user's name.
    pub user: &'a str,
    /// The owner this apply writes into the host's records.
    pub owner: &'a Owner,
    /// The build user of the prior state (an update), when it may differ.
    pub previous_user: Option<&'a str>,
    /// The Cachix secrets in effect.
    pub secrets: &'a Secrets,
}

/// What a check runs against: the state, its private part, and whether it
/// is a Read (`refresh`: the state then holds no write-only value).
#[derive(Clone, Copy)]
pub struct Checking<'a> {
    pub state: &'a BuilderState,
    pub private: &'a BuilderPrivate,
    pub refresh: bool,
}

/// What a `clean` destroy removes, as the blocks' clean steps see it.
pub struct Cleaning<'a> {
    pub state: &'a BuilderState,
    pub private: &'a BuilderPrivate,
    pub user: &'a str,
    pub owner: &'a Owner,
}

/// What a destroy would lose if the host went before this queue was
/// uploaded, for the warning when the host cannot be reached.
pub struct Queue {
    /// "Push queue", …
    pub what: &'static str,
    /// What would not be uploaded, as a sentence's subject.
    pub lost: &'static str,
    /// The attribute the queue belongs to.
    pub at: AttributePath,
}

/// One of the builder's blocks. Every method has a default that adds
/// nothing, so a block implements only what it has.
#[async_trait]
pub trait Block: Sync {
    /// Terraform's validation of the block's arguments.
    fn validate(&self, _config: &BuilderState, _diags: &mut Diagnostics) {}

    /// Plan-time checks that need the provider configuration or values the
    /// validation does not see (secrets from variables).
    fn check_plan(&self, _configured: &Context, _state: &BuilderState, _diags: &mut Diagnostics) {}

    /// Plan-time checks against the host, when it can be reached.
    async fn check_at_plan(
        &self,
        _configured: &Context,
        _state: &BuilderState,
        _target: &Target<'_>,
        _diags: &mut Diagnostics,
    ) {
    }

    /// The block's secret arguments whose value comes from their
    /// write-only twin.
    fn write_only_args(&self, _state: &BuilderState) -> Vec<&'static str> {
        vec![]
    }

    /// The block's converge steps at `phase`, in their order.
    fn steps(&self, _phase: Phase, _apply: &Applying) -> Vec<Step> {
        vec![]
    }

    /// Why the apply's output refuses the host (a step that stopped the
    /// command before any change): the step's name and the message.
    fn refusal(&self, _out: &StepsOutput, _apply: &Applying) -> Option<(String, String)> {
        None
    }

    /// The block's own check as a step (`None`: nothing to check).
    fn check_step(&self, _checking: &Checking) -> Option<Step> {
        None
    }

    /// What the output of [`check_step`](Self::check_step) shows out of
    /// line (`None` when it did not run).
    fn drift(&self, _checking: &Checking, _output: Option<&str>) -> Vec<String> {
        vec![]
    }

    /// What the builder check's facts show out of line, for a block the
    /// builder check reads (the build user, Cachix).
    fn drift_in_facts(
        &self,
        _state: &BuilderState,
        _private: &BuilderPrivate,
        _facts: &Facts,
        _secrets: &Secrets,
    ) -> Vec<String> {
        vec![]
    }

    /// After a successful apply: record in `private` what it wrote.
    fn record_applied(
        &self,
        _state: &BuilderState,
        _private: &mut BuilderPrivate,
        _secrets: &Secrets,
    ) {
    }

    /// The block's clean steps at `phase`.
    fn clean_steps(&self, _phase: CleanPhase, _clean: &Cleaning) -> Vec<Step> {
        vec![]
    }

    /// A queue on the host that a destroy uploads before anything goes.
    fn queue(&self, _state: &BuilderState) -> Option<Queue> {
        None
    }

    /// Upload the queue (see [`queue`](Self::queue)) until `deadline`;
    /// `keep`: the block's service runs again afterwards. `None` after an
    /// error saying what is left (the builder then stays in the state).
    async fn drain(
        &self,
        _remote: &Remote,
        _deadline: tokio::time::Instant,
        _keep: bool,
        _host: &str,
        _diags: &mut Diagnostics,
    ) -> Option<()> {
        Some(())
    }

    /// The destroy ran out of `timeouts.delete` while draining the queue.
    fn drain_timed_out(
        &self,
        _host: &str,
        _timeout: std::time::Duration,
        _diags: &mut Diagnostics,
    ) {
    }
}
