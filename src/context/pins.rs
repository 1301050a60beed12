//! The pins a plan promises: the target's `host_key` and its bastion's,
//! planned from the configuration and the prior state the same way for every
//! resource ([`Context::plan_pins`]). The rules themselves are
//! [`plan_pin`](super::plan_pin) and
//! [`plan_bastion_pin`](Context::plan_bastion_pin); this module is the one
//! place resources call them from. Nothing here connects.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::{plan_pin, Context, PlannedPin, SshBlock};
use crate::ssh::HostKey;

/// Where a resource reaches its host: `host` and `ssh` as the plan (or the
/// prior state) has them.
pub struct Route<'a> {
    pub host: &'a Value<String>,
    pub ssh: &'a Value<SshBlock>,
    /// Where `ssh` sits in the schema, for the error about a key change.
    ssh_path: AttributePath,
}

impl<'a> Route<'a> {
    /// `host` and `ssh` at the root of the schema.
    pub fn new(host: &'a Value<String>, ssh: &'a Value<SshBlock>) -> Self {
        Self {
            host,
            ssh,
            ssh_path: AttributePath::new("ssh").index(0),
        }
    }

    /// `host` and `ssh` inside the nested block at `base` (e.g. `target[0]`).
    pub fn nested(mut self, base: AttributePath) -> Self {
        self.ssh_path = base.attribute("ssh").index(0);
        self
    }
}

/// The prior state's route and pins, on a plan that updates the object.
pub struct Prior<'a> {
    route: Route<'a>,
    /// `None` when the plan replaces the object: the target pins anew.
    host_key: Option<&'a Value<String>>,
    bastion_host_key: &'a Value<String>,
    pinned_at_import: bool,
}

impl<'a> Prior<'a> {
    pub fn new(
        host: &'a Value<String>,
        ssh: &'a Value<SshBlock>,
        host_key: &'a Value<String>,
        bastion_host_key: &'a Value<String>,
    ) -> Self {
        Self {
            route: Route::new(host, ssh),
            host_key: Some(host_key),
            bastion_host_key,
            pinned_at_import: false,
        }
    }

    /// The state's key is only the first one an import saw (see [`plan_pin`]).
    pub fn pinned_at_import(mut self, imported: bool) -> Self {
        self.pinned_at_import = imported;
        self
    }

    /// The plan replaces the object: its target pins anew, while the
    /// bastion's pin still stays with its bastion.
    pub fn replacing(mut self) -> Self {
        self.host_key = None;
        self
    }
}

/// The pins a plan promises, as the state's computed attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedPins {
    pub host_key: Value<String>,
    pub bastion_host_key: Value<String>,
}

impl PlannedPins {
    /// No remote host (e.g. a local machines file): no pins.
    pub const NONE: Self = Self {
        host_key: Value::Null,
        bastion_host_key: Value::Null,
    };

    /// The host's address or block is not known yet.
    pub const UNKNOWN: Self = Self {
        host_key: Value::Unknown,
        bastion_host_key: Value::Unknown,
    };

    /// The planned host key as `base64 -w0` of its line (the machines
    /// file's eighth column), as `nixbuild_builder.host_key_base64` has it.
    pub fn host_key_base64(&self) -> Value<String> {
        match &self.host_key {
            Value::Value(line) => HostKey::parse(line)
                .map(|k| Value::Value(k.base64_line()))
                .unwrap_or(Value::Unknown),
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        }
    }
}

impl Context {
    /// The pins a plan promises for `now`, with `prior` on an update: the
    /// target's key is the configured `ssh.host_key`, else the state's pin,
    /// else unknown until the apply pins the first key seen; a configured
    /// key that differs from the pin is a re-key, unless the pin is only what
    /// an import saw (then the host-key error, `None`). The bastion's pin
    /// follows [`plan_bastion_pin`](Self::plan_bastion_pin).
    pub fn plan_pins(
        &self,
        now: &Route<'_>,
        prior: Option<&Prior<'_>>,
        diags: &mut Diagnostics,
    ) -> Option<PlannedPins> {
        let host_key = plan_host_key(now, prior, diags)?;
        let bastion_host_key = self.plan_bastion_pin_of(
            now.host,
            now.ssh,
            prior.map(|p| (p.route.host, p.route.ssh, p.bastion_host_key)),
        );
        Some(PlannedPins {
            host_key,
            bastion_host_key,
        })
    }
}

fn plan_host_key(
    now: &Route<'_>,
    prior: Option<&Prior<'_>>,
    diags: &mut Diagnostics,
) -> Option<Value<String>> {
    let explicit = now
        .ssh
        .as_ref_option()
        .map(|s| s.host_key.clone())
        .unwrap_or_default();
    let Some((pinned, pinned_at_import)) =
        prior.and_then(|p| Some((p.host_key?, p.pinned_at_import)))
    else {
        // A new object: the configured key, else the first key seen on apply.
        return Some(
            match explicit
                .as_ref_option()
                .and_then(|k| HostKey::parse(k).ok())
            {
                Some(key) => Value::Value(key.openssh_line()),
                None => Value::Unknown,
            },
        );
    };
    let host = now.host.as_ref_option().map(String::as_str);
    let planned = plan_pin(
        host.unwrap_or_default(),
        &explicit,
        pinned.as_ref_option().map(String::as_str),
        pinned_at_import,
        now.ssh_path.clone().attribute("host_key"),
        diags,
    )?;
    Some(match planned {
        PlannedPin::Keep => pinned.clone(),
        PlannedPin::Unknown => Value::Unknown,
        PlannedPin::Explicit(key) => Value::Value(key.openssh_line()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::{context, A, B};

    fn ssh(host_key: Option<&str>, bastion: Option<&str>) -> Value<SshBlock> {
        Value::Value(SshBlock {
            agent: Value::Value(true),
            host_key: host_key.map(String::from).into(),
            bastion_host: bastion.map(String::from).into(),
            ..Default::default()
        })
    }

    #[test]
    fn every_resource_plans_its_pins_by_one_rule() {
        let c = context();
        let host = Value::Value("10.0.0.5".to_string());
        let (pin_a, pin_b) = (Value::Value(A.to_string()), Value::Value(B.to_string()));
        let unpinned = ssh(None, Some("192.0.2.1"));
        let mut diags = Diagnostics::default();
        let mut plan =
            |now: &Route<'_>, prior: Option<&Prior<'_>>| c.plan_pins(now, prior, &mut diags);

        // A new object: unknown until the apply, or the configured key.
        let new = plan(&Route::new(&host, &unpinned), None).unwrap();
        assert_eq!(new, PlannedPins::UNKNOWN);
        let configured = ssh(Some(A), None);
        let new = plan(&Route::new(&host, &configured), None).unwrap();
        assert_eq!(new.host_key, pin_a);
        assert_eq!(new.bastion_host_key, Value::Null);
        assert_eq!(
            new.host_key_base64(),
            Value::Value(HostKey::parse(A).unwrap().base64_line())
        );

        // An update keeps both pins while host and bastion stay.
        let prior = Prior::new(&host, &unpinned, &pin_a, &pin_b);
        let kept = plan(&Route::new(&host, &unpinned), Some(&prior)).unwrap();
        assert_eq!(
            (kept.host_key, kept.bastion_host_key),
            (pin_a.clone(), pin_b.clone())
        );

        // A configured key re-keys; after an import it is the host-key error.
        let rekeyed = ssh(Some(B), Some("192.0.2.1"));
        let now = Route::new(&host, &rekeyed);
        assert_eq!(plan(&now, Some(&prior)).unwrap().host_key, pin_b);
        let imported = Prior::new(&host, &unpinned, &pin_a, &pin_b).pinned_at_import(true);
        assert_eq!(plan(&now, Some(&imported)), None);

        // A replacement pins its target anew, its bastion's pin stays.
        let replaced = Prior::new(&host, &unpinned, &pin_a, &pin_b).replacing();
        let planned = plan(&Route::new(&host, &unpinned), Some(&replaced)).unwrap();
        assert_eq!(planned.host_key, Value::Unknown);
        assert_eq!(planned.bastion_host_key, pin_b);

        // The error points at the nested block's `ssh.host_key`.
        let nested = Route::new(&host, &rekeyed).nested(AttributePath::new("target").index(0));
        assert_eq!(plan(&nested, Some(&imported)), None);
        assert_eq!(diags.errors.len(), 2);
        let at = format!("{:?}", diags.errors[1].attribute);
        assert!(at.contains("target") && at.contains("host_key"), "{at}");
    }
}
