//! Data source `nixbuild_host`: probe a host over SSH and report its Nix system,
//! Nix version, CPU count and (verified) host key. Read-only: it runs one
//! script that changes nothing on the host.

use crate::context::settings::validate_host_and_ssh;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use crate::context::{Context, Purpose, Shared, SshBlock, Target};
use crate::host::Probe;
use crate::tfschema::{schema_or_diag, Block, Computed, Required};

/// Probes a host over SSH (verifying its host key) and reports its Nix system, Nix version, CPU count and host key. Runs one read-only script on the host.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct HostState {
    /// Host name or IP address to connect to.
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    /// `user@host:port` of the connection.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// Nix system of the host, derived from `uname -m` and `uname -s`, e.g. `x86_64-linux` or `aarch64-darwin`.
    #[schemars(with = "Computed<String>")]
    pub system: Value<String>,
    /// Version printed by `nix --version` on the host (e.g. `2.8.0`), or null when Nix is not installed.
    #[schemars(with = "Computed<String>")]
    pub nix_version: Value<String>,
    /// Number of online CPUs.
    #[schemars(with = "Computed<i64>")]
    pub cpus: Value<i64>,
    /// `ID` from `/etc/os-release` (e.g. `debian`, `nixos`), empty when absent.
    #[schemars(with = "Computed<String>")]
    pub os: Value<String>,
    /// `systemd` when the host runs systemd, else `other`.
    #[schemars(with = "Computed<String>")]
    pub init_system: Value<String>,
    /// Public host key line the host presented, e.g. `ssh-ed25519 AAAA…`. Pin it in `ssh.host_key` of resources.
    #[schemars(with = "Computed<String>")]
    pub host_key: Value<String>,
    /// Base64 of `host_key`, as column 8 of Nix's machines file expects.
    #[schemars(with = "Computed<String>")]
    pub host_key_base64: Value<String>,
    /// SHA256 fingerprint of `host_key`, as `ssh-keygen -l` prints it.
    #[schemars(with = "Computed<String>")]
    pub host_key_fingerprint: Value<String>,
}

pub struct HostDataSource {
    shared: Arc<Shared>,
}

impl HostDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl DataSource for HostDataSource {
    type State<'a> = HostState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        schema_or_diag::<HostState>(diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        validate_host_and_ssh(&config.host, &config.ssh, diags);
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
        let remote = configured
            .connect_or_fail(&Target::new(&host, &config.ssh), Purpose::DataSource, diags)
            .await?;
        let probed = Context::within_read_budget(&remote, "probe host", Probe::run(&remote)).await;
        let probe = match probed {
            Ok(probe) => probe,
            Err(e) if e.is_interrupted() => {
                crate::context::interrupted(diags, &e, AttributePath::new("host"));
                return None;
            }
            Err(e) => {
                diags.error(
                    "Probing the host failed",
                    e.to_string(),
                    AttributePath::new("host"),
                );
                return None;
            }
        };
        let key = remote.host_key();
        Some(HostState {
            id: Value::Value(remote.endpoint().to_string()),
            system: Value::Value(probe.system),
            nix_version: probe.nix_version.into(),
            cpus: Value::Value(probe.cpus),
            os: Value::Value(probe.os),
            init_system: Value::Value(probe.init_system),
            host_key: Value::Value(key.openssh_line()),
            host_key_base64: Value::Value(key.base64_line()),
            host_key_fingerprint: Value::Value(key.fingerprint()),
            ..config
        })
    }
}
