//! `UpgradeResourceState`: the stored state Terraform hands back (JSON, or
//! the flatmap of Terraform < 0.12), decoded by the resource's schema and
//! run through its upgrade steps (`plugin::upgrade::upgrade`).
//!
//! Input: byte 0 picks the resource type, byte 1 the stored schema version
//! (as a signed byte), byte 2 the form (even: JSON, odd: flatmap as
//! `key=value` lines); the rest is the state. Properties: no panic; a
//! result is JSON; an error comes with a diagnostic and a result without.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::plugin::proto::tfplugin6::RawState;
use terraform_provider_nixbuild::plugin::registry::Registry;
use terraform_provider_nixbuild::plugin::upgrade::upgrade;
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
    let [pick, version, form, state @ ..] = data else {
        return;
    };
    let entries: Vec<_> = registry().resources.iter().collect();
    let (type_name, entry) = entries[usize::from(*pick) % entries.len()];
    let raw = if form % 2 == 0 {
        RawState {
            json: state.to_vec(),
            flatmap: HashMap::new(),
        }
    } else {
        let Ok(text) = std::str::from_utf8(state) else {
            return;
        };
        let flatmap = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RawState {
            json: Vec::new(),
            flatmap,
        }
    };
    let mut diags = Diagnostics::default();
    let result = upgrade(
        &mut diags,
        type_name,
        entry,
        i64::from(*version as i8),
        Some(raw),
    );
    match result {
        Some(Raw::Json(bytes)) => {
            assert!(diags.errors.is_empty());
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("the result is JSON");
        }
        Some(other) => panic!("upgrade gave {other:?}"),
        None => assert!(!diags.errors.is_empty(), "no result and no error"),
    }
});
