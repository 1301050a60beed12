//! What one SSH connection needs, resolved and validated: the endpoint, the
//! credentials, the expected host key, the connect timeout and the bastion;
//! plus the pure checks of hosts, users, ports and durations. How Terraform
//! arguments become these settings is the context layer's job
//! (`crate::context::settings`).

use std::time::Duration;

use super::auth::Credentials;
use super::hostkey::HostKey;

/// Default for `connect_timeout`: long enough for a freshly created cloud host to
/// boot and start sshd.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Host, port and user of one SSH endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// A jump host reached first; the target is then reached over direct-tcpip.
#[derive(Clone, Debug)]
pub struct Bastion {
    pub endpoint: Endpoint,
    pub host_key: Option<HostKey>,
}

/// Everything one connection needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    /// The key the host must present; `None` pins the first key seen.
    pub host_key: Option<HostKey>,
    pub connect_timeout: Duration,
    pub bastion: Option<Bastion>,
}

/// Parse a duration string such as `"30s"`, `"5m"` or `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; use e.g. \"30s\", \"5m\" or \"1h30m\"".into());
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); use e.g. \"30s\", \"5m\" or \"1h30m\"")
    })
}

/// Check a host name or address: non-empty, no spaces, no user part, not an
/// option, nothing but the characters of names and addresses.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{host}` contains whitespace"));
    }
    if host.contains('@') {
        return Err(format!(
            "`{host}` contains `@`: give the user in `ssh.user`, not in the host"
        ));
    }
    if host.starts_with('-') {
        return Err(format!("`{host}` must not start with `-`"));
    }
    // Everything else a name or address holds: letters and digits (IDN
    // names too), `.`, `-`, `_`, and `:`, `%`, `[`, `]` of IPv6. The rest
    // (`,`, `*`, `?`, `!`, quotes, `#`…) would make the builder's
    // `Host nixbuild-<host>-<port>` alias an ssh_config pattern or comment.
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%' | '[' | ']')))
    {
        return Err(format!(
            "`{host}` is not a host name or address: `{c}` is in neither (letters, digits, `.`, `-`, `_`; `:` and `%` in IPv6 addresses)"
        ));
    }
    Ok(())
}

/// Check a POSIX user name as sshd accepts it.
pub fn check_user(user: &str) -> Result<(), String> {
    let valid = !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{user}` is not a valid user name (letters, digits, `_`, `-`, `.`; at most 32 characters)"
        ))
    }
}

pub fn check_port(port: i64) -> Result<u16, String> {
    if (1..=65535).contains(&port) {
        Ok(port as u16)
    } else {
        Err(format!("{port} is not a TCP port (1 to 65535)"))
    }
}

/// A login as import IDs spell it: `user@host[:port]`, an IPv6 host in
/// brackets (`root@[2001:db8::1]:2222`) → (user, host, port), checked.
pub fn parse_login(address: &str) -> Result<(String, String, u16), String> {
    let (user, rest) = address
        .split_once('@')
        .ok_or_else(|| format!("`{address}` is not `user@host[:port]`"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => {
            (host.trim_start_matches('[').trim_end_matches(']'), port)
        }
        _ => (rest, "22"),
    };
    let port = port
        .parse::<i64>()
        .map_err(|_| format!("`{port}` is not a port"))?;
    check_user(user)?;
    check_host(host)?;
    let port = check_port(port)?;
    Ok((user.to_string(), host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        assert_eq!(
            parse_login("root@[2001:db8::1]:2222").unwrap(),
            ("root".into(), "2001:db8::1".into(), 2222)
        );
        assert_eq!(
            parse_login("deploy@h.example").unwrap(),
            ("deploy".into(), "h.example".into(), 22)
        );
        assert!(parse_login("h.example:22").is_err());
        assert!(parse_login("root@h:0").is_err());
        assert!(parse_login("root@h:ssh").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration(" 1h30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["", "5", "five minutes", "-5m", "5 parsecs", "m5"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("e.g."), "{bad}: {err}");
        }
    }

    #[test]
    fn hosts_users_ports() {
        assert!(check_host("203.0.113.7").is_ok());
        assert!(check_host("builder-1.example.com").is_ok());
        assert!(check_host("2001:db8::1").is_ok());
        assert!(check_host("[2001:db8::1]").is_ok());
        assert!(check_host("fe80::1%eth0").is_ok());
        assert!(check_host("build_1.internal").is_ok());
        assert!(check_host("bücher.example").is_ok());
        for bad in ["", " ", "a b", "root@h", "-oProxyCommand=x", "h/x", "a\nb"] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
        // Each would turn the ssh_config alias into a pattern, a list or a comment.
        for bad in ["a,b", "h*", "h?", "!h", "h#x", "h\"x", "h'x", "h;x", "h$x"] {
            let err = check_host(bad).unwrap_err();
            assert!(
                err.contains("is not a host name or address"),
                "{bad:?}: {err}"
            );
        }
        assert!(check_user("root").is_ok());
        assert!(check_user("nix_build-1").is_ok());
        for bad in ["", "a;b", "a b", "-x", "ü", &"x".repeat(33)] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_port(22).unwrap(), 22);
        assert!(check_port(0).is_err());
        assert!(check_port(70000).is_err());
        assert!(check_port(-1).is_err());
    }
}
