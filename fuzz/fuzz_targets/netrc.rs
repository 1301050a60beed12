//! netrc files (the user's `netrc_file`, any text): the first line is the
//! host to look up, the rest the file. No panic; a found password is a
//! token of the file; and a `machine` entry put first wins for its host
//! (when the file starts a new entry: other tokens would continue ours).
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::cache::http::{netrc_lookup, HttpAuth};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (host, text) = input.split_once('\n').unwrap_or((input, ""));
    match netrc_lookup(text, host) {
        None | Some(HttpAuth::Basic { .. }) => {}
        Some(other) => panic!("netrc gave {other:?}"),
    }
    if let Some(HttpAuth::Basic { user, password }) = netrc_lookup(text, host) {
        assert!(text.split_whitespace().any(|t| t == password));
        assert!(user.is_empty() || text.split_whitespace().any(|t| t == user));
    }
    let first_token = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .next();
    let starts_entry = matches!(first_token, None | Some("machine" | "default"));
    if starts_entry && !host.is_empty() && !host.contains(char::is_whitespace) {
        let first = format!("machine {host} login fuzz-user password fuzz-pass\n{text}");
        assert_eq!(
            netrc_lookup(&first, host),
            Some(HttpAuth::Basic {
                user: "fuzz-user".into(),
                password: "fuzz-pass".into()
            }),
            "{first:?}"
        );
    }
});
