//! State upgrades between schema versions. A resource whose state changes
//! shape bumps its `Schema::version` and adds one step per version; its
//! `Resource::upgrade` calls [`upgrade_state`]. Terraform calls that only
//! when the stored version differs from the schema's, so a state at the
//! current version is never touched. A step that fails is an error
//! diagnostic naming the versions: the old state is kept, never guessed at.
//!
//! No resource has needed a step yet (every schema is still at version 1,
//! the version 0.1.0 wrote). tf-provider 0.2.2 keeps the type of
//! `Resource::upgrade`'s `prior_state` (`RawValue`) in a private module, so
//! the hook cannot be implemented outside that crate as released: the first
//! resource that bumps its version needs it re-exported (a one-line patch),
//! then passes the state's JSON bytes here.

use tf_provider::Diagnostics;

/// Rewrite a state of version N (the JSON object Terraform stored) into
/// version N+1, or say why it cannot be.
pub type Step = fn(serde_json::Value) -> Result<serde_json::Value, String>;

/// The upgrade steps of one resource: `steps[k]` upgrades version
/// `first + k` to `first + k + 1`; the last one reaches the current version.
pub struct Upgrades {
    pub resource: &'static str,
    pub first: i64,
    pub steps: &'static [Step],
}

impl Upgrades {
    pub fn current(&self) -> i64 {
        self.first + self.steps.len() as i64
    }

    /// Run every step from `version` to the current version.
    pub fn run(
        &self,
        diags: &mut Diagnostics,
        version: i64,
        mut state: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let resource = self.resource;
        if version > self.current() {
            diags.root_error(
                format!("{resource}: state from a newer provider"),
                format!("the state has schema version {version}; this provider knows versions up to {}. Use the provider version that wrote it, or newer", self.current()),
            );
            return None;
        }
        if version < self.first {
            diags.root_error(
                format!("{resource}: state version {version} cannot be upgraded"),
                format!(
                    "this provider upgrades states from schema version {} on",
                    self.first
                ),
            );
            return None;
        }
        for from in version..self.current() {
            let step = self.steps[(from - self.first) as usize];
            state = match step(state) {
                Ok(next) => next,
                Err(reason) => {
                    diags.root_error(
                        format!(
                            "{resource}: upgrading the state from schema version {from} to {} failed",
                            from + 1
                        ),
                        format!("{reason}; the state was not changed"),
                    );
                    return None;
                }
            };
        }
        Some(state)
    }
}

/// `Resource::upgrade` for a resource with `upgrades`: decode Terraform's
/// stored state (its JSON), run the steps, decode the result as the current
/// state type.
pub fn upgrade_state<T: serde::de::DeserializeOwned>(
    diags: &mut Diagnostics,
    upgrades: &Upgrades,
    version: i64,
    prior_state_json: &[u8],
) -> Option<T> {
    let json: serde_json::Value = match serde_json::from_slice(prior_state_json) {
        Ok(json) => json,
        Err(e) => {
            diags.root_error(
                format!("{}: the stored state is not JSON", upgrades.resource),
                e.to_string(),
            );
            return None;
        }
    };
    let upgraded = upgrades.run(diags, version, json)?;
    match serde_json::from_value(upgraded) {
        Ok(state) => Some(state),
        Err(e) => {
            diags.root_error(
                format!(
                    "{}: the upgraded state does not fit schema version {}",
                    upgrades.resource,
                    upgrades.current()
                ),
                e.to_string(),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rename_port(mut state: serde_json::Value) -> Result<serde_json::Value, String> {
        let port = state
            .as_object_mut()
            .ok_or("the state is not an object")?
            .remove("port")
            .ok_or("no `port` attribute")?;
        state["ssh_port"] = port;
        Ok(state)
    }

    fn broken(_: serde_json::Value) -> Result<serde_json::Value, String> {
        Err("deliberately broken step".into())
    }

    fn errors(diags: &Diagnostics) -> String {
        format!("{:?}", diags.errors)
    }

    #[test]
    fn a_working_step_upgrades_and_the_current_version_is_untouched() {
        let upgrades = Upgrades {
            resource: "nixbuild_test",
            first: 1,
            steps: &[rename_port],
        };
        let mut diags = Diagnostics::default();
        let out = upgrades.run(&mut diags, 1, json!({"host": "h", "port": 22}));
        assert_eq!(out, Some(json!({"host": "h", "ssh_port": 22})));
        let out = upgrades.run(&mut diags, 2, json!({"host": "h", "ssh_port": 22}));
        assert_eq!(out, Some(json!({"host": "h", "ssh_port": 22})));
        assert!(diags.errors.is_empty(), "{}", errors(&diags));
    }

    #[test]
    fn a_broken_step_is_an_error_not_a_silent_pass() {
        let upgrades = Upgrades {
            resource: "nixbuild_test",
            first: 1,
            steps: &[rename_port, broken],
        };
        let mut diags = Diagnostics::default();
        assert_eq!(upgrades.run(&mut diags, 1, json!({"port": 22})), None);
        let text = errors(&diags);
        assert!(
            text.contains("from schema version 2 to 3 failed")
                && text.contains("deliberately broken"),
            "{text}"
        );
        // A step that meets a state it cannot read fails too.
        let mut diags = Diagnostics::default();
        assert_eq!(upgrades.run(&mut diags, 1, json!({"host": "h"})), None);
        assert!(
            errors(&diags).contains("no `port` attribute"),
            "{}",
            errors(&diags)
        );
    }

    #[test]
    fn newer_and_older_versions_are_refused() {
        let upgrades = Upgrades {
            resource: "nixbuild_test",
            first: 1,
            steps: &[rename_port],
        };
        let mut diags = Diagnostics::default();
        assert_eq!(upgrades.run(&mut diags, 3, json!({})), None);
        assert_eq!(upgrades.run(&mut diags, 0, json!({})), None);
        let text = errors(&diags);
        assert!(
            text.contains("newer provider") && text.contains("cannot be upgraded"),
            "{text}"
        );
    }

    #[test]
    fn an_upgraded_state_that_does_not_decode_is_an_error() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Current {
            ssh_port: u16,
        }
        let upgrades = Upgrades {
            resource: "nixbuild_test",
            first: 1,
            steps: &[rename_port],
        };
        let mut diags = Diagnostics::default();
        let raw = br#"{"port": "not a number"}"#;
        assert!(upgrade_state::<Current>(&mut diags, &upgrades, 1, raw).is_none());
        assert!(
            errors(&diags).contains("does not fit schema version 2"),
            "{}",
            errors(&diags)
        );
    }
}
