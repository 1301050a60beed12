//! `<hash>.narinfo` answers of a binary cache (any HTTP server the user
//! names): `NarInfo::parse` must not panic, and what it accepts must render
//! back (as `Key: value` lines) to text that parses to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::narinfo::NarInfo;

/// A narinfo with exactly `info`'s fields (the provider has no renderer).
fn render(info: &NarInfo) -> String {
    let mut out = format!(
        "StorePath: {}\nURL: {}\nNarHash: {}\nNarSize: {}\n",
        info.store_path, info.url, info.nar_hash, info.nar_size
    );
    if let Some(c) = &info.compression {
        out.push_str(&format!("Compression: {c}\n"));
    }
    if let Some(n) = info.file_size {
        out.push_str(&format!("FileSize: {n}\n"));
    }
    out.push_str(&format!("References: {}\n", info.references.join(" ")));
    if let Some(d) = &info.deriver {
        out.push_str(&format!("Deriver: {d}\n"));
    }
    for sig in &info.sigs {
        out.push_str(&format!("Sig: {sig}\n"));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(info) = NarInfo::parse(text) else {
        return;
    };
    assert!(!info.store_path.is_empty() && !info.url.is_empty() && !info.nar_hash.is_empty());
    assert_ne!(info.deriver.as_deref(), Some("unknown-deriver"));
    assert!(info
        .references
        .iter()
        .all(|r| !r.is_empty() && !r.contains(char::is_whitespace)));
    for sig in &info.sigs {
        if let Some((key, _)) = sig.split_once(':') {
            assert!(info.signed_by(key), "{sig:?}");
        }
    }
    let again = NarInfo::parse(&render(&info))
        .unwrap_or_else(|e| panic!("{info:?} renders to a narinfo that does not parse: {e}"));
    assert_eq!(again, info);
});
