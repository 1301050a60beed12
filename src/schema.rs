//! The serde codec for nested blocks that appear at most once
//! ([`optional_block`]), and the old hand-written schema builders.
//!
//! Resources define their schema through their state type
//! ([`crate::tfschema`]); the builders below (`required_string`,
//! `ssh_block`, …) are no longer used by the provider and stay only so
//! branches written against them still compile until they are converted.

use std::collections::HashMap;

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock,
};

pub fn attribute(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: Description::markdown(description),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

pub fn required_string(description: &str) -> Attribute {
    attribute(
        AttributeType::String,
        AttributeConstraint::Required,
        description,
    )
}
pub fn optional_string(description: &str) -> Attribute {
    attribute(
        AttributeType::String,
        AttributeConstraint::Optional,
        description,
    )
}
pub fn optional_number(description: &str) -> Attribute {
    attribute(
        AttributeType::Number,
        AttributeConstraint::Optional,
        description,
    )
}
pub fn optional_bool(description: &str) -> Attribute {
    attribute(
        AttributeType::Bool,
        AttributeConstraint::Optional,
        description,
    )
}
pub fn sensitive(mut attr: Attribute) -> Attribute {
    attr.sensitive = true;
    attr
}
pub fn computed(attr_type: AttributeType, description: &str) -> Attribute {
    attribute(attr_type, AttributeConstraint::Computed, description)
}

pub fn block(
    description: &str,
    attributes: Vec<(&str, Attribute)>,
    blocks: Vec<(&str, NestedBlock)>,
) -> Block {
    Block {
        version: 1,
        attributes: attributes
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
        blocks: blocks
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
        description: Description::markdown(description),
        deprecated: false,
    }
}

/// The `ssh` block. At provider level it holds defaults; in resources and data
/// sources it overrides them and adds `host_key`.
pub fn ssh_block(with_host_key: bool) -> NestedBlock {
    let mut attributes = vec![
        ("user", optional_string("User to log in as. Default: the provider's `ssh.user`, else `root`. Other users run privileged steps through `sudo -n`.")),
        ("port", optional_number("SSH port, 1 to 65535. Default: the provider's `ssh.port`, else `22`.")),
        ("private_key", sensitive(optional_string("Private key (OpenSSH or PEM text). Prefer `private_key_file` or the agent so the key stays out of the configuration."))),
        ("private_key_file", optional_string("Path of a private key file on the machine running Terraform (`~/` is expanded). Checked at plan time.")),
        ("private_key_passphrase", sensitive(optional_string("Passphrase of an encrypted private key."))),
        ("agent", optional_bool("Authenticate with the SSH agent at `SSH_AUTH_SOCK`. Default: `true` when no private key is configured and `SSH_AUTH_SOCK` is set.")),
        ("connect_timeout", optional_string("How long to keep retrying the connection while a fresh host boots (a duration such as `\"30s\"` or `\"5m\"`). Retries stop at once on a host-key mismatch. Default: `\"5m\"`.")),
        ("bastion_host", optional_string("Jump host to reach the target through (like `ssh -J`); the same credentials are used for both.")),
        ("bastion_user", optional_string("User on the jump host. Default: the target's user.")),
        ("bastion_port", optional_number("SSH port of the jump host. Default: `22`.")),
        ("bastion_host_key", optional_string("Expected public host key line of the jump host. Without it, the first key seen is pinned for the rest of the run.")),
    ];
    let description = if with_host_key {
        attributes.push((
            "host_key",
            optional_string("Expected public host key line of the host, e.g. the content of `/etc/ssh/ssh_host_ed25519_key.pub`. The connection is refused, and nothing runs on the host, if the host presents another key."),
        ));
        "How to reach the host over SSH. Unset arguments fall back to the provider's `ssh` block; the `bastion_*` arguments go together, from whichever block sets `bastion_host`."
    } else {
        "Default SSH settings for every connection the provider makes. Resources and data sources can override each argument in their own `ssh` block."
    };
    NestedBlock::Optional(block(description, attributes, vec![]))
}

/// Serde codec for a nested block that appears at most once
/// (`NestedBlock::Optional`), encoded as a list of zero or one element.
/// Unlike tf-provider's `serde_as_vec`, it accepts a block whose presence is
/// still unknown at plan time (a `dynamic` block whose `for_each` depends on
/// another resource or a module input), as `Value::Unknown`.
pub mod optional_block {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use tf_provider::value::Value;

    pub fn serialize<T, S>(value: &Value<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Value::Unknown => Value::<Vec<&T>>::Unknown.serialize(serializer),
            Value::Null => Vec::<&T>::new().serialize(serializer),
            Value::Value(block) => vec![block].serialize(serializer),
        }
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Value<T>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        match Value::<Vec<Value<T>>>::deserialize(deserializer)? {
            Value::Unknown => Ok(Value::Unknown),
            Value::Null => Ok(Value::Null),
            Value::Value(blocks) => {
                let mut blocks = blocks.into_iter();
                match (blocks.next(), blocks.next()) {
                    (None, _) => Ok(Value::Null),
                    (Some(block), None) => Ok(block),
                    _ => Err(D::Error::custom(
                        "a block that may appear once appears several times",
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use tf_provider::value::Value;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct Inner {
        a: Value<String>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct Outer {
        #[serde(with = "optional_block")]
        block: Value<Inner>,
    }

    fn round_trip(outer: &Outer) -> Outer {
        let bytes = rmp_serde::to_vec_named(outer).unwrap();
        rmp_serde::from_slice(&bytes).unwrap()
    }

    #[test]
    fn optional_block_keeps_unknown_null_and_value() {
        for outer in [
            Outer {
                block: Value::Unknown,
            },
            Outer { block: Value::Null },
            Outer {
                block: Value::Value(Inner {
                    a: Value::Value("x".into()),
                }),
            },
        ] {
            assert_eq!(round_trip(&outer), outer);
        }
    }
}
