//! Attribute paths of installables as users write them (`cache_push`
//! installables, `nixbuild_build` attributes: any text of a configuration).
//!
//! Properties:
//! - `AttrPath::parse` and `cli_installable` never panic;
//! - what parses renders (`to_cli`) to a fragment a URL may carry, and
//!   reading that fragment the way Nix's command line does (percent-decode,
//!   then split at dots outside `"…"`, no escapes) gives the same names, the
//!   same leading `.` and the same `^outputs`;
//! - the same holds for any list of names (the input split at `\n`) that
//!   `to_cli` is given directly, as long as Nix can name them at all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::attr_path::{cli_installable, AttrPath};

/// The characters a rendered fragment may hold besides `%XX` escapes.
fn fragment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?\"^".contains(c)
}

/// Percent-decoding as Nix does it before splitting a fragment.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("%XX is ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("%XX is hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Nix's `parseAttrPath`: split at `.` outside double quotes, quotes dropped.
fn nix_split(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '.' if !quoted => names.push(std::mem::take(&mut current)),
            '"' => quoted = !quoted,
            c => current.push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {text:?}");
    names.push(current);
    names
}

/// How Nix reads `cli` (a fragment made by `to_cli`): check it is one a URL
/// can carry, then decode and split it.
fn nix_reads(cli: &str) -> AttrPath {
    let bytes = cli.as_bytes();
    for (i, c) in cli.char_indices() {
        if c == '%' {
            assert!(
                bytes.len() > i + 2
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit(),
                "a bare `%` in {cli:?}"
            );
        } else {
            assert!(fragment_char(c), "{c:?} in the fragment {cli:?}");
        }
    }
    // `^` is always percent-encoded inside names, so the first one starts
    // the outputs.
    let (path, outputs) = match cli.split_once('^') {
        Some((p, o)) => (p, Some(o.to_string())),
        None => (cli, None),
    };
    let decoded = String::from_utf8(percent_decode(path)).expect("decodes to UTF-8");
    let (top_level, rest) = match decoded.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, decoded.as_str()),
    };
    AttrPath {
        top_level,
        names: nix_split(rest),
        outputs,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = AttrPath::parse(text) {
        assert!(!path.names.is_empty());
        assert!(path.names.iter().all(|n| !n.is_empty() && !n.contains('"')));
        let cli = path.to_cli();
        assert_eq!(nix_reads(&cli), path, "{text:?} renders as {cli:?}");
        assert_eq!(cli_installable(text, true), Ok(cli.clone()));
        assert_eq!(
            cli_installable(&format!("flake:x#{text}"), false),
            Ok(format!("flake:x#{cli}"))
        );
    } else {
        assert!(cli_installable(text, true).is_err());
    }
    let _ = cli_installable(text, false);

    // `to_cli` of names given directly (not through the parser).
    let names: Vec<String> = text.split('\n').map(str::to_string).collect();
    if names.iter().all(|n| !n.is_empty() && !n.contains('"')) {
        let path = AttrPath {
            top_level: false,
            names,
            outputs: None,
        };
        let cli = path.to_cli();
        assert_eq!(nix_reads(&cli), path, "{cli:?}");
    }
});
