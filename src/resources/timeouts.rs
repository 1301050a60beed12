//! The `timeouts` block every resource shares: its schema, plan-time
//! validation, and the duration an operation may take.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Description, NestedBlock, Schema};
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::ssh::settings::parse_duration;
use crate::tfschema::Optional;

/// How long each operation may take (durations such as `"30m"` or `"1h30m"`).
// The attribute descriptions below are placeholders: each resource's
// `describe` call replaces them with what the operation covers there and its
// default.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Timeouts {
    /// Limit for create.
    #[schemars(with = "Optional<String>")]
    pub create: Value<String>,
    /// Limit for update.
    #[schemars(with = "Optional<String>")]
    pub update: Value<String>,
    /// Limit for delete.
    #[schemars(with = "Optional<String>")]
    pub delete: Value<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// A resource's default duration per operation.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub create: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl Defaults {
    fn of(&self, op: Operation) -> Duration {
        match op {
            Operation::Create => self.create,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
        }
    }
}

/// Describe the `timeouts` block of `schema`: `notes` say what each operation
/// covers, and each description adds its default.
pub fn describe(schema: &mut Schema, defaults: Defaults, notes: [&str; 3]) {
    let Some(NestedBlock::Optional(block)) = schema.block.blocks.get_mut("timeouts") else {
        return;
    };
    for (name, note, default) in [
        ("create", notes[0], defaults.create),
        ("update", notes[1], defaults.update),
        ("delete", notes[2], defaults.delete),
    ] {
        if let Some(attribute) = block.attributes.get_mut(name) {
            attribute.description = Description::markdown(
                format!(
                    "{note} Default: `\"{}\"`.",
                    humantime::format_duration(default)
                )
                .trim_start()
                .to_string(),
            );
        }
    }
}

/// Plan-time checks: each value is a positive duration.
pub fn validate(value: &Value<Timeouts>, diags: &mut Diagnostics) {
    let Value::Value(timeouts) = value else {
        return;
    };
    for (name, text) in [
        ("create", &timeouts.create),
        ("update", &timeouts.update),
        ("delete", &timeouts.delete),
    ] {
        if let Value::Value(text) = text {
            let problem = match parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    Some(format!("`{text}` is zero: nothing could finish in it"))
                }
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if let Some(problem) = problem {
                diags.error(
                    "Invalid timeout",
                    problem,
                    AttributePath::new("timeouts").index(0).attribute(name),
                );
            }
        }
    }
}

/// How long `op` may take: the configured value, else the default.
pub fn get(value: &Value<Timeouts>, op: Operation, defaults: Defaults) -> Duration {
    let configured = value.as_ref_option().and_then(|t| match op {
        Operation::Create => t.create.as_ref_option(),
        Operation::Update => t.update.as_ref_option(),
        Operation::Delete => t.delete.as_ref_option(),
    });
    configured
        .and_then(|text| parse_duration(text).ok())
        .unwrap_or_else(|| defaults.of(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Defaults = Defaults {
        create: Duration::from_secs(1800),
        update: Duration::from_secs(1800),
        delete: Duration::from_secs(600),
    };

    #[test]
    fn configured_values_win_over_defaults() {
        let none = Value::Null;
        assert_eq!(
            get(&none, Operation::Delete, DEFAULTS),
            Duration::from_secs(600)
        );
        let some = Value::Value(Timeouts {
            create: Value::Value("5m".into()),
            ..Default::default()
        });
        assert_eq!(
            get(&some, Operation::Create, DEFAULTS),
            Duration::from_secs(300)
        );
        assert_eq!(
            get(&some, Operation::Update, DEFAULTS),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn bad_values_name_their_attribute() {
        let bad = Value::Value(Timeouts {
            create: Value::Value("soon".into()),
            delete: Value::Value("0s".into()),
            ..Default::default()
        });
        let mut diags = Diagnostics::default();
        validate(&bad, &mut diags);
        let paths: Vec<String> = diags
            .errors
            .iter()
            .map(|d| d.attribute.to_string())
            .collect();
        assert_eq!(diags.errors.len(), 2, "{paths:?}");
        assert!(
            paths.iter().any(|p| p.contains("create"))
                && paths.iter().any(|p| p.contains("delete"))
        );
    }
}
