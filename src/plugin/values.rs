//! Terraform's dynamic values at the protocol boundary: MessagePack (every
//! RPC) or JSON (stored state handed to `UpgradeResourceState`), decoded into
//! the resources' typed states exactly as tf-provider decoded them
//! (`rmp_serde`, named fields), so private state written by 0.1.0 reads as
//! before and the bytes written now are the same.
//!
//! Also the write-only attributes (protocol 6.8): every attribute whose name
//! ends in `_wo` is write-only. [`WriteOnly`] finds them in a value by the
//! schema, copies them from the configuration into a proposed or planned
//! state (so a resource reads them like any argument), nulls them in every
//! state sent back to Terraform, and lists the ones set (refused where
//! Terraform cannot keep them out of the state).

use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Block, NestedBlock};
use tf_provider::{AttributePath, Diagnostics};

use super::proto::tfplugin6::DynamicValue;

/// MessagePack's encoding of null.
const MSGPACK_NULL: [u8; 1] = [0xc0];

/// One encoded value as Terraform sent it.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    MsgPack(Vec<u8>),
    Json(Vec<u8>),
}

impl Raw {
    pub fn null() -> Self {
        Raw::MsgPack(MSGPACK_NULL.to_vec())
    }

    pub fn is_null(&self) -> bool {
        match self {
            Raw::MsgPack(b) => b.is_empty() || b.as_slice() == MSGPACK_NULL,
            Raw::Json(b) => b.is_empty() || b.as_slice() == b"null",
        }
    }

    /// Decode into `T`; an error is a diagnostic (and `None`).
    pub fn decode<'a, T: Deserialize<'a>>(&'a self, diags: &mut Diagnostics) -> Option<T> {
        let result = match self {
            Raw::MsgPack(b) if b.is_empty() => rmp_serde::from_slice(&MSGPACK_NULL),
            Raw::MsgPack(b) => rmp_serde::from_slice(b),
            Raw::Json(b) if b.is_empty() => {
                return serde_json::from_slice(b"null")
                    .map_err(|e| json_error(diags, e))
                    .ok()
            }
            Raw::Json(b) => {
                return serde_json::from_slice(b)
                    .map_err(|e| json_error(diags, e))
                    .ok()
            }
        };
        result
            .map_err(|e| diags.root_error("Cannot decode a value from Terraform", e.to_string()))
            .ok()
    }

    /// Encode `value` as MessagePack with named fields (what tf-provider wrote).
    pub fn encode<T: Serialize>(diags: &mut Diagnostics, value: &T) -> Option<Raw> {
        encode_bytes(diags, value).map(Raw::MsgPack)
    }
}

fn json_error(diags: &mut Diagnostics, e: serde_json::Error) {
    diags.root_error("Cannot decode a JSON value from Terraform", e.to_string());
}

/// MessagePack bytes of `value` (private state is bytes, not a value).
pub fn encode_bytes<T: Serialize>(diags: &mut Diagnostics, value: &T) -> Option<Vec<u8>> {
    rmp_serde::to_vec_named(value)
        .map_err(|e| diags.root_error("Cannot encode a value for Terraform", e.to_string()))
        .ok()
}

/// Private state as Terraform stores it (MessagePack bytes; empty = null).
pub fn private_raw(bytes: Vec<u8>) -> Raw {
    Raw::MsgPack(bytes)
}

impl From<DynamicValue> for Raw {
    fn from(value: DynamicValue) -> Self {
        if value.msgpack.is_empty() && !value.json.is_empty() {
            Raw::Json(value.json)
        } else {
            Raw::MsgPack(value.msgpack)
        }
    }
}

impl From<Raw> for DynamicValue {
    fn from(value: Raw) -> Self {
        match value {
            Raw::MsgPack(msgpack) => DynamicValue {
                msgpack,
                json: Vec::new(),
            },
            Raw::Json(json) => DynamicValue {
                msgpack: Vec::new(),
                json,
            },
        }
    }
}

/// An optional dynamic value from a request: absent is null.
pub fn raw_or_null(value: Option<DynamicValue>) -> Raw {
    value.map(Raw::from).unwrap_or_else(Raw::null)
}

/// Where a schema's write-only attributes are: attribute names at this level,
/// and nested blocks that hold some.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteOnly {
    attributes: Vec<String>,
    blocks: Vec<(String, Nesting, WriteOnly)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nesting {
    /// The value is an object (or null).
    Object,
    /// The value is a list or set of objects.
    Many,
    /// The value is a map of objects.
    Map,
}

impl WriteOnly {
    /// The write-only attributes of `block` (none for most schemas).
    pub fn of(block: &Block) -> Self {
        let mut attributes: Vec<String> = block
            .attributes
            .keys()
            .filter(|name| is_write_only(name))
            .cloned()
            .collect();
        attributes.sort();
        let mut blocks = Vec::new();
        for (name, nested) in &block.blocks {
            let (nesting, inner) = match nested {
                NestedBlock::Single(b) | NestedBlock::Group(b) => (Nesting::Object, b),
                NestedBlock::List(b) | NestedBlock::Set(b) | NestedBlock::Optional(b) => {
                    (Nesting::Many, b)
                }
                NestedBlock::Map(b) => (Nesting::Map, b),
            };
            let inner = WriteOnly::of(inner);
            if !inner.is_empty() {
                blocks.push((name.clone(), nesting, inner));
            }
        }
        blocks.sort_by(|a, b| a.0.cmp(&b.0));
        WriteOnly { attributes, blocks }
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.blocks.is_empty()
    }

    /// `value` with every write-only attribute null.
    pub fn nulled(&self, diags: &mut Diagnostics, value: Raw) -> Raw {
        if self.is_empty() || value.is_null() {
            return value;
        }
        self.rewrite(diags, value, |wo, tree| wo.null_in(tree))
    }

    /// `target` (a proposed or planned state) with the write-only values of
    /// `config` copied in.
    pub fn copied_from(&self, diags: &mut Diagnostics, config: &Raw, target: Raw) -> Raw {
        if self.is_empty() || target.is_null() || config.is_null() {
            return target;
        }
        let Some(config) = to_tree(diags, config) else {
            return target;
        };
        self.rewrite(diags, target, |wo, tree| wo.copy_into(&config, tree))
    }

    /// The paths of the write-only attributes set (non-null) in `config`.
    pub fn set_in(&self, diags: &mut Diagnostics, config: &Raw) -> Vec<AttributePath> {
        if self.is_empty() || config.is_null() {
            return Vec::new();
        }
        let mut found = Vec::new();
        if let Some(tree) = to_tree(diags, config) {
            self.collect_set(&tree, AttributePath::root(), &mut found);
        }
        found
    }

    fn rewrite(
        &self,
        diags: &mut Diagnostics,
        value: Raw,
        change: impl FnOnce(&Self, &mut rmpv::Value),
    ) -> Raw {
        let Some(mut tree) = to_tree(diags, &value) else {
            return value;
        };
        change(self, &mut tree);
        let mut out = Vec::new();
        match rmpv::encode::write_value(&mut out, &tree) {
            Ok(()) => Raw::MsgPack(out),
            Err(e) => {
                diags.root_error("Cannot encode a value for Terraform", e.to_string());
                value
            }
        }
    }

    fn null_in(&self, tree: &mut rmpv::Value) {
        for name in &self.attributes {
            if let Some(v) = field_mut(tree, name) {
                *v = rmpv::Value::Nil;
            }
        }
        for (name, nesting, inner) in &self.blocks {
            if let Some(v) = field_mut(tree, name) {
                for object in objects_mut(v, *nesting) {
                    inner.null_in(object);
                }
            }
        }
    }

    fn copy_into(&self, config: &rmpv::Value, tree: &mut rmpv::Value) {
        for name in &self.attributes {
            if let (Some(from), Some(to)) = (field(config, name), field_mut(tree, name)) {
                *to = from.clone();
            }
        }
        for (name, nesting, inner) in &self.blocks {
            let (Some(from), Some(to)) = (field(config, name), field_mut(tree, name)) else {
                continue;
            };
            match nesting {
                Nesting::Object => inner.copy_into(from, to),
                Nesting::Many => {
                    // Blocks keep their order between configuration and plan.
                    if let (rmpv::Value::Array(from), rmpv::Value::Array(to)) = (from, to) {
                        for (f, t) in from.iter().zip(to.iter_mut()) {
                            inner.copy_into(f, t);
                        }
                    }
                }
                Nesting::Map => {
                    if let (rmpv::Value::Map(from), rmpv::Value::Map(to)) = (from, to) {
                        for (key, t) in to.iter_mut() {
                            if let Some((_, f)) = from.iter().find(|(k, _)| k == key) {
                                inner.copy_into(f, t);
                            }
                        }
                    }
                }
            }
        }
    }

    fn collect_set(&self, tree: &rmpv::Value, at: AttributePath, found: &mut Vec<AttributePath>) {
        for name in &self.attributes {
            if matches!(field(tree, name), Some(v) if !v.is_nil()) {
                found.push(at.clone().attribute(name.clone()));
            }
        }
        for (name, nesting, inner) in &self.blocks {
            let Some(v) = field(tree, name) else { continue };
            let here = at.clone().attribute(name.clone());
            match (nesting, v) {
                (Nesting::Object, v) => inner.collect_set(v, here, found),
                (Nesting::Many, rmpv::Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        inner.collect_set(item, here.clone().index(i as i64), found);
                    }
                }
                (Nesting::Map, rmpv::Value::Map(entries)) => {
                    for (key, item) in entries {
                        let key = key.as_str().unwrap_or_default().to_string();
                        inner.collect_set(item, here.clone().key(key), found);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Whether an attribute is write-only, by its name.
pub fn is_write_only(name: &str) -> bool {
    name.ends_with(crate::write_only::SUFFIX)
}

/// Whether an attribute type can carry a write-only value (a primitive: the
/// registry's write-only arguments are strings).
pub fn write_only_type_ok(attr_type: &AttributeType) -> bool {
    matches!(
        attr_type,
        AttributeType::String | AttributeType::Number | AttributeType::Bool
    )
}

fn to_tree(diags: &mut Diagnostics, raw: &Raw) -> Option<rmpv::Value> {
    let bytes = match raw {
        Raw::MsgPack(b) => b.as_slice(),
        Raw::Json(_) => {
            diags.root_error_short("Internal error: a JSON value where MessagePack was expected");
            return None;
        }
    };
    rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| diags.root_error("Cannot decode a value from Terraform", e.to_string()))
        .ok()
}

fn field<'v>(object: &'v rmpv::Value, name: &str) -> Option<&'v rmpv::Value> {
    match object {
        rmpv::Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn field_mut<'v>(object: &'v mut rmpv::Value, name: &str) -> Option<&'v mut rmpv::Value> {
    match object {
        rmpv::Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn objects_mut(value: &mut rmpv::Value, nesting: Nesting) -> Vec<&mut rmpv::Value> {
    match (nesting, value) {
        (Nesting::Object, v @ rmpv::Value::Map(_)) => vec![v],
        (Nesting::Many, rmpv::Value::Array(items)) => items.iter_mut().collect(),
        (Nesting::Map, rmpv::Value::Map(entries)) => entries.iter_mut().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    }
}

/// JSON counterpart of [`WriteOnly::nulled`], for upgraded states (JSON).
impl WriteOnly {
    pub fn nulled_json(&self, value: &mut serde_json::Value) {
        let Some(object) = value.as_object_mut() else {
            return;
        };
        for name in &self.attributes {
            if let Some(v) = object.get_mut(name) {
                *v = serde_json::Value::Null;
            }
        }
        for (name, nesting, inner) in &self.blocks {
            match (nesting, object.get_mut(name)) {
                (Nesting::Object, Some(v)) => inner.nulled_json(v),
                (Nesting::Many, Some(serde_json::Value::Array(items))) => {
                    items.iter_mut().for_each(|i| inner.nulled_json(i))
                }
                (Nesting::Map, Some(serde_json::Value::Object(map))) => {
                    map.values_mut().for_each(|i| inner.nulled_json(i))
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value as V;
    use tf_provider::schema::{Attribute, AttributeConstraint};

    fn block() -> Block {
        let optional = |t| Attribute {
            attr_type: t,
            constraint: AttributeConstraint::Optional,
            ..Default::default()
        };
        let mut nix = Block::default();
        nix.attributes
            .insert("netrc_wo".into(), optional(AttributeType::String));
        nix.attributes
            .insert("netrc".into(), optional(AttributeType::String));
        let mut root = Block::default();
        root.attributes
            .insert("host".into(), optional(AttributeType::String));
        root.attributes
            .insert("token_wo".into(), optional(AttributeType::String));
        root.attributes
            .insert("token_wo_version".into(), optional(AttributeType::Number));
        root.blocks.insert("nix".into(), NestedBlock::Optional(nix));
        root
    }

    fn object(host: &str, token: V, netrc: V) -> V {
        V::Map(vec![
            ("host".into(), host.into()),
            ("token_wo".into(), token),
            ("token_wo_version".into(), V::from(1)),
            (
                "nix".into(),
                V::Array(vec![V::Map(vec![
                    ("netrc".into(), V::Nil),
                    ("netrc_wo".into(), netrc),
                ])]),
            ),
        ])
    }

    fn raw(v: &V) -> Raw {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        Raw::MsgPack(out)
    }

    fn tree(r: &Raw) -> V {
        let Raw::MsgPack(b) = r else {
            panic!("not msgpack")
        };
        rmpv::decode::read_value(&mut &b[..]).unwrap()
    }

    #[test]
    fn write_only_attributes_are_found_by_name_in_nested_blocks() {
        let wo = WriteOnly::of(&block());
        assert!(!wo.is_empty());
        let config = raw(&object("h", "secret".into(), "machine x".into()));
        let mut diags = Diagnostics::default();
        let set: Vec<String> = wo
            .set_in(&mut diags, &config)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(set, ["token_wo", "nix[0].netrc_wo"]);
        let unset = raw(&object("h", V::Nil, V::Nil));
        assert!(wo.set_in(&mut diags, &unset).is_empty());
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn states_leave_with_write_only_values_null_and_the_rest_intact() {
        let wo = WriteOnly::of(&block());
        let mut diags = Diagnostics::default();
        let out = wo.nulled(
            &mut diags,
            raw(&object("h", "secret".into(), "machine x".into())),
        );
        assert_eq!(tree(&out), object("h", V::Nil, V::Nil));
        // `_wo_version` is an ordinary attribute.
        assert!(format!("{:?}", tree(&out)).contains("token_wo_version"));
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn the_configuration_s_write_only_values_reach_the_planned_state() {
        let wo = WriteOnly::of(&block());
        let mut diags = Diagnostics::default();
        let config = raw(&object("h", "secret".into(), "machine x".into()));
        let planned = raw(&object("h", V::Nil, V::Nil));
        let out = wo.copied_from(&mut diags, &config, planned);
        assert_eq!(tree(&out), object("h", "secret".into(), "machine x".into()));
        // A destroy (null planned state) stays null.
        assert!(wo.copied_from(&mut diags, &config, Raw::null()).is_null());
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn a_schema_without_write_only_attributes_leaves_values_untouched() {
        let mut b = block();
        b.attributes.retain(|n, _| !is_write_only(n));
        b.blocks.clear();
        let wo = WriteOnly::of(&b);
        assert!(wo.is_empty());
        let value = Raw::MsgPack(vec![0x81, 0xa1, b'a', 0xc3]);
        assert_eq!(wo.nulled(&mut Diagnostics::default(), value.clone()), value);
    }

    #[test]
    fn upgraded_json_states_lose_write_only_values_too() {
        let wo = WriteOnly::of(&block());
        let mut state = serde_json::json!({"host": "h", "token_wo": "s", "nix": [{"netrc_wo": "n", "netrc": null}]});
        wo.nulled_json(&mut state);
        assert_eq!(
            state,
            serde_json::json!({"host": "h", "token_wo": null, "nix": [{"netrc_wo": null, "netrc": null}]})
        );
    }

    #[test]
    fn private_state_bytes_are_tf_providers() {
        // Named-field MessagePack, as tf-provider 0.2.2 wrote private state.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Private {
            fingerprint: String,
        }
        let mut diags = Diagnostics::default();
        let bytes = encode_bytes(
            &mut diags,
            &Private {
                fingerprint: "f".into(),
            },
        )
        .unwrap();
        assert_eq!(
            bytes,
            rmp_serde::to_vec_named(&Private {
                fingerprint: "f".into()
            })
            .unwrap()
        );
        let back: Private = private_raw(bytes).decode(&mut diags).unwrap();
        assert_eq!(back.fingerprint, "f");
        // Empty private state (a resource created by another build) is null.
        let none: Option<Private> = private_raw(Vec::new()).decode(&mut diags).unwrap();
        assert!(none.is_none());
    }
}
