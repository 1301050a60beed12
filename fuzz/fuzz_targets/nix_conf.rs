//! The managed nix.conf read back from a builder on import
//! (`ManagedConf::parse` of whatever the file holds).
//!
//! Properties: `parse` never panics; a parsed configuration (with its build
//! user put back first in `trusted_users`, as import does) renders to a
//! file that parses and renders again to the same bytes, so the hash
//! compared for drift is stable; the feature-line and value checks never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::conf::{
    check_feature, check_public_key, check_substituter, check_system, feature_lines, ManagedConf,
};

fn with_user(text: &str) -> ManagedConf {
    let (mut conf, user) = ManagedConf::parse(text);
    if let Some(user) = user {
        conf.trusted_users.insert(0, user);
    }
    conf
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let conf = with_user(text);
    let file = conf.render();
    let again = with_user(&file);
    assert_eq!(again.render(), file, "{conf:?}");
    assert_eq!(again.hash(), conf.hash());
    assert!(feature_lines(text).iter().all(|l| l.contains("features")));
    for word in text.split_whitespace() {
        let _ = check_feature(word);
        let _ = check_public_key(word);
        let _ = check_substituter(word);
        let _ = check_system(word);
    }
});
