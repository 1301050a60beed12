//! Data source `nixbuild_builder_status`: the health of a builder, for
//! Terraform `check {}` blocks. Over the administrative connection it asks,
//! as the build user, whether the Nix daemon answers (`nix store ping --store
//! daemon`), and reads the Nix version, free space of the store's file system
//! and builds running; with a client key it also logs in as the build user
//! and opens the store protocol the way a Nix client does (see
//! docs/decisions.md, "How the builder status checks the build user"). A
//! host that cannot be reached is a result (`healthy = false`, with the
//! reason in `problems`), never an error: a check block then warns instead of
//! the plan failing. Read-only: nothing on the host changes.

use crate::context::settings::validate_host_and_ssh;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use super::build_keys::{Protocol, PROTOCOLS};
use super::config::{str_list, StrList, DEFAULT_BUILD_USER};
use super::gc::parse_size;
use crate::context::{policy, Context, Outcome, Purpose, Shared, SshBlock, Target};
use crate::secrets::Secret;
use crate::ssh::settings::check_user;
use crate::ssh::Remote;
use crate::tfschema::{schema_or_diag, Block, Computed, Optional, Required};

/// How long the build user's store protocol may take to answer.
const GREETING_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reports the health of a builder for `check {}` blocks: whether it is reachable, whether its Nix daemon answers the build user, whether a client key can log in as the build user and reach the store protocol, free space of the store's file system, Nix version and builds running, with a one-line reason per problem in `problems`. A host that cannot be reached gives `healthy = false` (the reason in `problems`), not an error, so a check block warns instead of failing the plan; only a changed host key is an error. Changes nothing on the host.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct BuilderStatusState {
    /// Host name or IP address of the builder (e.g. `nixbuild_builder.x.host`).
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    /// The administrative connection, as for `nixbuild_builder` (set `host_key = nixbuild_builder.x.host_key` to check against the builder's pin). It runs the daemon, disk and build checks (as root, or through `sudo -n`).
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<StatusBuildUser>")]
    pub build_user: Value<StatusBuildUser>,
    /// Free space the store's file system must have (a size such as `"10G"`, as in the builder's `gc` block); less is a problem. Default: no minimum.
    #[schemars(with = "Optional<String>")]
    pub min_store_free: Value<String>,

    /// `user@host:port` of the administrative connection.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// `true` when `problems` is empty: reachable, the daemon answers the build user, the build user can log in (when checked) and the store has `min_store_free`.
    #[schemars(with = "Computed<bool>")]
    pub healthy: Value<bool>,
    /// The administrative SSH connection succeeded.
    #[schemars(with = "Computed<bool>")]
    pub reachable: Value<bool>,
    /// The Nix daemon answered `nix store ping --store daemon` run as the build user (so a daemon that is down, or a socket the build user may not open, is `false`).
    #[schemars(with = "Computed<bool>")]
    pub daemon_ok: Value<bool>,
    /// With a `build_user` key: a login as the build user with that key got the store protocol's greeting (`nix-daemon --stdio` for `ssh-ng`, `nix-store --serve` for `ssh`), as a Nix client would; this also works with restricted keys. Null when no key is given.
    #[schemars(with = "Computed<bool>")]
    pub build_user_can_login: Value<bool>,
    /// Free bytes of the file system holding `/nix/store`; null when unknown (unreachable, no store).
    #[schemars(with = "Computed<i64>")]
    pub store_free_bytes: Value<i64>,
    /// Nix version on the builder, e.g. `2.8.0`; null when unknown.
    #[schemars(with = "Computed<String>")]
    pub nix_version: Value<String>,
    /// Builds running now (build users `nixbld*` in use); null when unknown.
    #[schemars(with = "Computed<i64>")]
    pub builds_running: Value<i64>,
    /// What is wrong, one line each (empty when healthy), e.g. `nix daemon: cannot connect to socket …`.
    #[schemars(with = "Computed<Vec<String>>")]
    pub problems: StrList,
}

/// The build user the checks run as and, optionally, a client key to log in as it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct StatusBuildUser {
    /// The build user's name. Default: `nixbuild`.
    #[schemars(with = "Optional<String>")]
    pub name: Value<String>,
    /// The store protocol clients use: `ssh-ng` (default) or `ssh`, as `build_user.protocol` of the builder.
    #[schemars(with = "Optional<String>")]
    pub protocol: Value<String>,
    /// A client private key listed in the builder's `build_user.authorized_keys` (OpenSSH or PEM text). With it (or `private_key_file`) the status logs in as the build user and reports `build_user_can_login`.
    #[schemars(with = "Optional<Secret>")]
    pub private_key: Value<Secret>,
    /// Path of such a client private key file on the machine running Terraform.
    #[schemars(with = "Optional<String>")]
    pub private_key_file: Value<String>,
}

impl StatusBuildUser {
    fn has_key(&self) -> bool {
        self.private_key.is_value() || self.private_key_file.is_value()
    }
}

/// What the checks found; turned into the state at the end.
#[derive(Default)]
struct Findings {
    reachable: bool,
    daemon_ok: bool,
    can_login: Option<bool>,
    free: Option<i64>,
    nix_version: Option<String>,
    builds: Option<i64>,
    problems: Vec<String>,
}

pub struct BuilderStatusDataSource {
    shared: Arc<Shared>,
}

impl BuilderStatusDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn user_name(config: &BuilderStatusState) -> String {
    config
        .build_user
        .as_ref_option()
        .and_then(|u| u.name.as_ref_option().cloned())
        .unwrap_or_else(|| DEFAULT_BUILD_USER.into())
}

fn protocol(config: &BuilderStatusState) -> Protocol {
    config
        .build_user
        .as_ref_option()
        .and_then(|u| u.protocol.as_ref_option())
        .and_then(|p| Protocol::parse(p))
        .unwrap_or(Protocol::SshNg)
}

/// The build user's connection: the administrative one's route and host key,
/// with the build user's name and only its client key.
fn build_user_ssh(config: &BuilderStatusState, user: &StatusBuildUser) -> SshBlock {
    SshBlock {
        user: Value::Value(user_name(config)),
        private_key: user.private_key.clone(),
        private_key_file: user.private_key_file.clone(),
        private_key_passphrase: Value::Null,
        agent: Value::Value(false),
        ..config.ssh.as_ref_option().cloned().unwrap_or_default()
    }
}

/// `key` of a script's report.
fn field(text: &str, key: &str) -> Option<String> {
    crate::host::fields(text).get(key).map(|v| v.to_string())
}

/// The daemon, disk and build checks over the administrative connection.
async fn admin_checks(remote: &Remote, user: &str, found: &mut Findings) {
    let report = Context::within_read_budget(
        remote,
        "builder status",
        remote.run_script(
            "builder status",
            crate::scripts::BUILDER_STATUS,
            &[user],
            None,
            true,
        ),
    )
    .await;
    let text = match report {
        Ok(out) => out.stdout_text(),
        Err(e) => {
            found
                .problems
                .push(format!("status check failed: {}", one_line(&e.to_string())));
            return;
        }
    };
    found.nix_version = field(&text, "nix_version").filter(|v| !v.is_empty());
    found.free = field(&text, "store_free_bytes").and_then(|v| v.parse().ok());
    found.builds = field(&text, "builds_running").and_then(|v| v.parse().ok());
    match field(&text, "daemon").as_deref() {
        Some("ok") => found.daemon_ok = true,
        other => found.problems.push(format!(
            "nix daemon (as build user `{user}`): {}",
            other
                .and_then(|o| o.strip_prefix("fail:"))
                .map(str::trim)
                .unwrap_or("no answer")
        )),
    }
}

/// Log in as the build user and open the store protocol.
async fn login_check(
    configured: &Context,
    config: &BuilderStatusState,
    user: &StatusBuildUser,
    host: &str,
    admin_key: Option<&str>,
    found: &mut Findings,
) {
    let ssh = Value::Value(build_user_ssh(config, user));
    let target = Target::new(host, &ssh).pinned(admin_key);
    let mut quiet = Diagnostics::default();
    let name = user_name(config);
    let remote = match configured.connect(&target, Purpose::Read, &mut quiet).await {
        Outcome::Connected(remote) => remote,
        _ => {
            let reason = quiet
                .errors
                .iter()
                .chain(quiet.warnings.iter())
                .map(|d| policy::cause_of(&d.detail).to_string())
                .next()
                .unwrap_or_else(|| "the connection failed".into());
            found.can_login = Some(false);
            found.problems.push(format!(
                "build user `{name}` cannot log in: {}",
                one_line(&reason)
            ));
            return;
        }
    };
    let protocol = protocol(config);
    let (hello, answer) = protocol.magic();
    let reply = remote
        .exchange(
            "build user store protocol",
            &protocol.command(),
            &hello.to_le_bytes(),
            8,
            GREETING_LIMIT,
        )
        .await;
    match reply {
        Ok(reply) if reply.stdout == answer.to_le_bytes() => found.can_login = Some(true),
        Ok(reply) => {
            found.can_login = Some(false);
            let said = reply.stderr.trim();
            found.problems.push(format!(
                "build user `{name}` logged in, but the {} store protocol did not answer{}",
                protocol.scheme(),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", one_line(said))
                }
            ));
        }
        Err(e) => {
            found.can_login = Some(false);
            found
                .problems
                .push(format!("build user `{name}`: {}", one_line(&e.to_string())));
        }
    }
}

/// Text folded onto one line, at most 300 characters.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

#[async_trait]
impl DataSource for BuilderStatusDataSource {
    type State<'a> = BuilderStatusState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        schema_or_diag::<BuilderStatusState>(diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        validate_host_and_ssh(&config.host, &config.ssh, diags);
        if let Value::Value(user) = &config.build_user {
            let at = |name: &'static str| AttributePath::new("build_user").index(0).attribute(name);
            if let Value::Value(name) = &user.name {
                if let Err(e) = check_user(name) {
                    diags.error("Invalid build user name", e, at("name"));
                }
            }
            if let Value::Value(p) = &user.protocol {
                if Protocol::parse(p).is_none() {
                    diags.error(
                        "Invalid protocol",
                        format!("`{p}` is not one of {}", PROTOCOLS.join(", ")),
                        at("protocol"),
                    );
                }
            }
            if user.private_key.is_value() && user.private_key_file.is_value() {
                diags.error(
                    "Two build user keys",
                    "set either `private_key` or `private_key_file`, not both",
                    at("private_key_file"),
                );
            }
            crate::context::credentials::validate_secret(
                &user.private_key,
                at("private_key"),
                diags,
            );
        }
        if let Value::Value(size) = &config.min_store_free {
            if let Err(e) = parse_size(size) {
                diags.error(
                    "Invalid min_store_free",
                    e,
                    AttributePath::new("min_store_free"),
                );
            }
        }
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        let configured = self.shared.get(diags)?;
        let host = config.host.as_ref_option().cloned().unwrap_or_default();
        let target = Target::new(&host, &config.ssh);
        let endpoint = configured.settings(&target, diags)?.endpoint.to_string();
        let mut found = Findings::default();
        // Purpose::Read: a dead host is a warning there (here: a problem)
        // within seconds; a changed host key stays an error.
        let mut quiet = Diagnostics::default();
        let admin_key = match configured.connect(&target, Purpose::Read, &mut quiet).await {
            Outcome::Connected(remote) => {
                found.reachable = true;
                admin_checks(&remote, &user_name(&config), &mut found).await;
                Some(remote.host_key().openssh_line())
            }
            Outcome::KeepState => {
                let reason = quiet
                    .warnings
                    .first()
                    .map(|d| policy::cause_of(&d.detail).to_string())
                    .unwrap_or_default();
                found
                    .problems
                    .push(format!("unreachable: {}", one_line(&reason)));
                None
            }
            Outcome::Failed | Outcome::Interrupted => {
                diags.errors.extend(quiet.errors);
                return None;
            }
        };
        if let (Some(user), Some(key)) = (
            config.build_user.as_ref_option().filter(|u| u.has_key()),
            admin_key.as_deref(),
        ) {
            login_check(&configured, &config, user, &host, Some(key), &mut found).await;
        }
        // A check that Terraform's stop cut short reports nothing true.
        if crate::interrupt::is_stopped() {
            diags.error(
                "Interrupted",
                format!("{endpoint}: the status checks were interrupted: Terraform asked the provider to stop"),
                AttributePath::new("host"),
            );
            return None;
        }
        if let (Some(free), Value::Value(min)) = (found.free, &config.min_store_free) {
            if let Ok(min) = parse_size(min) {
                if (free as u64) < min {
                    found.problems.push(format!(
                        "low disk: {free} bytes free on the store's file system, less than min_store_free ({min})"
                    ));
                }
            }
        }
        Some(BuilderStatusState {
            id: Value::Value(endpoint),
            healthy: Value::Value(found.problems.is_empty()),
            reachable: Value::Value(found.reachable),
            daemon_ok: Value::Value(found.daemon_ok),
            build_user_can_login: found.can_login.into(),
            store_free_bytes: found.free.into(),
            nix_version: found.nix_version.into(),
            builds_running: found.builds.into(),
            problems: str_list(&found.problems),
            ..config
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_one_line() {
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
        assert_eq!(one_line(&"x ".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn the_build_user_connection_uses_only_its_own_key() {
        let config = BuilderStatusState {
            ssh: Value::Value(SshBlock {
                port: Value::Value(2222),
                agent: Value::Value(true),
                private_key_file: Value::Value("/admin".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let user = StatusBuildUser {
            private_key_file: Value::Value("/client".into()),
            ..Default::default()
        };
        let ssh = build_user_ssh(&config, &user);
        assert_eq!(ssh.user, Value::Value(DEFAULT_BUILD_USER.to_string()));
        assert_eq!(ssh.port, Value::Value(2222));
        assert_eq!(ssh.agent, Value::Value(false));
        assert_eq!(ssh.private_key_file, Value::Value("/client".to_string()));
    }
}
