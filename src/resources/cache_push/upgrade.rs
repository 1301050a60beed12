//! Schema versions of `nixbuild_cache_push`'s state.
//!
//! - 1: 0.1.0. `source_hash` was a tree hash of 0.1.0's own making.
//! - 2: `source_hash` is the tree's NAR hash (as `nix-hash --type sha256`
//!   prints it), the hash Nix records as the flake's `narHash`. A version-1
//!   hash can never equal a version-2 one, so it is forgotten (null) rather
//!   than shown as a changed tree: the plan after the upgrade shows the new
//!   hash being recorded (`+ source_hash`), with the one re-push it needs to
//!   know its outputs are in the cache (nothing is uploaded when they are).

use crate::resources::state_upgrade::Upgrades;

pub static UPGRADES: Upgrades = Upgrades {
    resource: "nixbuild_cache_push",
    first: 1,
    steps: &[forget_the_legacy_source_hash],
};

/// 1 → 2: drop 0.1.0's `source_hash` (see the module docs).
fn forget_the_legacy_source_hash(
    mut state: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let object = state
        .as_object_mut()
        .ok_or("the stored state is not an object")?;
    if let Some(hash) = object.get_mut("source_hash") {
        *hash = serde_json::Value::Null;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tf_provider::Diagnostics;

    #[test]
    fn a_version_1_source_hash_is_forgotten_and_the_rest_kept() {
        let mut diags = Diagnostics::default();
        let old = json!({"host": "h", "source": "/src", "source_hash": "0a1b", "installables": ["default"]});
        let new = UPGRADES.run(&mut diags, 1, old).unwrap();
        assert_eq!(
            new,
            json!({"host": "h", "source": "/src", "source_hash": null, "installables": ["default"]})
        );
        assert_eq!(UPGRADES.current(), 2);
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn a_state_that_is_not_an_object_fails_with_the_resource_named() {
        let mut diags = Diagnostics::default();
        assert!(UPGRADES.run(&mut diags, 1, json!([])).is_none());
        let text = format!("{:?}", diags.errors);
        assert!(
            text.contains("nixbuild_cache_push") && text.contains("not an object"),
            "{text}"
        );
    }
}
