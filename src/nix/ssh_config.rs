//! What a Nix client's `ssh` needs to reach a builder on any port with strict
//! host-key checking: an `ssh_config` stanza under a `Host` alias and the
//! matching `known_hosts` line. Nix hands the machines file's host to `ssh` as
//! a name (no port), so machine lines name the alias and the stanza supplies
//! `HostName`, `Port` and `User`. `HostKeyAlias` is the alias itself, so the
//! key is looked up under one name whichever way ssh is reached (through the
//! written `known_hosts`, or through the file Nix writes from column 8 of the
//! machines file, which it keys by the machine line's host). Rendering and
//! checking only; nothing here writes files.

use crate::ssh::settings::check_host;
use crate::ssh::HostKey;

/// Keepalives: a dead builder is noticed within a minute instead of a build
/// hanging on a half-open connection.
const SERVER_ALIVE_INTERVAL: u32 = 15;
const SERVER_ALIVE_COUNT_MAX: u32 = 4;

/// First line of a written `ssh_config` file.
pub const FILE_HEADER: &str =
    "# Written by nixbuild_machines_file: one stanza per builder. Changes are overwritten.\n";

/// The `Host` alias of a builder: `nixbuild-<host>-<port>` (an IPv6 address
/// with `-` for `:`), a name that resolves nowhere, so a missing stanza fails
/// loudly instead of reaching port 22.
pub fn host_alias(host: &str, port: u16) -> String {
    let host: String = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .chars()
        .map(|c| if c == ':' || c == '%' { '-' } else { c })
        .collect();
    format!("nixbuild-{host}-{port}")
}

/// How OpenSSH names `host` on `port` in `known_hosts`.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The stanza of one builder, without client-side paths.
pub fn stanza(host: &str, port: u16, user: &str) -> String {
    let alias = host_alias(host, port);
    format!(
        "Host {alias}\n  HostName {host}\n  Port {port}\n  User {user}\n  HostKeyAlias {alias}\n  StrictHostKeyChecking yes\n  ServerAliveInterval {SERVER_ALIVE_INTERVAL}\n  ServerAliveCountMax {SERVER_ALIVE_COUNT_MAX}\n"
    )
}

/// The `known_hosts` line of a builder: `[host]:port` (or `host` on 22) and
/// the alias, then the key.
pub fn known_hosts_line(host: &str, port: u16, key: &HostKey) -> String {
    format!(
        "{},{} {}\n",
        known_hosts_name(host, port),
        host_alias(host, port),
        key.openssh_line()
    )
}

/// An ssh_config value, double-quoted when it holds a space.
fn config_value(value: &str) -> String {
    if value.contains(' ') {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// The stanza with the client's paths added after its `Host` line: the
/// identity file Nix logs in with and the `known_hosts` file to verify
/// against.
pub fn with_client_paths(
    stanza: &str,
    identity_file: Option<&str>,
    known_hosts_file: Option<&str>,
) -> String {
    let mut extra = String::new();
    if let Some(path) = identity_file {
        extra.push_str(&format!(
            "  IdentityFile {}\n  IdentitiesOnly yes\n",
            config_value(path)
        ));
    }
    if let Some(path) = known_hosts_file {
        extra.push_str(&format!("  UserKnownHostsFile {}\n", config_value(path)));
    }
    let stanza = if stanza.ends_with('\n') {
        stanza.to_string()
    } else {
        format!("{stanza}\n")
    };
    // After the `Host` line: the first line that is not blank, as
    // check_stanza reads it (before it, the lines would belong to the
    // stanza above, or to every host).
    let mut end = 0;
    for line in stanza.split_inclusive('\n') {
        end += line.len();
        if !line.trim().is_empty() {
            break;
        }
    }
    format!("{}{extra}{}", &stanza[..end], &stanza[end..])
}

/// Check a stanza (one `Host` line naming one alias, then `Keyword value`
/// lines) and return its alias.
pub fn check_stanza(stanza: &str) -> Result<String, String> {
    if let Some(c) = stanza.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(format!(
            "the stanza contains the control character {c:?}; use the `ssh_config` attribute of nixbuild_builder"
        ));
    }
    let mut lines = stanza.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default().trim();
    let alias = match first.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["Host", alias] => alias.to_string(),
        _ => {
            return Err(format!(
                "the stanza must start with `Host <alias>` naming one alias, found `{first}`; use the `ssh_config` attribute of nixbuild_builder"
            ))
        }
    };
    if alias.contains(['*', '?', '!', ',']) {
        return Err(format!(
            "`Host {alias}` is a pattern; the machine line needs one alias"
        ));
    }
    check_host(&alias).map_err(|e| format!("the alias: {e}"))?;
    for line in lines {
        let line = line.trim();
        let keyword = line.split_whitespace().next().unwrap_or_default();
        if line.starts_with('#') {
            continue;
        }
        if keyword.eq_ignore_ascii_case("host") || keyword.eq_ignore_ascii_case("match") {
            return Err(format!(
                "`{line}` starts another stanza; give one builder's stanza per machine"
            ));
        }
        if !keyword.chars().all(|c| c.is_ascii_alphanumeric()) || keyword == line {
            return Err(format!(
                "`{line}` is not an ssh_config `Keyword value` line"
            ));
        }
    }
    Ok(alias)
}

/// Check a `known_hosts` line (`names key-type base64 [comment]`).
pub fn check_known_hosts_line(line: &str) -> Result<(), String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the line contains the control character {c:?}; give one known_hosts line"
        ));
    }
    let Some((names, key)) = line.trim().split_once(' ') else {
        return Err(format!(
            "`{line}` is not a known_hosts line (`[host]:port key-type base64`)"
        ));
    };
    if names.starts_with('@') || names.is_empty() {
        return Err(format!(
            "`{names}`: markers such as @cert-authority or @revoked are not builder keys"
        ));
    }
    HostKey::parse(key)
        .map(|_| ())
        .map_err(|e| format!("the key of `{names}`: {e}"))
}

/// Put `alias` in place of the host of a builder URI, keeping scheme, user
/// and query: `ssh-ng://nixbuild@203.0.113.7?x=y` → `ssh-ng://nixbuild@alias?x=y`.
pub fn uri_with_alias(uri: &str, alias: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let user = authority.rsplit_once('@').map(|(u, _)| u);
    let mut out = format!("{scheme}://");
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(alias);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH/3JUzkxbJDZWSJ40lPEzc/u/nMQGw1/wdJQORJAqj/";

    #[test]
    fn aliases_and_known_hosts_names() {
        assert_eq!(host_alias("203.0.113.7", 2222), "nixbuild-203.0.113.7-2222");
        assert_eq!(host_alias("2001:db8::1", 22), "nixbuild-2001-db8--1-22");
        assert_eq!(known_hosts_name("h", 22), "h");
        assert_eq!(known_hosts_name("h", 2222), "[h]:2222");
        let key = HostKey::parse(KEY).unwrap();
        assert_eq!(
            known_hosts_line("h", 2222, &key),
            format!("[h]:2222,nixbuild-h-2222 {KEY}\n")
        );
        check_known_hosts_line(&known_hosts_line("h", 2222, &key)).unwrap();
    }

    #[test]
    fn stanza_round_trip_and_client_paths() {
        let s = stanza("203.0.113.7", 2222, "nixbuild");
        assert_eq!(check_stanza(&s).unwrap(), "nixbuild-203.0.113.7-2222");
        assert!(
            s.contains("  Port 2222\n") && s.contains("HostKeyAlias nixbuild-203.0.113.7-2222")
        );
        let full = with_client_paths(&s, Some("/root/.ssh/id builder"), Some("/etc/nix/kh"));
        assert!(full.starts_with(
            "Host nixbuild-203.0.113.7-2222\n  IdentityFile \"/root/.ssh/id builder\"\n  IdentitiesOnly yes\n  UserKnownHostsFile /etc/nix/kh\n  HostName"
        ));
        assert_eq!(check_stanza(&full).unwrap(), "nixbuild-203.0.113.7-2222");
    }

    /// Found by the ssh_config fuzz target: with blank lines before `Host`,
    /// the client's paths went before the `Host` line (into the stanza above
    /// it in the written file, or to every host).
    #[test]
    fn client_paths_follow_the_host_line_after_blank_lines() {
        let s = "\n\n  Host ll\n  Port 2222\n";
        assert_eq!(check_stanza(s).unwrap(), "ll");
        let full = with_client_paths(s, Some("/k"), Some("/kh"));
        assert_eq!(
            full,
            "\n\n  Host ll\n  IdentityFile /k\n  IdentitiesOnly yes\n  UserKnownHostsFile /kh\n  Port 2222\n"
        );
        assert_eq!(check_stanza(&full).unwrap(), "ll");
    }

    #[test]
    fn bad_stanzas_and_lines() {
        for bad in [
            "",
            "HostName x\n",
            "Host a b\n",
            "Host *\n",
            "Host a\nHost b\n",
            "Host a\n  Match all\n",
            "Host a\n  Port\n",
            "Host a\r\n",
        ] {
            assert!(check_stanza(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "h",
            "h ssh-ed25519 nope",
            &format!("@revoked h {KEY}"),
            &format!("h {KEY}\nx {KEY}"),
        ] {
            assert!(check_known_hosts_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uris_get_the_alias() {
        assert_eq!(
            uri_with_alias("ssh-ng://nixbuild@203.0.113.7?compress=true", "a"),
            "ssh-ng://nixbuild@a?compress=true"
        );
        assert_eq!(uri_with_alias("ssh://h", "a"), "ssh://a");
    }
}
