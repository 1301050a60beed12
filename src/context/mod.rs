//! The configured provider, below every resource and data source: SSH
//! defaults, secrets and their fallbacks (resource → provider → environment),
//! the connection pool, and the one way to reach a host,
//! [`Context::connect`]`(target, purpose)`, whose policies (which key is
//! trusted, how long to wait, what is a warning and what an error) are written
//! here once. Terraform diagnostics for connection outcomes are made here too;
//! the SSH layer below only returns typed errors.
//!
//! - [`settings`]: the `ssh` block, its validation and resolution;
//! - [`credentials`]: Cachix secrets and their fallbacks;
//! - [`pins`]: the host-key pins a plan promises, for every resource;
//! - [`policy`]: per purpose, time budgets and warning-or-error;
//! - [`successors`]: what a replaced object hands the next one at its address.

pub mod credentials;
pub mod pins;
pub mod policy;
pub mod settings;
pub mod successors;

use std::sync::{Arc, RwLock};

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::ssh::{HostKey, Pool, Remote, Settings};

pub use credentials::{CachixSettings, SecretValue};
pub use pins::{PlannedPins, Prior, Route};
pub use policy::{Purpose, Severity};
pub use settings::SshBlock;

/// What `configure` produced; read by resources and data sources.
pub struct Context {
    pub ssh_defaults: Option<SshBlock>,
    pub cachix: CachixSettings,
    pub pool: Pool,
    pub successors: successors::Successors,
}

/// The provider's slot for its [`Context`], shared with everything it serves.
#[derive(Default)]
pub struct Shared {
    configured: RwLock<Option<Arc<Context>>>,
}

impl Shared {
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Arc<Context>> {
        let configured = self.configured.read().expect("provider lock").clone();
        if configured.is_none() {
            diags.root_error_short("The nixbuild provider was used before Terraform configured it");
        }
        configured
    }

    pub fn set(&self, context: Context) {
        *self.configured.write().expect("provider lock") = Some(Arc::new(context));
    }
}

/// A host to reach, as a resource or data source describes it.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub host: &'a str,
    pub ssh: &'a Value<SshBlock>,
    /// The key pinned in the resource's state, if any.
    pub pinned: Option<&'a str>,
    /// Where `host` and `ssh` sit in the schema: the root, or e.g. `target[0]`.
    pub base: Option<AttributePath>,
    /// The computed attribute that holds the pin (`host_key`, `target_host_key`).
    pub pin_attribute: &'static str,
    /// The bastion's key pinned in state, if any.
    pub pinned_bastion: Option<&'a str>,
    /// The computed attribute that holds the bastion's pin.
    pub bastion_pin_attribute: &'static str,
}

impl<'a> Target<'a> {
    /// `host` and `ssh` at the root of the schema, no pin yet.
    pub fn new(host: &'a str, ssh: &'a Value<SshBlock>) -> Self {
        Self {
            host,
            ssh,
            pinned: None,
            base: None,
            pin_attribute: "host_key",
            pinned_bastion: None,
            bastion_pin_attribute: "bastion_host_key",
        }
    }

    /// The key pinned in state (empty strings count as none).
    pub fn pinned(mut self, key: Option<&'a str>) -> Self {
        self.pinned = key.filter(|k| !k.trim().is_empty());
        self
    }

    /// The bastion's key pinned in state (empty strings count as none).
    pub fn pinned_bastion(mut self, key: Option<&'a str>) -> Self {
        self.pinned_bastion = key.filter(|k| !k.trim().is_empty());
        self
    }

    /// `host` and `ssh` inside a nested block at `base`; the pins in
    /// `pin_attribute` and `bastion_pin_attribute`.
    pub fn nested(
        mut self,
        base: AttributePath,
        pin_attribute: &'static str,
        bastion_pin_attribute: &'static str,
    ) -> Self {
        self.base = Some(base);
        self.pin_attribute = pin_attribute;
        self.bastion_pin_attribute = bastion_pin_attribute;
        self
    }

    fn at(&self, name: &'static str) -> AttributePath {
        match &self.base {
            Some(base) => base.clone().attribute(name),
            None => AttributePath::new(name),
        }
    }

    pub fn host_path(&self) -> AttributePath {
        self.at("host")
    }

    fn ssh_path(&self) -> AttributePath {
        self.at("ssh").index(0)
    }
}

/// The pin a plan promises, from the configuration's `ssh.host_key` and the
/// key pinned in state. The pin belongs to the object: it changes only when
/// the configuration names another key on purpose (the re-key of a
/// re-installed host), never by trusting a new key on first use.
#[derive(Clone, Debug, PartialEq)]
enum PlannedPin {
    /// Keep the key in state (or pin the first key seen, if there is none).
    Keep,
    /// The configuration's key, not known yet.
    Unknown,
    /// The configuration's key becomes the pin (the connection must present it).
    Explicit(HostKey),
}

/// Plan the pin (resources call it through [`Context::plan_pins`]).
/// `pinned_at_import` says the state's key is merely the first
/// one an import saw: a configuration naming another key is then the
/// host-key error (the import may have met an impostor), not a re-key.
fn plan_pin(
    host: &str,
    explicit: &Value<String>,
    pinned: Option<&str>,
    pinned_at_import: bool,
    at: AttributePath,
    diags: &mut Diagnostics,
) -> Option<PlannedPin> {
    let key = match explicit {
        Value::Unknown => return Some(PlannedPin::Unknown),
        Value::Null => return Some(PlannedPin::Keep),
        // Invalid keys were reported by validation.
        Value::Value(line) => match HostKey::parse(line) {
            Ok(key) => key,
            Err(_) => return Some(PlannedPin::Keep),
        },
    };
    let pinned = pinned.and_then(|p| HostKey::parse(p).ok());
    match pinned {
        Some(pinned) if pinned == key => Some(PlannedPin::Keep),
        Some(pinned) if pinned_at_import => {
            diags.error(
                format!("Host key of {host} changed"),
                format!(
                    "host key mismatch for {host}: `ssh.host_key` expects {key}, but the import \
                     pinned the first key the host presented, {pinned}. Nothing was run on the \
                     host beyond the import's read-only check. Check the host's key out of band: \
                     if `ssh.host_key` is right, treat this as a possible man-in-the-middle \
                     attack; otherwise correct `ssh.host_key`, or import again with the expected \
                     key after the ID (`user@host:port <key line>`)."
                ),
                at,
            );
            None
        }
        _ => Some(PlannedPin::Explicit(key)),
    }
}

/// The host keys a connection verified, as state records them: the target's,
/// and the bastion's when the route has one.
#[derive(Clone, Debug)]
pub struct SeenKeys {
    pub host_key: String,
    pub bastion_host_key: Option<String>,
}

impl SeenKeys {
    pub fn of(remote: &Remote) -> Self {
        Self {
            host_key: remote.host_key().openssh_line(),
            bastion_host_key: remote.bastion_host_key().map(|k| k.openssh_line()),
        }
    }
}

/// The keys one operation's connection verified, noted as soon as it
/// connects. The policy for an operation that fails after connecting,
/// written once: a create stays in the state (Terraform taints it) holding
/// these pins, so the re-apply replaces it against the same keys and
/// `destroy` can clean up what it left, never trusting another key on first
/// use; an update keeps its prior state (and pins).
#[derive(Default)]
pub struct KeysSeen(std::sync::Mutex<Option<SeenKeys>>);

impl KeysSeen {
    pub fn note(&self, remote: &Remote) {
        *self.0.lock().expect("keys seen") = Some(SeenKeys::of(remote));
    }

    /// The keys of a connection that was made, if any.
    pub fn take(&self) -> Option<SeenKeys> {
        self.0.lock().expect("keys seen").take()
    }

    /// The pins a failed `purpose` keeps in the state: a create's, once it
    /// connected; `None` otherwise (nothing to keep, or the prior state).
    pub fn kept_by_failed(&self, purpose: Purpose) -> Option<SeenKeys> {
        self.take().filter(|_| purpose == Purpose::Create)
    }
}

/// A pin from state: none, or a key that must parse (else the state is corrupt).
fn parse_pin(
    pinned: Option<&str>,
    attribute: &'static str,
    diags: &mut Diagnostics,
) -> Option<Option<HostKey>> {
    match pinned.map(HostKey::parse) {
        None => Some(None),
        Some(Ok(key)) => Some(Some(key)),
        Some(Err(e)) => {
            diags.error(
                "Corrupt pinned host key in state",
                format!("{e}; replace the resource to pin the host's key again"),
                AttributePath::new(attribute),
            );
            None
        }
    }
}

/// What [`Context::connect`] gives back. The diagnostics are already made.
// Made once per connection and matched at once: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Connected(Remote),
    /// A Read could not check the host: a warning was added; keep the prior state.
    KeepState,
    /// An error was added.
    Failed,
    /// Terraform asked the provider to stop while connecting: an "Interrupted"
    /// error was added. Nothing ran on the host: a Read returns its prior
    /// state (which Terraform keeps, the error notwithstanding).
    Interrupted,
}

impl Context {
    /// Resolve the settings for `target` from its `ssh` block and the provider
    /// defaults: an explicit `ssh.host_key` must match; otherwise the key
    /// pinned in state must; with neither, the first key seen is pinned by
    /// the caller. Errors go to `diags` with attribute paths.
    pub fn settings(&self, target: &Target<'_>, diags: &mut Diagnostics) -> Option<Settings> {
        let levels = settings::Levels {
            resource: target.ssh.as_ref_option().map(|b| (b, target.ssh_path())),
            provider: self
                .ssh_defaults
                .as_ref()
                .map(|b| (b, AttributePath::new("ssh").index(0))),
        };
        let mut settings = settings::resolve(target.host, target.host_path(), &levels, diags)?;
        if settings.host_key.is_none() {
            settings.host_key = parse_pin(target.pinned, target.pin_attribute, diags)?;
        }
        if let Some(bastion) = settings.bastion.as_mut() {
            if bastion.host_key.is_none() {
                bastion.host_key =
                    parse_pin(target.pinned_bastion, target.bastion_pin_attribute, diags)?;
            }
        }
        Some(settings)
    }

    /// [`plan_bastion_pin`](Self::plan_bastion_pin) from state attributes:
    /// `host` and `ssh` now, and the prior `(host, ssh, bastion pin)`.
    pub fn plan_bastion_pin_of(
        &self,
        host: &Value<String>,
        ssh: &Value<SshBlock>,
        prior: Option<(&Value<String>, &Value<SshBlock>, &Value<String>)>,
    ) -> Value<String> {
        let Value::Value(host) = host else {
            return Value::Unknown;
        };
        let prior = prior.and_then(|(host, ssh, pin)| {
            let pin = pin.as_ref_option().map(String::as_str);
            Some(Target::new(host.as_ref_option()?, ssh).pinned_bastion(pin))
        });
        self.plan_bastion_pin(&Target::new(host, ssh), prior.as_ref())
    }

    /// The bastion pin a plan promises for `now` (with `prior`, the state's
    /// target, on update): null without a bastion (or when the bastion is the
    /// target itself); the configured `bastion_host_key`; the pin in state
    /// while the bastion stays the same; otherwise unknown until the apply
    /// pins the first key the bastion presents.
    pub fn plan_bastion_pin(&self, now: &Target<'_>, prior: Option<&Target<'_>>) -> Value<String> {
        let mut quiet = Diagnostics::default();
        let unpinned = now.clone().pinned_bastion(None);
        let Some(settings) = self.settings(&unpinned, &mut quiet) else {
            return Value::Unknown;
        };
        let Some(bastion) = settings.bastion.as_ref() else {
            return Value::Null;
        };
        let same_place = |a: &crate::ssh::settings::Endpoint,
                          b: &crate::ssh::settings::Endpoint| {
            a.host == b.host && a.port == b.port
        };
        if same_place(&bastion.endpoint, &settings.endpoint) {
            return Value::Null;
        }
        if let Some(key) = &bastion.host_key {
            return Value::Value(key.openssh_line());
        }
        // A pin belongs to the bastion it was taken from.
        let kept = prior
            .filter(|p| p.pinned_bastion.is_some())
            .and_then(|p| self.settings(&p.clone().pinned_bastion(None), &mut quiet))
            .and_then(|p| p.bastion)
            .is_some_and(|b| same_place(&b.endpoint, &bastion.endpoint));
        match prior.and_then(|p| p.pinned_bastion) {
            Some(pin) if kept => Value::Value(pin.to_string()),
            _ => Value::Unknown,
        }
    }

    /// The one way to reach a host. Resolves the settings, connects within the
    /// purpose's time budget, and turns a failure into a warning or an error
    /// by the purpose's policy (see [`policy`]).
    pub async fn connect(
        &self,
        target: &Target<'_>,
        purpose: Purpose,
        diags: &mut Diagnostics,
    ) -> Outcome {
        let Some(mut settings) = self.settings(target, diags) else {
            return Outcome::Failed;
        };
        settings.connect_timeout = purpose.connect_budget(settings.connect_timeout);
        // A plan looks at a host only with a key it already trusts (the
        // configured `ssh.host_key`, the state's pin, or one this process
        // verified, e.g. at the refresh of the object a replacement
        // replaces): trust on first use is the apply's, where the state
        // records the key.
        if purpose == Purpose::Plan && !self.pool.knows_host_keys(&settings) {
            tracing::debug!(host = %settings.endpoint, "plan: no known host key, the host is not contacted before the apply");
            return Outcome::KeepState;
        }
        // Each attempt is bounded by the budget already; this bounds the whole
        // (a bastion first, then the target) for certain.
        let limit = settings.connect_timeout * 2 + std::time::Duration::from_secs(5);
        let result = match tokio::time::timeout(limit, self.pool.connect(&settings)).await {
            Ok(result) => result,
            Err(_) => Err(crate::ssh::SshError::Unreachable {
                host: settings.endpoint.to_string(),
                reason: "no connection in time".into(),
                waited: limit,
            }),
        };
        match result {
            Ok(remote) => Outcome::Connected(remote),
            Err(e) if e.is_interrupted() => {
                interrupted(diags, &e, target.host_path());
                Outcome::Interrupted
            }
            Err(e) => {
                let (severity, summary, detail) =
                    policy::diagnose(purpose, &settings.endpoint.to_string(), &e);
                match severity {
                    Severity::Warning => {
                        diags.warning(summary, detail, target.host_path());
                        Outcome::KeepState
                    }
                    Severity::Error => {
                        diags.error(summary, detail, target.host_path());
                        Outcome::Failed
                    }
                }
            }
        }
    }

    /// Remember `target`'s pinned key for the rest of this process without
    /// connecting: a resource being replaced hands its pin to its successor
    /// (destroy runs before create in one apply), so the new object never
    /// trusts another key on first use at that address.
    pub fn remember_pin(&self, target: &Target<'_>) {
        let Some(pinned) = target.pinned.and_then(|k| HostKey::parse(k).ok()) else {
            return;
        };
        let mut quiet = Diagnostics::default();
        if let Some(settings) = self.settings(target, &mut quiet) {
            self.pool.pin(&settings, pinned);
        }
    }

    /// Run the remote part (`step`) of a Read or data source on `remote`
    /// under [`policy::READ_COMMAND_BUDGET`]; running out is a session error.
    pub async fn within_read_budget<T>(
        remote: &Remote,
        step: &str,
        fut: impl std::future::Future<Output = Result<T, crate::ssh::SshError>>,
    ) -> Result<T, crate::ssh::SshError> {
        tokio::time::timeout(policy::READ_COMMAND_BUDGET, fut)
            .await
            .unwrap_or_else(|_| {
                Err(crate::ssh::SshError::Session {
                    host: remote.endpoint().to_string(),
                    step: step.to_string(),
                    reason: format!(
                        "did not finish within {}",
                        humantime::format_duration(policy::READ_COMMAND_BUDGET)
                    ),
                })
            })
    }

    /// [`connect`](Self::connect) where only a connection helps (create,
    /// update, delete, data sources): `None` after the diagnostic.
    pub async fn connect_or_fail(
        &self,
        target: &Target<'_>,
        purpose: Purpose,
        diags: &mut Diagnostics,
    ) -> Option<Remote> {
        match self.connect(target, purpose, diags).await {
            Outcome::Connected(remote) => Some(remote),
            Outcome::KeepState | Outcome::Failed | Outcome::Interrupted => None,
        }
    }
}

/// The diagnostic of an operation that Terraform's stop ended
/// ([`crate::interrupt`]): an error whatever the operation (a Read's warning
/// would read as the host's fault), naming the host and the step.
pub fn interrupted(diags: &mut Diagnostics, error: &crate::ssh::SshError, at: AttributePath) {
    diags.error(
        match error.step() {
            Some(step) => format!("Interrupted during step `{step}`"),
            None => "Interrupted".to_string(),
        },
        error.to_string(),
        at,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";
    pub(super) const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5DofdXXNOW+iHCkB8EMZ/6rhaT69FUZcmve8Z7mcdb";

    fn plan(
        explicit: Value<String>,
        pinned: Option<&str>,
        import: bool,
    ) -> (Option<PlannedPin>, usize) {
        let mut diags = Diagnostics::default();
        let planned = plan_pin(
            "h",
            &explicit,
            pinned,
            import,
            AttributePath::new("ssh"),
            &mut diags,
        );
        (planned, diags.errors.len())
    }

    pub(super) fn context() -> Context {
        Context {
            ssh_defaults: None,
            cachix: CachixSettings::default(),
            pool: Pool::new(1),
            successors: Default::default(),
        }
    }

    fn via(bastion: &str, key: Option<&str>) -> Value<SshBlock> {
        Value::Value(SshBlock {
            agent: Value::Value(true),
            bastion_host: Value::Value(bastion.into()),
            bastion_host_key: key.map(String::from).into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_bastion_pin_stays_with_its_bastion() {
        let c = context();
        let (to_j1, to_j2) = (via("192.0.2.1", None), via("192.0.2.2", None));
        let direct = Value::Value(SshBlock {
            agent: Value::Value(true),
            ..Default::default()
        });
        let now = Target::new("10.0.0.5", &to_j1);
        // No bastion, or a bastion that is the target: no pin.
        assert_eq!(
            c.plan_bastion_pin(&Target::new("10.0.0.5", &direct), None),
            Value::Null
        );
        assert_eq!(
            c.plan_bastion_pin(&Target::new("192.0.2.1", &to_j1), None),
            Value::Null
        );
        // New: the first key seen on apply.
        assert_eq!(c.plan_bastion_pin(&now, None), Value::Unknown);
        // The same bastion keeps its pin; another bastion does not inherit it.
        let prior_j1 = Target::new("10.0.0.5", &to_j1).pinned_bastion(Some(A));
        let prior_j2 = Target::new("10.0.0.5", &to_j2).pinned_bastion(Some(A));
        assert_eq!(
            c.plan_bastion_pin(&now, Some(&prior_j1)),
            Value::Value(A.into())
        );
        assert_eq!(c.plan_bastion_pin(&now, Some(&prior_j2)), Value::Unknown);
        // A configured key wins (the re-key of a re-installed bastion).
        let rekeyed = via("192.0.2.1", Some(B));
        assert_eq!(
            c.plan_bastion_pin(&Target::new("10.0.0.5", &rekeyed), Some(&prior_j1)),
            Value::Value(B.into())
        );
        // On connect, the state's pin is what the bastion must present.
        let mut diags = Diagnostics::default();
        let settings = c.settings(&prior_j1, &mut diags).unwrap();
        assert_eq!(
            settings.bastion.unwrap().host_key,
            Some(HostKey::parse(A).unwrap())
        );
    }

    #[test]
    fn the_pin_changes_only_to_a_configured_key() {
        let key = |k: &str| PlannedPin::Explicit(HostKey::parse(k).unwrap());
        assert_eq!(
            plan(Value::Null, Some(A), false),
            (Some(PlannedPin::Keep), 0)
        );
        assert_eq!(
            plan(Value::Unknown, Some(A), false),
            (Some(PlannedPin::Unknown), 0)
        );
        assert_eq!(
            plan(Value::Value(A.into()), Some(A), false),
            (Some(PlannedPin::Keep), 0)
        );
        assert_eq!(plan(Value::Value(A.into()), None, true), (Some(key(A)), 0));
        // Re-key: the configuration names the re-installed host's new key.
        assert_eq!(
            plan(Value::Value(B.into()), Some(A), false),
            (Some(key(B)), 0)
        );
        // After an import, the first key seen is no reason to accept another.
        assert_eq!(plan(Value::Value(B.into()), Some(A), true), (None, 1));
    }
}
