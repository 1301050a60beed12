//! The serde codec for nested blocks that appear at most once
//! ([`optional_block`]).
//!
//! Resources define their schema through their state type
//! ([`crate::tfschema`]); the few hand-written builders left
//! (`builders`, tests only) make the toy schemas of the docs renderer's
//! tests.

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

/// Builders of tf-provider schema values by hand, for tests that need a
/// schema without a Rust type behind it.
#[cfg(test)]
pub mod builders {
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
