//! What clients need to reach this builder (see [`crate::nix::ssh_config`]):
//! the `Host` alias, its `ssh_config` stanza and its `known_hosts` line,
//! derived from the administrative endpoint (`id` is `user@host:port`), the
//! build user and the pinned host key. Unknown until those are known.

use tf_provider::value::Value;

use super::config::BuilderState;
use crate::nix::ssh_config;
use crate::ssh::HostKey;

/// `(host, port)` of an `id` of the form `user@host:port` (`[v6]:port`).
fn endpoint_of(id: &str) -> Option<(String, u16)> {
    let (_, rest) = id.rsplit_once('@')?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// Fill `ssh_host_alias`, `ssh_config` and `known_hosts`.
pub fn derive(state: &mut BuilderState) {
    let endpoint = state.id.as_ref_option().and_then(|id| endpoint_of(id));
    let user = state.build_user_name();
    (state.ssh_host_alias, state.ssh_config) = match (&endpoint, &user) {
        (Some((host, port)), Some(user)) => (
            Value::Value(ssh_config::host_alias(host, *port)),
            Value::Value(ssh_config::stanza(host, *port, user)),
        ),
        (Some((host, port)), None) => (
            Value::Value(ssh_config::host_alias(host, *port)),
            Value::Unknown,
        ),
        _ => (Value::Unknown, Value::Unknown),
    };
    let key = state
        .host_key
        .as_ref_option()
        .and_then(|k| HostKey::parse(k).ok());
    state.known_hosts = match (&endpoint, key) {
        (Some((host, port)), Some(key)) => {
            Value::Value(ssh_config::known_hosts_line(host, *port, &key))
        }
        _ => Value::Unknown,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_of("root@203.0.113.7:2222"),
            Some(("203.0.113.7".into(), 2222))
        );
        assert_eq!(
            endpoint_of("root@[2001:db8::1]:22"),
            Some(("2001:db8::1".into(), 22))
        );
        assert_eq!(endpoint_of("nope"), None);
    }
}
