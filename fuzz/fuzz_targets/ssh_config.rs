//! ssh_config stanzas and known_hosts lines given by the user
//! (`nixbuild_builder.ssh_config`, `nixbuild_machines_file` inputs).
//!
//! Properties: the checks never panic; a stanza that passes keeps passing,
//! with the same alias, once the client's paths are added; a stanza made by
//! `stanza()` for any host and user the provider accepts passes with the alias `host_alias` gives; `uri_with_alias` keeps scheme, user and query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::ssh_config::{
    check_known_hosts_line, check_stanza, host_alias, known_hosts_name, stanza, uri_with_alias,
    with_client_paths,
};
use terraform_provider_nixbuild::ssh::settings::{check_host, check_user};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(alias) = check_stanza(text) {
        for (identity, known_hosts) in [
            (
                Some("/home/ci/.ssh/id_ed25519"),
                Some("/var/lib/x y/known_hosts"),
            ),
            (None, None),
        ] {
            let with = with_client_paths(text, identity, known_hosts);
            assert_eq!(check_stanza(&with), Ok(alias.clone()), "{with:?}");
            let host_line = with.lines().find(|l| !l.trim().is_empty()).unwrap();
            assert_eq!(
                host_line.split_whitespace().nth(1),
                Some(alias.as_str()),
                "{with:?}"
            );
        }
    }
    let _ = check_known_hosts_line(text);

    let port = data.first().map_or(22, |b| u16::from(*b) * 257);
    let mut words = text.splitn(2, '\n');
    let (host, user) = (words.next().unwrap_or(""), words.next().unwrap_or("root"));
    let _ = known_hosts_name(host, port);
    // Every host the provider accepts gives a valid stanza (check_host
    // refuses `,*?!` and the like, which would make the alias a pattern).
    if check_host(host).is_ok() && check_user(user).is_ok() {
        let s = stanza(host, port, user);
        assert_eq!(check_stanza(&s), Ok(host_alias(host, port)), "{s:?}");
    }

    let uri = uri_with_alias(text, "nixbuild-alias-22");
    if let Some((scheme, _)) = text.split_once("://") {
        assert!(uri.starts_with(&format!("{scheme}://")), "{uri:?}");
        assert!(uri.contains("nixbuild-alias-22"));
    } else {
        assert_eq!(uri, text);
    }
});
