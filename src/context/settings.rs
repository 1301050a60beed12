//! SSH settings as users write them (the `ssh` block, at provider and resource
//! level), their plan-time validation, and their resolution into the
//! [`Settings`] one connection uses. Every problem is reported against the
//! attribute path it came from, before any connection is made. The SSH layer
//! below only sees the resolved [`Settings`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::secrets::Secret;
use crate::ssh::auth::{decode_key, read_key_file, Credentials, KeyLoadError};
use crate::ssh::settings::{
    check_host, check_port, check_user, parse_duration, Bastion, Endpoint, Settings,
    DEFAULT_CONNECT_TIMEOUT,
};
use crate::ssh::HostKey;
use crate::tfschema::Optional;

/// How to reach the host over SSH. Unset arguments fall back to the provider's `ssh` block; the `bastion_*` arguments go together, from whichever block sets `bastion_host`.
// One shape serves the resources and data sources and the provider, whose
// `ssh` field has its own description and no `host_key`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct SshBlock {
    /// User to log in as. Default: the provider's `ssh.user`, else `root`. Other users run privileged steps through `sudo -n`.
    #[schemars(with = "Optional<String>")]
    pub user: Value<String>,
    /// SSH port, 1 to 65535. Default: the provider's `ssh.port`, else `22`.
    #[schemars(with = "Optional<i64>")]
    pub port: Value<i64>,
    /// Private key (OpenSSH or PEM text). Prefer `private_key_file` or the agent so the key stays out of the configuration.
    #[schemars(with = "Optional<Secret>")]
    pub private_key: Value<Secret>,
    /// Path of a private key file on the machine running Terraform (`~/` is expanded). Checked at plan time.
    #[schemars(with = "Optional<String>")]
    pub private_key_file: Value<String>,
    /// Passphrase of an encrypted private key.
    #[schemars(with = "Optional<Secret>")]
    pub private_key_passphrase: Value<Secret>,
    /// Authenticate with the SSH agent at `SSH_AUTH_SOCK`. Default: `true` when no private key is configured and `SSH_AUTH_SOCK` is set.
    #[schemars(with = "Optional<bool>")]
    pub agent: Value<bool>,
    /// How long to keep retrying the connection while a fresh host boots (a duration such as `"30s"` or `"5m"`). Retries stop at once on a host-key mismatch. Default: `"5m"`.
    #[schemars(with = "Optional<String>")]
    pub connect_timeout: Value<String>,
    /// Jump host to reach the target through (like `ssh -J`); the same credentials are used for both.
    #[schemars(with = "Optional<String>")]
    pub bastion_host: Value<String>,
    /// User on the jump host. Default: the target's user.
    #[schemars(with = "Optional<String>")]
    pub bastion_user: Value<String>,
    /// SSH port of the jump host. Default: `22`.
    #[schemars(with = "Optional<i64>")]
    pub bastion_port: Value<i64>,
    /// Expected public host key line of the jump host. Without it, the first key seen is pinned for the rest of the run.
    #[schemars(with = "Optional<String>")]
    pub bastion_host_key: Value<String>,
    /// Expected public host key line of the host, e.g. the content of `/etc/ssh/ssh_host_ed25519_key.pub`. The connection is refused, and nothing runs on the host, if the host presents another key.
    // Only in resources and data sources: the provider's schema drops it
    // (its configuration is deserialized, never serialized).
    #[schemars(with = "Optional<String>")]
    pub host_key: Value<String>,
}

impl SshBlock {
    /// The `ssh` block an import writes for a login: only what differs from
    /// the defaults (`root`, port 22), so a configuration that leaves them
    /// unset plans no change.
    pub fn for_login(user: &str, port: u16) -> Value<Self> {
        if user == "root" && port == 22 {
            return Value::Null;
        }
        Value::Value(Self {
            user: if user != "root" {
                Value::Value(user.to_string())
            } else {
                Value::Null
            },
            port: if port != 22 {
                Value::Value(i64::from(port))
            } else {
                Value::Null
            },
            ..Default::default()
        })
    }
}

/// Plan-time checks of a resource's top-level `host` and `ssh` block (the
/// passphrase may still come from the provider block: checked again at
/// connect). Unknown values are skipped.
pub fn validate_host_and_ssh(host: &Value<String>, ssh: &Value<SshBlock>, diags: &mut Diagnostics) {
    if let Value::Value(host) = host {
        if let Err(e) = check_host(host) {
            diags.error("Invalid host", e, AttributePath::new("host"));
        }
    }
    if let Value::Value(ssh) = ssh {
        validate_block(ssh, &AttributePath::new("ssh").index(0), true, diags);
    }
}

/// Plan-time checks of one `ssh` block, at `path`. Unknown values are skipped:
/// they are checked again when known. `passphrase_elsewhere` says whether a
/// passphrase may still come from another level (so an encrypted key alone is
/// not yet an error).
pub fn validate_block(
    block: &SshBlock,
    path: &AttributePath,
    passphrase_elsewhere: bool,
    diags: &mut Diagnostics,
) {
    let at = |name: &'static str| path.clone().attribute(name);
    if let Value::Value(user) = &block.user {
        if let Err(e) = check_user(user) {
            diags.error("Invalid SSH user", e, at("user"));
        }
    }
    if let Value::Value(user) = &block.bastion_user {
        if let Err(e) = check_user(user) {
            diags.error("Invalid bastion user", e, at("bastion_user"));
        }
    }
    for (name, port) in [("port", &block.port), ("bastion_port", &block.bastion_port)] {
        if let Value::Value(port) = port {
            if let Err(e) = check_port(*port) {
                diags.error("Invalid port", e, at(name));
            }
        }
    }
    if let Value::Value(host) = &block.bastion_host {
        if let Err(e) = check_host(host) {
            diags.error("Invalid bastion host", e, at("bastion_host"));
        }
    }
    if let Value::Value(timeout) = &block.connect_timeout {
        if let Err(e) = parse_duration(timeout) {
            diags.error("Invalid connect_timeout", e, at("connect_timeout"));
        }
    }
    for (name, key) in [
        ("host_key", &block.host_key),
        ("bastion_host_key", &block.bastion_host_key),
    ] {
        if let Value::Value(key) = key {
            if let Err(e) = HostKey::parse(key) {
                diags.error(
                    "Invalid host key",
                    format!("{e}. Give the host's public key line, e.g. the content of /etc/ssh/ssh_host_ed25519_key.pub"),
                    at(name),
                );
            }
        }
    }
    if block.private_key.is_value() && block.private_key_file.is_value() {
        diags.error(
            "Conflicting private keys",
            "set either `private_key` or `private_key_file`, not both",
            at("private_key_file"),
        );
        return;
    }
    if block.private_key_passphrase.is_unknown() {
        return;
    }
    let passphrase = block
        .private_key_passphrase
        .as_ref_option()
        .map(Secret::expose);
    let loaded = match (&block.private_key, &block.private_key_file) {
        (Value::Value(pem), _) => Some(("private_key", decode_key(pem.expose(), passphrase))),
        (_, Value::Value(file)) => Some((
            "private_key_file",
            read_key_file(file).and_then(|pem| decode_key(&pem, passphrase)),
        )),
        _ => None,
    };
    if let Some((name, Err(e))) = loaded {
        if !(e == KeyLoadError::NeedsPassphrase && passphrase_elsewhere) {
            diags.error("Unusable private key", e.to_string(), at(name));
        }
    }
}

/// The two levels an attribute can come from, most specific first.
pub struct Levels<'a> {
    pub resource: Option<(&'a SshBlock, AttributePath)>,
    pub provider: Option<(&'a SshBlock, AttributePath)>,
}

impl Levels<'_> {
    /// First known value of a field, with the path it came from.
    fn pick<T: Clone>(
        &self,
        field: impl Fn(&SshBlock) -> &Value<T>,
    ) -> Option<(T, AttributePath, &SshBlock)> {
        [&self.resource, &self.provider]
            .into_iter()
            .flatten()
            .find_map(|(block, path)| {
                field(block)
                    .as_ref_option()
                    .map(|v| (v.clone(), path.clone(), *block))
            })
    }
}

/// Resolve the settings for `host` from resource-level and provider-level blocks.
/// Errors go to `diags` with the path of the offending attribute.
pub fn resolve(
    host: &str,
    host_path: AttributePath,
    levels: &Levels<'_>,
    diags: &mut Diagnostics,
) -> Option<Settings> {
    let before = diags.errors.len();
    if let Err(e) = check_host(host) {
        diags.error("Invalid host", e, host_path.clone());
    }
    let user = levels
        .pick(|b| &b.user)
        .map(|(u, _, _)| u)
        .unwrap_or_else(|| "root".into());
    let port = match levels.pick(|b| &b.port) {
        Some((p, path, _)) => check_port(p)
            .map_err(|e| diags.error("Invalid port", e, path.attribute("port")))
            .unwrap_or(22),
        None => 22,
    };
    let connect_timeout = match levels.pick(|b| &b.connect_timeout) {
        Some((t, path, _)) => parse_duration(&t)
            .map_err(|e| {
                diags.error(
                    "Invalid connect_timeout",
                    e,
                    path.attribute("connect_timeout"),
                )
            })
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        None => DEFAULT_CONNECT_TIMEOUT,
    };

    let mut credentials = Credentials::default();
    // The key comes from the most specific level that sets one; its passphrase
    // from the same level first, then from the other.
    let key_level = [&levels.resource, &levels.provider]
        .into_iter()
        .flatten()
        .find(|(b, _)| b.private_key.is_value() || b.private_key_file.is_value());
    if let Some((block, path)) = key_level {
        let passphrase = block
            .private_key_passphrase
            .as_ref_option()
            .cloned()
            .or_else(|| {
                levels
                    .pick(|b| &b.private_key_passphrase)
                    .map(|(p, _, _)| p)
            });
        let (name, pem) = match (&block.private_key, &block.private_key_file) {
            (Value::Value(pem), _) => ("private_key", Ok(pem.expose().to_string())),
            (_, Value::Value(file)) => ("private_key_file", read_key_file(file)),
            _ => unreachable!("key_level has a key"),
        };
        match pem.and_then(|pem| decode_key(&pem, passphrase.as_ref().map(Secret::expose))) {
            Ok(key) => credentials.keys.push(key),
            Err(e) => diags.error(
                "Unusable private key",
                e.to_string(),
                path.clone().attribute(name),
            ),
        }
    }
    credentials.agent = match levels.pick(|b| &b.agent) {
        Some((agent, _, _)) => agent,
        // With no key configured, fall back to the agent as OpenSSH would.
        None => credentials.keys.is_empty() && std::env::var_os("SSH_AUTH_SOCK").is_some(),
    };
    if credentials.keys.is_empty() && !credentials.agent && diags.errors.len() == before {
        diags.error(
            "No SSH credentials",
            "set `private_key`, `private_key_file` or `agent = true` (with SSH_AUTH_SOCK) in an `ssh` block of the resource or the provider",
            levels
                .resource
                .as_ref()
                .or(levels.provider.as_ref())
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| AttributePath::new("ssh")),
        );
    }

    let host_key = match &levels.resource {
        Some((block, path)) => match &block.host_key {
            Value::Value(k) => HostKey::parse(k)
                .map_err(|e| {
                    diags.error(
                        "Invalid host key",
                        e.to_string(),
                        path.clone().attribute("host_key"),
                    )
                })
                .ok(),
            _ => None,
        },
        None => None,
    };

    let bastion = match levels.pick(|b| &b.bastion_host) {
        Some((bastion_host, path, block)) => {
            if let Err(e) = check_host(&bastion_host) {
                diags.error(
                    "Invalid bastion host",
                    e,
                    path.clone().attribute("bastion_host"),
                );
            }
            let port = match block.bastion_port.as_ref_option() {
                Some(p) => check_port(*p)
                    .map_err(|e| {
                        diags.error("Invalid port", e, path.clone().attribute("bastion_port"))
                    })
                    .unwrap_or(22),
                None => 22,
            };
            let host_key = match block.bastion_host_key.as_ref_option() {
                Some(k) => HostKey::parse(k)
                    .map_err(|e| {
                        diags.error(
                            "Invalid host key",
                            e.to_string(),
                            path.clone().attribute("bastion_host_key"),
                        )
                    })
                    .ok(),
                None => None,
            };
            Some(Bastion {
                endpoint: Endpoint {
                    host: bastion_host,
                    port,
                    user: block
                        .bastion_user
                        .as_ref_option()
                        .cloned()
                        .unwrap_or_else(|| user.clone()),
                },
                host_key,
            })
        }
        None => None,
    };

    if diags.errors.len() > before {
        return None;
    }
    Some(Settings {
        endpoint: Endpoint {
            host: host.to_string(),
            port,
            user,
        },
        credentials,
        host_key,
        connect_timeout,
        bastion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> SshBlock {
        SshBlock {
            agent: Value::Value(true),
            ..Default::default()
        }
    }

    use std::time::Duration;

    #[test]
    fn resource_level_overrides_provider_level() {
        let provider = SshBlock {
            user: Value::Value("deploy".into()),
            port: Value::Value(2222),
            connect_timeout: Value::Value("10s".into()),
            ..block()
        };
        let resource = SshBlock {
            port: Value::Value(22),
            ..block()
        };
        let levels = Levels {
            resource: Some((&resource, AttributePath::new("ssh").index(0))),
            provider: Some((&provider, AttributePath::new("ssh").index(0))),
        };
        let mut diags = Diagnostics::default();
        let s = resolve("h", AttributePath::new("host"), &levels, &mut diags).unwrap();
        assert!(diags.errors.is_empty());
        assert_eq!(s.endpoint.user, "deploy");
        assert_eq!(s.endpoint.port, 22);
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert!(s.credentials.agent);
    }

    #[test]
    fn errors_carry_attribute_paths() {
        let bad = SshBlock {
            port: Value::Value(70000),
            connect_timeout: Value::Value("soon".into()),
            private_key_file: Value::Value("/nonexistent/id".into()),
            host_key: Value::Value("nope".into()),
            ..Default::default()
        };
        let mut diags = Diagnostics::default();
        validate_block(&bad, &AttributePath::new("ssh").index(0), false, &mut diags);
        let paths: Vec<String> = diags
            .errors
            .iter()
            .map(|d| d.attribute.to_string())
            .collect();
        for want in ["port", "connect_timeout", "private_key_file", "host_key"] {
            assert!(
                paths.iter().any(|p| p.contains(want)),
                "no error for {want} in {paths:?}"
            );
        }
    }
}
