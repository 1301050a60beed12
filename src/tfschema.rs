//! One definition per resource: the state type is the Terraform schema.
//!
//! A state struct derives `serde` (the decoder) and [`schemars::JsonSchema`];
//! its doc comments are the user-facing descriptions and each field names its
//! Terraform role with one marker type in `#[schemars(with = "…")]`:
//!
//! ```ignore
//! #[derive(Serialize, Deserialize, JsonSchema, Default)]
//! #[serde(default)]
//! /// What the resource does (the resource's description).
//! struct ThingState {
//!     /// Host name or IP address.
//!     #[schemars(with = "Required<String>")]
//!     host: Value<String>,
//!     /// Extra settings.
//!     #[serde(with = "crate::schema::optional_block")]
//!     #[schemars(with = "Block<Settings>")]
//!     settings: Value<Settings>,
//! }
//! ```
//!
//! [`schema_of`] turns the derived JSON Schema into tf-provider's [`Schema`]:
//! `String` → string, `i64`/`f64` → number, `bool` → bool, `Vec` → list,
//! `BTreeSet`/`HashSet` → set, `BTreeMap`/`HashMap` → map,
//! [`Secret`](crate::secrets::Secret) → a sensitive string (a map of them →
//! a sensitive map; Terraform marks whole attributes); [`Block`] and
//! [`BlockList`] make nested blocks (at most once / repeated). Anything else
//! is an error naming the field, never a silently different schema.
//! tf-provider's `Value<T>` stays the field type: the orphan rule forbids a
//! `JsonSchema` impl for it, so the marker carries the inner type (a unit
//! test per resource decodes a value of every attribute's Terraform type
//! into the Rust type, so the two cannot disagree unnoticed).
//!
//! Not here: forces-replacement (a plan decision in tf-provider, written in
//! each resource's `plan_update`) and min/max items of nested blocks
//! (tf-provider 0.2.2 derives them from the nesting mode).

use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value as Json};
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block as TfBlock, Description, NestedBlock,
    Schema,
};

/// The extension keyword that carries a field's Terraform role.
const ROLE: &str = "x-tf-role";
/// Set on the schema of a type whose values are secrets.
pub const SENSITIVE: &str = "x-tf-sensitive";

macro_rules! role_marker {
    ($($(#[$doc:meta])* $name:ident => $role:literal,)*) => {$(
        $(#[$doc])*
        pub struct $name<T>(PhantomData<T>);

        impl<T: JsonSchema> JsonSchema for $name<T> {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                format!("{}_{}", stringify!($name), T::schema_name()).into()
            }
            fn json_schema(generator: &mut SchemaGenerator) -> schemars::Schema {
                let mut schema = T::json_schema(generator);
                schema.insert(ROLE.into(), $role.into());
                schema
            }
        }
    )*};
}

role_marker! {
    /// An argument the configuration must set.
    Required => "required",
    /// An argument the configuration may set.
    Optional => "optional",
    /// An attribute only the provider sets.
    Computed => "computed",
    /// An argument the provider fills in when the configuration does not.
    OptionalComputed => "optional_computed",
    /// A nested block that appears at most once (decode it with
    /// `crate::schema::optional_block`).
    Block => "block",
    /// A nested block that may repeat, in order.
    BlockList => "block_list",
}

impl JsonSchema for crate::secrets::Secret {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", SENSITIVE: true })
    }
}

/// The Terraform schema of `T` (version 1, as every schema of this provider).
pub fn schema_of<T: JsonSchema>() -> Result<Schema, String> {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let root = generator.into_root_schema_for::<T>();
    let block = block_of(&T::schema_name(), root.as_value())?;
    Ok(Schema { version: 1, block })
}

/// [`schema_of`] for a `schema()` method: an adapter error becomes a
/// diagnostic (the unit tests make sure there is none).
pub fn schema_or_diag<T: JsonSchema>(diags: &mut tf_provider::Diagnostics) -> Option<Schema> {
    or_diag(schema_of::<T>(), diags)
}

/// A schema, or its adapter error as a diagnostic.
pub fn or_diag(
    schema: Result<Schema, String>,
    diags: &mut tf_provider::Diagnostics,
) -> Option<Schema> {
    schema
        .map_err(|e| diags.root_error_short(format!("Internal schema error: {e}")))
        .ok()
}

/// Doc comments arrive with their line breaks; a single break inside a
/// paragraph is a space in Markdown, so descriptions keep only paragraph breaks.
fn description(at: &str, schema: &Map<String, Json>) -> Result<String, String> {
    let text = schema
        .get("description")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Err(format!("{at} has no description (doc comment)"));
    }
    Ok(text
        .split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n"))
}

fn object<'a>(at: &str, schema: &'a Json) -> Result<&'a Map<String, Json>, String> {
    schema
        .as_object()
        .ok_or_else(|| format!("{at}: expected a schema object, got {schema}"))
}

fn block_of(at: &str, schema: &Json) -> Result<TfBlock, String> {
    let schema = object(at, schema)?;
    let empty = Map::new();
    let properties = match schema.get("properties") {
        Some(p) => object(at, p)?,
        None => &empty,
    };
    let mut attributes = HashMap::new();
    let mut blocks = HashMap::new();
    for (name, property) in properties {
        let at = format!("{at}.{name}");
        let property = object(&at, property)?;
        let role = property
            .get(ROLE)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{at} has no Terraform role (#[schemars(with = \"Optional<…>\")] or another marker)"))?;
        let constraint = match role {
            "required" => AttributeConstraint::Required,
            "optional" => AttributeConstraint::Optional,
            "computed" => AttributeConstraint::Computed,
            "optional_computed" => AttributeConstraint::OptionalComputed,
            "block" | "block_list" => {
                let mut inner = block_of(&at, &Json::Object(property.clone()))?;
                inner.description = Description::markdown(description(&at, property)?);
                blocks.insert(
                    name.clone(),
                    if role == "block" {
                        NestedBlock::Optional(inner)
                    } else {
                        NestedBlock::List(inner)
                    },
                );
                continue;
            }
            other => return Err(format!("{at}: unknown Terraform role `{other}`")),
        };
        let (attr_type, sensitive) = attribute_type(&at, property)?;
        attributes.insert(
            name.clone(),
            Attribute {
                attr_type,
                description: Description::markdown(description(&at, property)?),
                constraint,
                sensitive,
                deprecated: false,
            },
        );
    }
    Ok(TfBlock {
        version: 1,
        attributes,
        blocks,
        description: Description::markdown(description(at, schema)?),
        deprecated: false,
    })
}

/// The block inside a nested block, whatever its nesting mode.
pub fn nested_inner(nested: &NestedBlock) -> &TfBlock {
    match nested {
        NestedBlock::Single(b)
        | NestedBlock::List(b)
        | NestedBlock::Set(b)
        | NestedBlock::Map(b)
        | NestedBlock::Group(b)
        | NestedBlock::Optional(b) => b,
    }
}

/// The Terraform type of one JSON Schema, and whether its values are secrets
/// (only strings and maps of strings may be).
fn attribute_type(at: &str, schema: &Map<String, Json>) -> Result<(AttributeType, bool), String> {
    let mut sensitive = schema.get(SENSITIVE) == Some(&Json::Bool(true));
    let kind = schema
        .get("type")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let unmappable = || {
        format!(
            "{at}: no Terraform type for the JSON Schema {}",
            Json::Object(schema.clone())
        )
    };
    // A map of secrets is one sensitive attribute (Terraform marks whole
    // attributes); a list of them is refused.
    let element = |key: &str| -> Result<(AttributeType, bool), String> {
        let inner = object(at, schema.get(key).ok_or_else(unmappable)?)?;
        match attribute_type(&format!("{at}[]"), inner)? {
            (AttributeType::String, true) if key == "additionalProperties" => {
                Ok((AttributeType::String, true))
            }
            (_, true) => Err(format!(
                "{at}: only a whole string attribute or a map of strings can be sensitive"
            )),
            (t, false) => Ok((t, false)),
        }
    };
    let attr_type = match kind {
        "string" => AttributeType::String,
        "integer" | "number" => AttributeType::Number,
        "boolean" => AttributeType::Bool,
        "array" if schema.get("uniqueItems") == Some(&Json::Bool(true)) => {
            AttributeType::Set(Box::new(element("items")?.0))
        }
        "array" => AttributeType::List(Box::new(element("items")?.0)),
        "object" if schema.contains_key("additionalProperties") => {
            let (values, secret) = element("additionalProperties")?;
            sensitive |= secret;
            AttributeType::Map(Box::new(values))
        }
        _ => return Err(unmappable()),
    };
    let secret_map = attr_type == AttributeType::Map(Box::new(AttributeType::String));
    if sensitive && attr_type != AttributeType::String && !secret_map {
        return Err(format!(
            "{at}: only a string or a map of strings can be sensitive"
        ));
    }
    Ok((attr_type, sensitive))
}

/// Test support: does the Rust type `T` decode and re-encode exactly what
/// `schema` describes? A value of every attribute's Terraform type (and one
/// instance of every nested block) is sent as Terraform sends it
/// (MessagePack), decoded into `T`, and encoded again. A type that does not
/// match fails the decoding; a schema entry the type lacks is dropped, and a
/// field the schema lacks appears as an extra key: each difference is
/// returned with its path. `extra_ok` lists paths of fields the schema leaves
/// out on purpose (they must come back null).
#[cfg(test)]
pub fn definition_differences<T>(schema: &Schema, extra_ok: &[&str]) -> Vec<String>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let sample = sample_block(&schema.block);
    let bytes = rmp_serde::to_vec_named(&sample).expect("encode the sample");
    let decoded: T = match rmp_serde::from_slice(&bytes) {
        Ok(decoded) => decoded,
        Err(e) => {
            return vec![format!(
                "the Rust type does not decode the schema's values: {e}"
            )]
        }
    };
    let back = serde_json::to_value(&decoded).expect("encode the decoded state");
    let mut differences = Vec::new();
    compare("", &sample, &back, extra_ok, &mut differences);
    differences
}

#[cfg(test)]
fn sample_block(block: &TfBlock) -> Json {
    let mut object = Map::new();
    for (name, attribute) in &block.attributes {
        object.insert(name.clone(), sample_value(&attribute.attr_type));
    }
    for (name, nested) in &block.blocks {
        object.insert(
            name.clone(),
            Json::Array(vec![sample_block(nested_inner(nested))]),
        );
    }
    Json::Object(object)
}

#[cfg(test)]
fn sample_value(attr_type: &AttributeType) -> Json {
    match attr_type {
        AttributeType::String => Json::String("s".into()),
        AttributeType::Number => Json::from(2),
        AttributeType::Bool => Json::Bool(true),
        AttributeType::List(t) | AttributeType::Set(t) => Json::Array(vec![sample_value(t)]),
        AttributeType::Map(t) => Json::Object(Map::from_iter([("k".into(), sample_value(t))])),
        other => panic!("no sample for {other:?}"),
    }
}

#[cfg(test)]
fn compare(at: &str, sent: &Json, back: &Json, extra_ok: &[&str], out: &mut Vec<String>) {
    let path = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (sent, back) {
        (Json::Object(sent), Json::Object(back)) => {
            for (key, value) in sent {
                match back.get(key) {
                    Some(b) => compare(&path(key), value, b, extra_ok, out),
                    None => out.push(format!(
                        "{}: in the schema, not in the Rust type",
                        path(key)
                    )),
                }
            }
            for (key, value) in back {
                let extra = path(key);
                let expected = sent.contains_key(key)
                    || (extra_ok.contains(&extra.as_str()) && value.is_null());
                if !expected {
                    out.push(format!("{extra}: in the Rust type, not in the schema"));
                }
            }
        }
        (Json::Array(sent), Json::Array(back)) if sent.len() == back.len() => {
            for (s, b) in sent.iter().zip(back) {
                compare(&format!("{at}[]"), s, b, extra_ok, out);
            }
        }
        (Json::Number(s), Json::Number(b)) if s.as_f64() == b.as_f64() => {}
        (s, b) if s == b => {}
        (s, b) => out.push(format!("{at}: sent {s}, came back as {b}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Serialize};
    use tf_provider::value::Value;

    use super::*;
    use crate::secrets::Secret;

    /// Settings of a toy.
    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    struct Inner {
        /// A number
        /// over two lines.
        #[schemars(with = "Optional<i64>")]
        n: Value<i64>,
    }

    /// A toy resource.
    ///
    /// Second paragraph.
    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    struct Toy {
        /// Name.
        #[schemars(with = "Required<String>")]
        name: Value<String>,
        /// Token.
        #[schemars(with = "Optional<Secret>")]
        token: Value<Secret>,
        /// Tags.
        #[schemars(with = "OptionalComputed<BTreeSet<String>>")]
        tags: Value<Vec<Value<String>>>,
        /// Labels.
        #[schemars(with = "Computed<BTreeMap<String, String>>")]
        labels: Value<BTreeMap<String, Value<String>>>,
        /// Tokens by host.
        #[schemars(with = "Optional<BTreeMap<String, Secret>>")]
        tokens: Value<BTreeMap<String, Value<Secret>>>,
        /// Ratio.
        #[schemars(with = "Optional<f64>")]
        ratio: Value<f64>,
        /// Flags.
        #[schemars(with = "Optional<Vec<bool>>")]
        flags: Value<Vec<Value<bool>>>,
        #[serde(with = "crate::schema::optional_block")]
        #[schemars(with = "Block<Inner>")]
        inner: Value<Inner>,
        /// Repeated settings (the field's doc wins over the type's).
        #[schemars(with = "BlockList<Inner>")]
        many: Value<Vec<Inner>>,
    }

    fn attr(block: &TfBlock, name: &str) -> Attribute {
        block.attributes[name].clone()
    }

    #[test]
    fn types_markers_and_descriptions_map() {
        let schema = schema_of::<Toy>().unwrap();
        let b = &schema.block;
        assert_eq!(
            b.description,
            Description::markdown("A toy resource.\n\nSecond paragraph.")
        );
        let name = attr(b, "name");
        assert_eq!(name.attr_type, AttributeType::String);
        assert_eq!(name.constraint, AttributeConstraint::Required);
        assert_eq!(name.description, Description::markdown("Name."));
        assert!(!name.sensitive);
        let token = attr(b, "token");
        assert!(token.sensitive);
        assert_eq!(token.constraint, AttributeConstraint::Optional);
        let tags = attr(b, "tags");
        assert_eq!(
            tags.attr_type,
            AttributeType::Set(Box::new(AttributeType::String))
        );
        assert_eq!(tags.constraint, AttributeConstraint::OptionalComputed);
        let labels = attr(b, "labels");
        assert_eq!(
            labels.attr_type,
            AttributeType::Map(Box::new(AttributeType::String))
        );
        assert_eq!(labels.constraint, AttributeConstraint::Computed);
        assert!(!labels.sensitive);
        let tokens = attr(b, "tokens");
        assert!(tokens.sensitive, "a map of secrets is a sensitive map");
        assert_eq!(
            tokens.attr_type,
            AttributeType::Map(Box::new(AttributeType::String))
        );
        /// A list of secrets cannot be marked as a whole.
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct SecretList {
            /// Keys.
            #[schemars(with = "Optional<Vec<Secret>>")]
            keys: Value<Vec<Value<Secret>>>,
        }
        assert!(schema_of::<SecretList>()
            .unwrap_err()
            .contains("can be sensitive"));
        assert_eq!(attr(b, "ratio").attr_type, AttributeType::Number);
        assert_eq!(
            attr(b, "flags").attr_type,
            AttributeType::List(Box::new(AttributeType::Bool))
        );
        let NestedBlock::Optional(inner) = &b.blocks["inner"] else {
            panic!("inner is not an optional block");
        };
        assert_eq!(
            inner.description,
            Description::markdown("Settings of a toy.")
        );
        assert_eq!(
            attr(inner, "n").description,
            Description::markdown("A number over two lines.")
        );
        assert_eq!(attr(inner, "n").attr_type, AttributeType::Number);
        let NestedBlock::List(many) = &b.blocks["many"] else {
            panic!("many is not a list block");
        };
        assert_eq!(
            many.description,
            Description::markdown("Repeated settings (the field's doc wins over the type's).")
        );
        assert_eq!(b.attributes.len() + b.blocks.len(), 9);
    }

    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    /// Broken.
    struct Undescribed {
        #[schemars(with = "Optional<String>")]
        a: Value<String>,
    }

    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    /// Broken.
    struct NoRole {
        /// A.
        a: String,
    }

    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    /// Broken.
    struct Unmappable {
        /// A.
        #[schemars(with = "Optional<(String, i64)>")]
        a: Value<String>,
    }

    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    #[serde(default)]
    /// Broken.
    struct SecretList {
        /// A.
        #[schemars(with = "Optional<Vec<Secret>>")]
        a: Value<Vec<Value<Secret>>>,
    }

    #[test]
    fn mistakes_name_the_field() {
        let e = schema_of::<Undescribed>().unwrap_err();
        assert!(e.contains("Undescribed.a has no description"), "{e}");
        let e = schema_of::<NoRole>().unwrap_err();
        assert!(e.contains("NoRole.a has no Terraform role"), "{e}");
        let e = schema_of::<Unmappable>().unwrap_err();
        assert!(e.contains("Unmappable.a: no Terraform type"), "{e}");
        let e = schema_of::<SecretList>().unwrap_err();
        assert!(e.contains("sensitive"), "{e}");
    }

    #[test]
    fn the_toy_type_is_its_schema() {
        let schema = schema_of::<Toy>().unwrap();
        assert_eq!(
            definition_differences::<Toy>(&schema, &[]),
            Vec::<String>::new()
        );
    }

    /// A schema built from `Toy` does not fit a type that spells one field's
    /// type differently or lacks one.
    #[test]
    fn a_type_that_disagrees_with_the_schema_is_found() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct WrongType {
            name: Value<i64>,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Missing {
            name: Value<String>,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Extra {
            name: Value<String>,
            other: Value<String>,
        }
        let mut schema = schema_of::<Toy>().unwrap();
        schema.block.blocks.clear();
        schema.block.attributes.retain(|name, _| name == "name");
        let wrong = definition_differences::<WrongType>(&schema, &[]);
        assert!(wrong[0].contains("does not decode"), "{wrong:?}");
        schema.block.attributes.insert(
            "token".into(),
            attr(&schema_of::<Toy>().unwrap().block, "token"),
        );
        let missing = definition_differences::<Missing>(&schema, &[]);
        assert_eq!(missing, ["token: in the schema, not in the Rust type"]);
        schema.block.attributes.remove("token");
        let extra = definition_differences::<Extra>(&schema, &[]);
        assert_eq!(extra, ["other: in the Rust type, not in the schema"]);
        assert!(definition_differences::<Extra>(&schema, &["other"]).is_empty());
    }
}
