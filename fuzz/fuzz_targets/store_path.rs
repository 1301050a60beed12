//! Store paths as a builder or a binary cache names them: no panic, and an
//! accepted path prints back exactly as written, with a valid hash part,
//! and its base name parses under the store directory again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::store_path::{is_hash_part, StorePath, STORE_DIR};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = StorePath::parse(text) else {
        return;
    };
    assert_eq!(path.to_string(), text);
    assert!(is_hash_part(path.hash()));
    assert!(!path.name().is_empty() && !path.name().contains('/'));
    let again = StorePath::parse(&format!("{STORE_DIR}/{}", path.base_name())).unwrap();
    assert_eq!(again, path);
});
