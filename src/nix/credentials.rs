//! A builder's Nix credentials: `access-tokens` (for `github:`, `gitlab:` and
//! `sourcehut:` flake inputs) and a netrc file (HTTP basic auth for tarball
//! inputs and private substituters). They live in root-only files of their
//! own, included from the managed config, so the world-readable
//! `nixbuild.conf` never holds a secret. Nix skips an `!include` it cannot
//! read, so users other than root (the build user) simply do not see them.
//! Rendering and plan-time checks only: the files are written by the
//! builder resource over stdin.

/// The root-only settings file (`extra-access-tokens`, `netrc-file`).
pub const CREDENTIALS_CONF_PATH: &str = "/etc/nix/nixbuild-credentials.conf";
/// The netrc file Nix is pointed at with `netrc-file`.
pub const NETRC_PATH: &str = "/etc/nix/nixbuild.netrc";
/// The line of the managed config that includes [`CREDENTIALS_CONF_PATH`]
/// (relative to it, as Nix resolves includes; `!` ignores a missing file).
pub const CREDENTIALS_INCLUDE_LINE: &str = "!include nixbuild-credentials.conf";

/// The credentials file for `tokens` (host → token, in order) and whether a
/// netrc file is written. `None` when there is nothing to write.
pub fn render_conf(tokens: &[(String, String)], netrc: bool) -> Option<String> {
    if tokens.is_empty() && !netrc {
        return None;
    }
    let mut out = String::from(
        "# Managed by terraform-provider-nixbuild (nixbuild_builder): Nix credentials,\n\
         # readable by root only. Included from nixbuild.conf.\n",
    );
    if !tokens.is_empty() {
        // `extra-`: access tokens of the user's own nix.conf are kept.
        let pairs: Vec<String> = tokens.iter().map(|(h, t)| format!("{h}={t}")).collect();
        out.push_str(&format!("extra-access-tokens = {}\n", pairs.join(" ")));
    }
    if netrc {
        out.push_str(&format!("netrc-file = {NETRC_PATH}\n"));
    }
    Some(out)
}

/// The netrc file's content as written: always ending in a newline.
pub fn render_netrc(netrc: &str) -> String {
    let mut text = netrc.trim_end().to_string();
    text.push('\n');
    text
}

/// A key of `access_tokens`: the host name Nix looks tokens up by (the
/// flake input's `host`, e.g. `github.com` or `gitlab.example.com`).
pub fn check_token_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host name is empty".into());
    }
    if host.contains("://") {
        return Err(format!(
            "`{host}` is a URL: give the host name only, e.g. `github.com`"
        ));
    }
    let (name, path) = host.split_once('/').unwrap_or((host, ""));
    let name_ok = !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-~/".contains(c));
    if name_ok && path_ok {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a host name such as `github.com` or `gitlab.example.com` (letters, digits, `.`, `-`; no spaces, `=` or `#`)"
        ))
    }
}

/// An access token: one word, since `access-tokens` is a space-separated
/// list and `#` starts a comment in nix.conf.
pub fn check_token(token: &str) -> Result<(), String> {
    crate::secrets::check_single_line(token)?;
    let token = token.trim();
    if token.chars().any(char::is_whitespace) {
        return Err("contains whitespace: Nix separates access tokens by spaces".into());
    }
    if token.contains('#') {
        return Err("contains `#`, which starts a comment in nix.conf".into());
    }
    Ok(())
}

/// A netrc file: text without control characters other than line breaks and
/// tabs, starting with a `machine` or `default` entry.
pub fn check_netrc(netrc: &str) -> Result<(), String> {
    if let Some(c) = netrc
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(format!(
            "contains the control character {}",
            c.escape_default()
        ));
    }
    match netrc.split_whitespace().next() {
        None => Err("is empty: omit it instead".into()),
        Some("machine" | "default") => Ok(()),
        Some(_) => Err(
            "does not start with a `machine HOST login USER password SECRET` (or `default …`) entry"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_only_what_is_set() {
        assert_eq!(render_conf(&[], false), None);
        let tokens = vec![
            ("github.com".to_string(), "ghp_a".to_string()),
            ("gitlab.example.com".to_string(), "OAuth2:b=".to_string()),
        ];
        let both = render_conf(&tokens, true).unwrap();
        assert!(both
            .contains("\nextra-access-tokens = github.com=ghp_a gitlab.example.com=OAuth2:b=\n"));
        assert!(both.contains("\nnetrc-file = /etc/nix/nixbuild.netrc\n"));
        let netrc_only = render_conf(&[], true).unwrap();
        assert!(!netrc_only.contains("access-tokens"));
        assert!(!render_conf(&tokens, false).unwrap().contains("netrc"));
        assert_eq!(
            render_netrc("machine a password b"),
            "machine a password b\n"
        );
        assert_eq!(render_netrc("machine a\n\n"), "machine a\n");
    }

    #[test]
    fn validators() {
        for ok in [
            "github.com",
            "gitlab.example.com",
            "127.0.0.1",
            "git.example.com:8443",
        ] {
            assert!(check_token_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://github.com",
            "git hub.com",
            "a=b",
            "a#b",
            "-x",
            "github.com\n",
        ] {
            assert!(check_token_host(bad).is_err(), "{bad:?}");
        }
        assert!(check_token("ghp_0123abc").is_ok());
        assert!(check_token("ghp_0123abc\n").is_ok());
        for bad in ["", "a b", "a\tb", "a\nb", "a#b"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
        assert!(check_netrc("machine h login u password p\n").is_ok());
        assert!(check_netrc("default\n  login u\n  password p\n").is_ok());
        for bad in ["", "  \n", "login u", "machine h\u{0}"] {
            assert!(check_netrc(bad).is_err(), "{bad:?}");
        }
    }
}
