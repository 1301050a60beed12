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
//! - [`policy`]: per purpose, time budgets and warning-or-error.

pub mod credentials;
pub mod policy;
pub mod settings;

use std::sync::{Arc, RwLock};

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::ssh::{HostKey, Pool, Remote, Settings};

pub use credentials::{CachixSettings, SecretValue};
pub use policy::{Purpose, Severity};
pub use settings::SshBlock;

/// What `configure` produced; read by resources and data sources.
pub struct Context {
    pub ssh_defaults: Option<SshBlock>,
    pub cachix: CachixSettings,
    pub pool: Pool,
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
        }
    }

    /// The key pinned in state (empty strings count as none).
    pub fn pinned(mut self, key: Option<&'a str>) -> Self {
        self.pinned = key.filter(|k| !k.trim().is_empty());
        self
    }

    /// `host` and `ssh` inside a nested block at `base`; the pin in `pin_attribute`.
    pub fn nested(mut self, base: AttributePath, pin_attribute: &'static str) -> Self {
        self.base = Some(base);
        self.pin_attribute = pin_attribute;
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
pub enum PlannedPin {
    /// Keep the key in state (or pin the first key seen, if there is none).
    Keep,
    /// The configuration's key, not known yet.
    Unknown,
    /// The configuration's key becomes the pin (the connection must present it).
    Explicit(HostKey),
}

/// Plan the pin. `pinned_at_import` says the state's key is merely the first
/// one an import saw: a configuration naming another key is then the
/// host-key error (the import may have met an impostor), not a re-key.
pub fn plan_pin(
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

/// What [`Context::connect`] gives back. The diagnostics are already made.
// Made once per connection and matched at once: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Connected(Remote),
    /// A Read could not check the host: a warning was added; keep the prior state.
    KeepState,
    /// An error was added.
    Failed,
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
            if let Some(pinned) = target.pinned {
                match HostKey::parse(pinned) {
                    Ok(key) => settings.host_key = Some(key),
                    Err(e) => {
                        diags.error(
                            "Corrupt pinned host key in state",
                            format!("{e}; replace the resource to pin the host's key again"),
                            AttributePath::new(target.pin_attribute),
                        );
                        return None;
                    }
                }
            }
        }
        Some(settings)
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
            Outcome::KeepState | Outcome::Failed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";
    const B: &str =
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
