//! `UpgradeResourceState`: the stored state of a resource (JSON, or the
//! flatmap of Terraform < 0.12) brought to the current schema version
//! through the resource's version steps (`resources::state_upgrade`).
//!
//! A state at the current version passes unchanged (Terraform fills
//! attributes added since with null), as it always did. A state of an older
//! version runs every step up to the current one and must then decode as the
//! current state type; a failing step or a state that does not fit is an
//! error naming the resource, and Terraform keeps the stored state.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use tf_provider::schema::{AttributeType, Block, NestedBlock};
use tf_provider::Diagnostics;

use super::proto::tfplugin6::RawState;
use super::registry::ResourceEntry;
use super::values::Raw;
use crate::resources::state_upgrade::Upgrades;

pub fn upgrade(
    diags: &mut Diagnostics,
    type_name: &str,
    entry: &ResourceEntry,
    version: i64,
    raw: Option<RawState>,
) -> Option<Raw> {
    let raw = raw.unwrap_or_default();
    let mut state: Json = if !raw.json.is_empty() {
        match serde_json::from_slice(&raw.json) {
            Ok(json) => json,
            Err(e) => {
                diags.root_error(
                    format!("{type_name}: the stored state is not JSON"),
                    e.to_string(),
                );
                return None;
            }
        }
    } else if !raw.flatmap.is_empty() {
        from_flatmap(&entry.schema.block, &raw.flatmap, "")
    } else {
        Json::Null
    };
    let current = entry.schema.version;
    if version != current {
        let no_steps = Upgrades {
            resource: entry.name,
            first: current,
            steps: &[],
        };
        let upgrades = entry.upgrades.unwrap_or(&no_steps);
        state = upgrades.run(diags, version, state)?;
        let mut why = Diagnostics::default();
        let bytes = serde_json::to_vec(&state).ok()?;
        if !entry.handler.decodes(&mut why, &Raw::Json(bytes)) {
            let detail = why
                .errors
                .first()
                .map(|d| d.detail.to_string())
                .unwrap_or_default();
            diags.root_error(
                format!("{type_name}: the upgraded state does not fit schema version {current}"),
                format!("{detail}; the state was not changed"),
            );
            return None;
        }
    }
    entry.write_only.nulled_json(&mut state);
    match serde_json::to_vec(&state) {
        Ok(bytes) => Some(Raw::Json(bytes)),
        Err(e) => {
            diags.root_error(
                format!("{type_name}: cannot encode the upgraded state"),
                e.to_string(),
            );
            None
        }
    }
}

/// A flatmap state (`"a" = "1"`, `"list.#" = "2"`, `"list.0" = "x"`,
/// `"map.%" = "1"`, `"map.k" = "v"`, `"block.0.attr" = "v"`) as the JSON
/// object the schema describes. Sets are numbered by hash: their items are
/// taken in key order.
fn from_flatmap(block: &Block, flat: &HashMap<String, String>, prefix: &str) -> Json {
    let mut object = Map::new();
    for (name, attr) in &block.attributes {
        object.insert(
            name.clone(),
            flat_value(&attr.attr_type, flat, &format!("{prefix}{name}")),
        );
    }
    for (name, nested) in &block.blocks {
        let key = format!("{prefix}{name}");
        let value = match nested {
            NestedBlock::Single(b) | NestedBlock::Group(b) => match indices(flat, &key).first() {
                Some(i) => from_flatmap(b, flat, &format!("{key}.{i}.")),
                None => Json::Null,
            },
            NestedBlock::List(b) | NestedBlock::Set(b) | NestedBlock::Optional(b) => Json::Array(
                indices(flat, &key)
                    .into_iter()
                    .map(|i| from_flatmap(b, flat, &format!("{key}.{i}.")))
                    .collect(),
            ),
            NestedBlock::Map(b) => Json::Object(
                map_keys(flat, &key)
                    .into_iter()
                    .map(|k| (k.clone(), from_flatmap(b, flat, &format!("{key}.{k}."))))
                    .collect(),
            ),
        };
        object.insert(name.clone(), value);
    }
    Json::Object(object)
}

fn flat_value(t: &AttributeType, flat: &HashMap<String, String>, key: &str) -> Json {
    let primitive = |t: &AttributeType, s: &String| match t {
        AttributeType::Number => s
            .parse::<serde_json::Number>()
            .map(Json::Number)
            .unwrap_or_else(|_| Json::String(s.clone())),
        AttributeType::Bool => Json::Bool(s == "true" || s == "1"),
        _ => Json::String(s.clone()),
    };
    match t {
        AttributeType::List(inner) | AttributeType::Set(inner) => {
            if !flat.contains_key(&format!("{key}.#")) {
                return Json::Null;
            }
            Json::Array(
                indices(flat, key)
                    .into_iter()
                    .map(|i| flat_value(inner, flat, &format!("{key}.{i}")))
                    .collect(),
            )
        }
        AttributeType::Map(inner) => {
            if !flat.contains_key(&format!("{key}.%")) {
                return Json::Null;
            }
            Json::Object(
                map_keys(flat, key)
                    .into_iter()
                    .map(|k| (k.clone(), flat_value(inner, flat, &format!("{key}.{k}"))))
                    .collect(),
            )
        }
        _ => flat.get(key).map(|s| primitive(t, s)).unwrap_or(Json::Null),
    }
}

/// The item numbers under `key.` (list positions or set hashes), in order.
fn indices(flat: &HashMap<String, String>, key: &str) -> Vec<String> {
    let mut found: Vec<String> = flat
        .keys()
        .filter_map(|k| k.strip_prefix(key)?.strip_prefix('.'))
        .filter_map(|rest| rest.split('.').next())
        .filter(|i| i.chars().all(|c| c.is_ascii_digit()) && !i.is_empty())
        .map(str::to_string)
        .collect();
    found.sort_by_key(|i| i.parse::<u64>().unwrap_or(u64::MAX));
    found.dedup();
    found
}

/// The keys of a flatmap map under `key.` (everything but the `%` count).
fn map_keys(flat: &HashMap<String, String>, key: &str) -> Vec<String> {
    let mut found: Vec<String> = flat
        .keys()
        .filter_map(|k| k.strip_prefix(key)?.strip_prefix('.'))
        .filter_map(|rest| rest.split('.').next())
        .filter(|k| *k != "%")
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_provider::schema::{Attribute, AttributeConstraint};

    fn attr(t: AttributeType) -> Attribute {
        Attribute {
            attr_type: t,
            constraint: AttributeConstraint::Optional,
            ..Default::default()
        }
    }

    #[test]
    fn flatmap_decodes_by_the_schema() {
        let mut inner = Block::default();
        inner
            .attributes
            .insert("max_jobs".into(), attr(AttributeType::Number));
        let mut block = Block::default();
        block
            .attributes
            .insert("host".into(), attr(AttributeType::String));
        block
            .attributes
            .insert("daemon".into(), attr(AttributeType::Bool));
        block.attributes.insert(
            "systems".into(),
            attr(AttributeType::List(Box::new(AttributeType::String))),
        );
        block.attributes.insert(
            "labels".into(),
            attr(AttributeType::Map(Box::new(AttributeType::String))),
        );
        block
            .attributes
            .insert("gone".into(), attr(AttributeType::String));
        block
            .blocks
            .insert("nix".into(), NestedBlock::Optional(inner));
        let flat: HashMap<String, String> = [
            ("host", "h"),
            ("daemon", "true"),
            ("systems.#", "2"),
            ("systems.0", "x86_64-linux"),
            ("systems.1", "i686-linux"),
            ("labels.%", "1"),
            ("labels.team", "ops"),
            ("nix.#", "1"),
            ("nix.0.max_jobs", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            from_flatmap(&block, &flat, ""),
            serde_json::json!({
                "host": "h", "daemon": true, "gone": null,
                "systems": ["x86_64-linux", "i686-linux"],
                "labels": {"team": "ops"},
                "nix": [{"max_jobs": 4}],
            })
        );
    }
}
