//! Terraform's values at the protocol boundary (MessagePack in every RPC,
//! JSON in stored state), through the public plugin layer: decoding into
//! each resource's state type (`ResourceHandler::decodes`) and the
//! write-only rewriting (`WriteOnly::nulled`, `copied_from`, `set_in`,
//! `nulled_json`) of the resources' schemas.
//!
//! Input: byte 0 picks the resource type, byte 1 the encoding (even:
//! MessagePack, odd: JSON), the rest is the value. Properties: nothing
//! panics; nulling write-only values twice changes nothing more than once;
//! after nulling, no write-only attribute is reported set.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::plugin::registry::Registry;
use terraform_provider_nixbuild::plugin::values::Raw;
use terraform_provider_nixbuild::provider::NixbuildProvider;
use tf_provider::Diagnostics;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new("nixbuild");
        NixbuildProvider::new().catalog(&mut registry);
        assert!(registry.diagnostics.errors.is_empty());
        registry
    })
}

fuzz_target!(|data: &[u8]| {
    let [pick, encoding, value @ ..] = data else {
        return;
    };
    let entries: Vec<_> = registry().resources.values().collect();
    let entry = entries[usize::from(*pick) % entries.len()];
    let raw = if encoding % 2 == 0 {
        Raw::MsgPack(value.to_vec())
    } else {
        Raw::Json(value.to_vec())
    };
    let mut diags = Diagnostics::default();
    let decodes = entry.handler.decodes(&mut diags, &raw);
    assert_eq!(decodes, diags.errors.is_empty(), "{:?}", diags.errors);

    let wo = &entry.write_only;
    let mut diags = Diagnostics::default();
    let _ = wo.set_in(&mut diags, &raw);
    let nulled = wo.nulled(&mut diags, raw.clone());
    if diags.errors.is_empty() {
        let twice = wo.nulled(&mut diags, nulled.clone());
        assert_eq!(twice, nulled);
        assert!(wo.set_in(&mut diags, &nulled).is_empty());
    }
    let mut diags = Diagnostics::default();
    let _ = wo.copied_from(&mut diags, &raw, raw.clone());
    let _ = wo.copied_from(&mut diags, &Raw::MsgPack(value.to_vec()), Raw::null());
    if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(value) {
        wo.nulled_json(&mut json);
        let once = json.clone();
        wo.nulled_json(&mut json);
        assert_eq!(json, once);
    }
    let _ = raw.decode::<serde_json::Value>(&mut Diagnostics::default());
});
