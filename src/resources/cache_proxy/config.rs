//! `nixbuild_cache_proxy` arguments and attributes: the state type (it is
//! the schema; its doc comments are the docs) and plan-time validation with
//! attribute paths. Nothing here reaches a host.

use crate::context::settings::validate_host_and_ssh;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::context::SshBlock;
use crate::nix::conf::check_public_key;
use crate::resources::timeouts::{self, Defaults, Operation, Timeouts};
use crate::secrets::Secret;
use crate::ssh::settings::{check_host, parse_duration};
use crate::tfschema::{schema_of, Block, BlockList, Computed, Optional, Required};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_MAX_SIZE: &str = "10G";
pub const DEFAULT_NAR_TTL: &str = "30d";
pub const DEFAULT_NARINFO_TTL: &str = "10m";
pub const DEFAULT_NEGATIVE_TTL: &str = "1m";
pub const DEFAULT_PRIORITY: i64 = 30;
/// Less than this cannot hold a single larger NAR.
const MIN_MAX_SIZE: u64 = 64 << 20;
pub const TIMEOUTS: Defaults = Defaults {
    create: Duration::from_secs(15 * 60),
    update: Duration::from_secs(15 * 60),
    delete: Duration::from_secs(5 * 60),
};

/// A binary cache the proxy fetches from, in order: a path missing from (or unreachable at) the first is asked of the next. At least one.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct UpstreamBlock {
    /// Base URL of the cache, `https://…` or `http://…` with an optional path and no query, e.g. `https://cache.nixos.org` or `https://mycache.cachix.org`. Only public caches: the proxy sends no credentials.
    #[schemars(with = "Required<String>")]
    pub url: Value<String>,
    /// The cache's public signing key (`name:base64`). The proxy does not re-sign anything: it is listed in `trusted_public_keys` for the builders that substitute through the proxy.
    #[schemars(with = "Optional<String>")]
    pub public_key: Value<String>,
}

/// Serve the proxy over HTTPS with this certificate (the URL scheme becomes `https`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct TlsBlock {
    /// PEM certificate chain (the server certificate first).
    #[schemars(with = "Required<String>")]
    pub certificate: Value<String>,
    /// PEM private key of the certificate. It travels over the SSH channel's stdin into a root-only 0600 file; it is never on a command line. Like every resource argument it is kept in the Terraform state (marked sensitive): protect the state, or give the key as `private_key_wo`. One of the two is required.
    #[schemars(with = "Optional<Secret>")]
    pub private_key: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): the PEM private key, written like `private_key` to the same root-only 0600 file, but never stored in the state or the plan. A refresh still notices a changed or removed key file, through a keyed fingerprint of its SHA-256 in the private state. A new value alone plans no update (it may differ on every run, e.g. from an ephemeral resource): bump `private_key_wo_version` to write it. Conflicts with `private_key`.
    #[schemars(with = "Optional<Secret>")]
    pub private_key_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `private_key_wo` to the host. Only with `private_key_wo`.
    #[schemars(with = "Optional<i64>")]
    pub private_key_wo_version: Value<i64>,
}

/// Private state: the keyed fingerprint of the TLS key file the last apply
/// wrote, by which a refresh checks a key given as `tls.private_key_wo`
/// (the state does not hold it). A state of a release before this field
/// decodes as null.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ProxyPrivate {
    /// Key of the fingerprint (random per resource).
    pub salt: String,
    /// [`crate::write_only::file_fingerprint`] of `tls.key`; empty: no TLS.
    pub tls_key_digest: String,
}

/// Turns a systemd host into a caching HTTP proxy for Nix binary caches, with the distribution's nginx (installed with the package manager when missing) run as its own service `nixbuild-cache-proxy` (the distribution's `nginx.service` and its sites are left alone). NARs are cached for long (they never change), `.narinfo` answers briefly (a missing one even more briefly), `nix-cache-info` is served by the proxy itself. Builders use `substituter_url` with `trusted_public_keys` in their `nix` block. The nginx config, unit and TLS files are drift-checked: a hand edit plans an update that restores them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct CacheProxyState {
    /// Host name or IP address of the systemd host. Changing it replaces the proxy.
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    #[schemars(with = "BlockList<UpstreamBlock>")]
    pub upstream: Value<Vec<UpstreamBlock>>,
    /// Address and port nginx listens on: `ADDRESS:PORT` (`[IPv6]:PORT` for IPv6) or only `PORT` (all IPv4 addresses). Default: `"0.0.0.0:8080"`.
    #[schemars(with = "Optional<String>")]
    pub listen: Value<String>,
    /// The URL builders reach the proxy at, when it differs from the default `http(s)://<listen address, or host when it listens on all addresses>:<port>` (e.g. behind a load balancer or with a DNS name in the certificate).
    #[schemars(with = "Optional<String>")]
    pub public_url: Value<String>,
    /// Size limit of the cache directory (`/var/cache/nixbuild-cache-proxy`), as nginx sizes: a number with an optional `k`, `m` or `g` suffix, at least `64m`. The least recently used objects go first. Default: `"10G"`.
    #[schemars(with = "Optional<String>")]
    pub max_size: Value<String>,
    /// How long a NAR stays cached since it was last used (a duration such as `"30d"`; NARs are content-addressed, so they never go stale). Default: `"30d"`.
    #[schemars(with = "Optional<String>")]
    pub nar_ttl: Value<String>,
    /// How long a `.narinfo` (and any other non-NAR answer) is served from the cache before it is asked again upstream. When every upstream is unreachable, expired entries are still served. Default: `"10m"`.
    #[schemars(with = "Optional<String>")]
    pub narinfo_ttl: Value<String>,
    /// How long a 404 (a path no upstream has) is cached. Default: `"1m"`.
    #[schemars(with = "Optional<String>")]
    pub negative_ttl: Value<String>,
    /// `Priority` in the proxy's `nix-cache-info`: Nix prefers substituters with lower numbers (cache.nixos.org says 40). 0 to 100. Default: `30`.
    #[schemars(with = "Optional<i64>")]
    pub priority: Value<i64>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<TlsBlock>")]
    pub tls: Value<TlsBlock>,
    /// What destroy does: `keep` (default: nothing, no connection; the host is usually destroyed with it) or `clean` (stop and remove the service, its config and TLS files and the cache directory; the nginx package stays installed).
    #[schemars(with = "Optional<String>")]
    pub on_destroy: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<Timeouts>")]
    pub timeouts: Value<Timeouts>,

    /// `user@host:port` of the administrative connection.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// The host's public key line, pinned on create: every later connection must present it.
    #[schemars(with = "Computed<String>")]
    pub host_key: Value<String>,
    /// Public host key of the bastion (`ssh.bastion_host`, or the provider's), pinned on the first connection through it (or `ssh.bastion_host_key`): later connections through that bastion must present it. Null without a bastion.
    #[schemars(with = "Computed<String>")]
    pub bastion_host_key: Value<String>,
    /// The URL builders substitute from: `public_url`, or the one derived from `listen` and `host`. Use it in `nixbuild_builder`'s `nix.substituters`.
    #[schemars(with = "Computed<String>")]
    pub substituter_url: Value<String>,
    /// The upstreams' `public_key`s, in order: `nix.trusted_public_keys` for the builders (the proxy does not re-sign).
    #[schemars(with = "Computed<Vec<String>>")]
    pub trusted_public_keys: Value<Vec<Value<String>>>,
    /// SHA-256 of the nginx config as found on the host; a hand edit shows up here as drift.
    #[schemars(with = "Computed<String>")]
    pub config_hash: Value<String>,
    /// What the last refresh found out of line on the host (empty when converged). Non-empty drift plans an update that restores the proxy.
    #[schemars(with = "Computed<Vec<String>>")]
    pub drift: Value<Vec<Value<String>>>,
}

/// The resource's schema: [`CacheProxyState`] and its timeouts' defaults.
pub fn schema() -> Result<Schema, String> {
    let mut schema = schema_of::<CacheProxyState>()?;
    timeouts::describe(&mut schema, TIMEOUTS, ["", "", ""]);
    Ok(schema)
}

/// A computed string list attribute with every element known.
pub fn strings(items: &[String]) -> Value<Vec<Value<String>>> {
    Value::Value(items.iter().cloned().map(Value::Value).collect())
}

/// An upstream URL: `http(s)://host[:port][/path]`, nothing nginx would read
/// as syntax (it is pasted into the nginx config).
pub fn check_upstream_url(url: &str) -> Result<Upstream, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "`{url}` is not an http:// or https:// URL (e.g. https://cache.nixos.org)"
        ));
    };
    if let Some(c) = url
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'`;{}$\\?#<>|^".contains(*c))
    {
        return Err(format!(
            "`{url}` contains `{}`: an upstream URL has no query, fragment, quotes or spaces",
            c.escape_default()
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!(
            "`{url}` carries credentials: the proxy only fronts public caches"
        ));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| format!("`{url}` has no valid host[:port]"))?;
    check_host(&host).map_err(|e| format!("`{url}`: {e}"))?;
    let port = match port {
        Some(p) => p,
        None if tls => 443,
        None => 80,
    };
    Ok(Upstream {
        tls,
        host,
        port,
        path: path.to_string(),
    })
}

/// A parsed upstream URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Without a trailing slash; empty for the root.
    pub path: String,
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
        None => None,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// `listen`: `PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
pub fn parse_listen(listen: &str) -> Result<(IpAddr, u16), String> {
    let listen = listen.trim();
    let (addr, port) = if let Ok(port) = listen.parse::<u16>() {
        ("0.0.0.0".to_string(), port)
    } else {
        match split_host_port(listen) {
            Some((addr, Some(port))) => (addr, port),
            _ => {
                return Err(format!(
                "`{listen}` is not `ADDRESS:PORT`, `[IPv6]:PORT` or `PORT` (e.g. \"0.0.0.0:8080\")"
            ))
            }
        }
    };
    if port == 0 {
        return Err(format!("`{listen}`: the port must be 1 to 65535"));
    }
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("`{listen}`: `{addr}` is not an IP address (nginx needs an address of the host, not a name)")
    })?;
    Ok((addr, port))
}

/// An nginx size (`10G`, `512m`, `1048576`), in bytes.
pub fn parse_size(size: &str) -> Result<u64, String> {
    let size = size.trim();
    let (digits, unit) = match size.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&size[..i], c.to_ascii_lowercase()),
        _ => (size, 'b'),
    };
    let shift = match unit {
        'b' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => {
            return Err(format!(
                "`{size}`: the unit must be k, m or g (e.g. \"10G\")"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{size}` is not a size such as \"10G\" or \"512m\""))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{size}` is too large"))?;
    if bytes < MIN_MAX_SIZE {
        return Err(format!(
            "`{size}` is less than 64m: the cache could not hold one larger NAR"
        ));
    }
    Ok(bytes)
}

/// A duration for nginx, in whole seconds (at least one).
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let d = parse_duration(text)?;
    if d.as_secs() < 1 {
        return Err(format!("`{text}` is shorter than one second"));
    }
    Ok(d.as_secs())
}

/// PEM blocks of the given labels, each decoding to DER (a SEQUENCE).
fn check_pem(text: &str, labels: &[&str], what: &str) -> Result<usize, String> {
    let mut count = 0;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            return Err(format!(
                "{what} is not PEM: expected `-----BEGIN …-----`, found `{}`",
                truncate(line)
            ));
        };
        if !labels.contains(&label) {
            return Err(format!(
                "{what}: a PEM `{label}` block where {} is expected",
                labels.join(" or ")
            ));
        }
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                Some(l) if l == end => break,
                Some(l) => body.push_str(l),
                None => return Err(format!("{what}: the `{label}` block has no END line")),
            }
        }
        match base64::engine::general_purpose::STANDARD.decode(&body) {
            Ok(der) if der.first() == Some(&0x30) && der.len() > 16 => count += 1,
            _ => return Err(format!("{what}: the `{label}` block is not base64 of DER")),
        }
    }
    if count == 0 {
        return Err(format!("{what} is empty"));
    }
    Ok(count)
}

fn truncate(line: &str) -> String {
    line.chars().take(40).collect()
}

pub fn check_certificate(pem: &str) -> Result<(), String> {
    check_pem(pem, &["CERTIFICATE"], "the certificate").map(|_| ())
}

pub fn check_private_key(pem: &str) -> Result<(), String> {
    match check_pem(
        pem,
        &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
        "the private key",
    )? {
        1 => Ok(()),
        n => Err(format!("the private key holds {n} keys; give exactly one")),
    }
}

/// Plan-time checks, each error at its attribute path. Unknown values wait.
pub fn validate(config: &CacheProxyState, diags: &mut Diagnostics) {
    let at = AttributePath::new;
    validate_host_and_ssh(&config.host, &config.ssh, diags);
    match &config.upstream {
        Value::Value(blocks) if blocks.is_empty() => diags.error(
            "No upstream cache",
            "add at least one `upstream` block (e.g. url = \"https://cache.nixos.org\")",
            at("upstream"),
        ),
        Value::Null => diags.error(
            "No upstream cache",
            "add at least one `upstream` block (e.g. url = \"https://cache.nixos.org\")",
            at("upstream"),
        ),
        Value::Value(blocks) => {
            let mut seen: Vec<&str> = Vec::new();
            for (i, up) in blocks.iter().enumerate() {
                let path = |name: &'static str| at("upstream").index(i as i64).attribute(name);
                if let Value::Value(url) = &up.url {
                    if let Err(e) = check_upstream_url(url) {
                        diags.error("Invalid upstream URL", e, path("url"));
                    } else if seen.contains(&url.trim_end_matches('/')) {
                        diags.error(
                            "Duplicate upstream URL",
                            format!("`{url}` is listed twice"),
                            path("url"),
                        );
                    }
                    seen.push(url.trim_end_matches('/'));
                }
                if let Value::Value(key) = &up.public_key {
                    if let Err(e) = check_public_key(key) {
                        diags.error("Invalid upstream public key", e, path("public_key"));
                    }
                }
            }
        }
        Value::Unknown => {}
    }
    if let Value::Value(listen) = &config.listen {
        if let Err(e) = parse_listen(listen) {
            diags.error("Invalid listen address", e, at("listen"));
        }
    }
    if let Value::Value(url) = &config.public_url {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && check_upstream_url(url).is_ok();
        if !ok {
            diags.error(
                "Invalid public_url",
                format!("`{url}` is not an http(s)://host[:port][/path] URL"),
                at("public_url"),
            );
        }
    }
    if let Value::Value(size) = &config.max_size {
        if let Err(e) = parse_size(size) {
            diags.error("Invalid max_size", e, at("max_size"));
        }
    }
    for (name, value) in [
        ("nar_ttl", &config.nar_ttl),
        ("narinfo_ttl", &config.narinfo_ttl),
        ("negative_ttl", &config.negative_ttl),
    ] {
        if let Value::Value(text) = value {
            if let Err(e) = parse_ttl(text) {
                diags.error(format!("Invalid {name}"), e, at(name));
            }
        }
    }
    if let Value::Value(p) = config.priority {
        if !(0..=100).contains(&p) {
            diags.error(
                "Invalid priority",
                format!("{p} is out of range: use 0 to 100"),
                at("priority"),
            );
        }
    }
    if let Value::Value(tls) = &config.tls {
        let path = |name: &'static str| at("tls").index(0).attribute(name);
        if let Value::Value(cert) = &tls.certificate {
            if let Err(e) = check_certificate(cert) {
                diags.error("Invalid TLS certificate", e, path("certificate"));
            }
        }
        for (key, name) in [
            (&tls.private_key, "private_key"),
            (&tls.private_key_wo, "private_key_wo"),
        ] {
            if let Value::Value(key) = key {
                if let Err(e) = check_private_key(key.expose()) {
                    // The error never quotes the key.
                    let e = if e.contains("found `") {
                        "the private key is not PEM (expected `-----BEGIN PRIVATE KEY-----`)".into()
                    } else {
                        e
                    };
                    diags.error("Invalid TLS private key", e, path(name));
                }
            }
        }
        if tls.private_key.is_null() && tls.private_key_wo.is_null() {
            diags.error(
                "Missing TLS private key",
                "`tls.private_key` (or its write-only twin `tls.private_key_wo`) is required",
                path("private_key"),
            );
        }
        crate::write_only::Pair {
            name: "private_key",
            plain: &tls.private_key,
            write_only: &tls.private_key_wo,
            version: &tls.private_key_wo_version,
        }
        .validate(|name| at("tls").index(0).attribute(name), diags);
    }
    if let Value::Value(mode) = &config.on_destroy {
        if mode != "keep" && mode != "clean" {
            diags.error(
                "Invalid on_destroy",
                format!("`{mode}`: use \"keep\" or \"clean\""),
                at("on_destroy"),
            );
        }
    }
    timeouts::validate(&config.timeouts, diags);
}

impl CacheProxyState {
    pub fn on_destroy_clean(&self) -> bool {
        self.on_destroy
            .as_ref_option()
            .is_some_and(|v| v == "clean")
    }
    pub fn timeout(&self, op: Operation) -> Duration {
        timeouts::get(&self.timeouts, op, TIMEOUTS)
    }
    fn string_or(value: &Value<String>, default: &str) -> Option<String> {
        match value {
            Value::Unknown => None,
            Value::Null => Some(default.to_string()),
            Value::Value(v) => Some(v.clone()),
        }
    }
    pub fn listen_text(&self) -> Option<String> {
        Self::string_or(&self.listen, DEFAULT_LISTEN)
    }
    pub fn tls_enabled(&self) -> Option<bool> {
        match &self.tls {
            Value::Unknown => None,
            tls => Some(tls.is_value()),
        }
    }

    /// `public_url`, or `http(s)://<listen address or host>:<port>`.
    pub fn substituter_url(&self) -> Value<String> {
        match &self.public_url {
            Value::Value(url) => return Value::Value(url.trim_end_matches('/').to_string()),
            Value::Unknown => return Value::Unknown,
            Value::Null => {}
        }
        let (Some(listen), Some(tls), Value::Value(host)) =
            (self.listen_text(), self.tls_enabled(), &self.host)
        else {
            return Value::Unknown;
        };
        let Ok((addr, port)) = parse_listen(&listen) else {
            return Value::Unknown;
        };
        let name = if addr.is_unspecified() {
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        } else {
            match addr {
                IpAddr::V6(a) => format!("[{a}]"),
                IpAddr::V4(a) => a.to_string(),
            }
        };
        let scheme = if tls { "https" } else { "http" };
        Value::Value(format!("{scheme}://{name}:{port}"))
    }

    /// The upstreams' public keys, in order; unknown while any is.
    pub fn upstream_keys(&self) -> Value<Vec<Value<String>>> {
        match &self.upstream {
            Value::Unknown => Value::Unknown,
            Value::Null => Value::Value(vec![]),
            Value::Value(blocks) => {
                if blocks.iter().any(|b| b.public_key.is_unknown()) {
                    return Value::Unknown;
                }
                Value::Value(
                    blocks
                        .iter()
                        .filter_map(|b| b.public_key.as_ref_option().cloned())
                        .map(Value::Value)
                        .collect(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let up = check_upstream_url("https://cache.nixos.org").unwrap();
        assert_eq!(
            (up.tls, up.host.as_str(), up.port, up.path.as_str()),
            (true, "cache.nixos.org", 443, "")
        );
        let up = check_upstream_url("http://127.0.0.1:8750/sub/dir/").unwrap();
        assert_eq!((up.port, up.path.as_str()), (8750, "/sub/dir"));
        let up = check_upstream_url("http://[::1]:81").unwrap();
        assert_eq!((up.host.as_str(), up.port), ("::1", 81));
        for bad in [
            "ftp://x",
            "cache.nixos.org",
            "https://",
            "https://a b",
            "https://x/;evil",
            "https://x/{",
            "https://x?q=1",
            "https://u:p@x",
            "https://x:0",
            "https://x:99999",
            "https://x\"y",
        ] {
            assert!(check_upstream_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("8080").unwrap().1, 8080);
        assert_eq!(
            parse_listen("127.0.0.20:9000").unwrap().0.to_string(),
            "127.0.0.20"
        );
        assert!(parse_listen("[::]:443").unwrap().0.is_unspecified());
        for bad in [
            "",
            "0",
            "host:80",
            "1.2.3.4",
            "1.2.3.4:0",
            "1.2.3.4:70000",
            "[::1]",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_ttls() {
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        for bad in ["", "10T", "G", "-1G", "1m", "1.5G", "99999999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ttl("10m").unwrap(), 600);
        assert!(parse_ttl("100ms").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn pem_checks() {
        let der = base64::engine::general_purpose::STANDARD.encode([0x30u8; 40]);
        let cert = format!("-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n");
        assert!(check_certificate(&cert).is_ok());
        assert!(check_certificate("hello").is_err());
        assert!(check_certificate(&cert.replace("CERTIFICATE", "PRIVATE KEY")).is_err());
        assert!(check_certificate(&cert.replace("-----END CERTIFICATE-----", "")).is_err());
        let key = cert.replace("CERTIFICATE", "PRIVATE KEY");
        assert!(check_private_key(&key).is_ok());
        assert!(check_private_key(&format!("{key}{key}")).is_err());
        assert!(check_private_key(&cert).is_err());
    }

    #[test]
    fn substituter_url_follows_listen_and_tls() {
        let mut s = CacheProxyState {
            host: Value::Value("203.0.113.7".into()),
            ..Default::default()
        };
        assert_eq!(
            s.substituter_url(),
            Value::Value("http://203.0.113.7:8080".into())
        );
        s.listen = Value::Value("127.0.0.20:9000".into());
        s.tls = Value::Value(TlsBlock::default());
        assert_eq!(
            s.substituter_url(),
            Value::Value("https://127.0.0.20:9000".into())
        );
        s.public_url = Value::Value("https://cache.example.com/".into());
        assert_eq!(
            s.substituter_url(),
            Value::Value("https://cache.example.com".into())
        );
    }
}
