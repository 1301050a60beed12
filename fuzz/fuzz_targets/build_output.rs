//! The JSON that `nix build --json` and `nix path-info --json` print on the
//! builder (a host the provider does not control): no panic, every accepted
//! path is a store path that prints back as written, `out_paths_of` gives
//! distinct paths, and a closure's paths are sorted and distinct.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::build_output::{
    out_paths_of, parse_build_json, parse_path_info, Closure,
};
use terraform_provider_nixbuild::nix::store_path::StorePath;

fn is_store_path(p: &str) {
    let parsed = StorePath::parse(p).unwrap_or_else(|e| panic!("accepted {p:?}: {e}"));
    assert_eq!(parsed.to_string(), p);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(built) = parse_build_json(text) {
        for b in &built {
            b.out_paths().iter().for_each(|p| is_store_path(p));
        }
        match out_paths_of(text) {
            Ok(paths) => {
                assert!(!paths.is_empty());
                for (i, p) in paths.iter().enumerate() {
                    is_store_path(p);
                    assert!(!paths[..i].contains(p), "{p} twice");
                }
            }
            Err(_) => assert!(built.iter().all(|b| b.out_paths().is_empty())),
        }
    } else {
        assert!(out_paths_of(text).is_err());
    }
    if let Ok(infos) = parse_path_info(text) {
        infos.iter().for_each(|i| is_store_path(&i.path));
        if let Ok(closure) = Closure::from_path_info(&infos) {
            assert!(infos.iter().all(|i| i.valid));
            assert!(closure.paths.windows(2).all(|w| w[0] < w[1]));
            assert!(closure.paths.len() <= infos.len());
        } else {
            assert!(infos.iter().any(|i| !i.valid));
        }
    }
});
