//! Data source `nixbuild_host`: probe a host over SSH and report its Nix system,
//! Nix version, CPU count and (verified) host key. Read-only: it runs one
//! script that changes nothing on the host.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use crate::provider::Shared;
use crate::schema::{block, computed, required_string, ssh_block};
use crate::ssh::settings::{check_host, validate_block};
use crate::ssh::{Remote, SshBlock, SshError};

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct HostState {
    #[serde(default)]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block", default)]
    pub ssh: Value<SshBlock>,
    #[serde(default)]
    pub id: Value<String>,
    #[serde(default)]
    pub system: Value<String>,
    #[serde(default)]
    pub nix_version: Value<String>,
    #[serde(default)]
    pub cpus: Value<i64>,
    #[serde(default)]
    pub os: Value<String>,
    #[serde(default)]
    pub init_system: Value<String>,
    #[serde(default)]
    pub host_key: Value<String>,
    #[serde(default)]
    pub host_key_base64: Value<String>,
    #[serde(default)]
    pub host_key_fingerprint: Value<String>,
}

/// What `probe.sh` reports about a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    pub system: String,
    pub cpus: i64,
    pub os: String,
    pub init_system: String,
    pub nix_version: Option<String>,
}

impl Probe {
    /// Parse the `key=value` lines of `probe.sh`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| format!("probe output lacks `{key}`"))
        };
        let system = get("system")?.to_string();
        if system.is_empty() || !system.contains('-') {
            return Err(format!("probe reported an odd system `{system}`"));
        }
        let cpus = get("cpus")?
            .parse::<i64>()
            .map_err(|_| "probe reported a non-numeric CPU count".to_string())?;
        Ok(Self {
            system,
            cpus,
            os: get("os_id").unwrap_or_default().to_string(),
            init_system: get("init").unwrap_or("other").to_string(),
            nix_version: get("nix_version")
                .ok()
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        })
    }

    /// Run the probe on a connected host.
    pub async fn run(remote: &Remote) -> Result<Self, SshError> {
        let output = remote
            .run_script("probe host", crate::scripts::PROBE, &[], None, false)
            .await?;
        Self::parse(&output.stdout_text()).map_err(|reason| SshError::Unexpected {
            host: remote.endpoint().to_string(),
            step: "probe host".into(),
            reason,
        })
    }
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

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: block(
                "Probes a host over SSH (verifying its host key) and reports its Nix system, Nix version, CPU count and host key. Runs one read-only script on the host.",
                vec![
                    ("host", required_string("Host name or IP address to connect to.")),
                    ("id", computed(AttributeType::String, "`user@host:port` of the connection.")),
                    ("system", computed(AttributeType::String, "Nix system of the host, derived from `uname -m` and `uname -s`, e.g. `x86_64-linux` or `aarch64-darwin`.")),
                    ("nix_version", computed(AttributeType::String, "Version printed by `nix --version` on the host (e.g. `2.8.0`), or null when Nix is not installed.")),
                    ("cpus", computed(AttributeType::Number, "Number of online CPUs.")),
                    ("os", computed(AttributeType::String, "`ID` from `/etc/os-release` (e.g. `debian`, `nixos`), empty when absent.")),
                    ("init_system", computed(AttributeType::String, "`systemd` when the host runs systemd, else `other`.")),
                    ("host_key", computed(AttributeType::String, "Public host key line the host presented, e.g. `ssh-ed25519 AAAA…`. Pin it in `ssh.host_key` of resources.")),
                    ("host_key_base64", computed(AttributeType::String, "Base64 of `host_key`, as column 8 of Nix's machines file expects.")),
                    ("host_key_fingerprint", computed(AttributeType::String, "SHA256 fingerprint of `host_key`, as `ssh-keygen -l` prints it.")),
                ],
                vec![("ssh", ssh_block(true))],
            ),
        })
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        if let Value::Value(host) = &config.host {
            if let Err(e) = check_host(host) {
                diags.error("Invalid host", e, AttributePath::new("host"));
            }
        }
        if let Value::Value(ssh) = &config.ssh {
            // The passphrase may come from the provider block: checked again at read.
            validate_block(ssh, &AttributePath::new("ssh").index(0), true, diags);
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
        let settings = configured.ssh_settings(&host, &config.ssh, diags)?;
        let remote = match configured.connect(&settings).await {
            Ok(remote) => remote,
            Err(e) => {
                diags.error(
                    "Cannot connect to the host",
                    e.to_string(),
                    AttributePath::new("host"),
                );
                return None;
            }
        };
        let probe = match Probe::run(&remote).await {
            Ok(probe) => probe,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_output() {
        let text = "system=x86_64-linux\nmachine=x86_64\nkernel=Linux\ncpus=8\nos_id=debian\ninit=systemd\nnix_version=2.8.0\n";
        let p = Probe::parse(text).unwrap();
        assert_eq!(p.system, "x86_64-linux");
        assert_eq!(p.cpus, 8);
        assert_eq!(p.os, "debian");
        assert_eq!(p.init_system, "systemd");
        assert_eq!(p.nix_version.as_deref(), Some("2.8.0"));

        let no_nix = Probe::parse("system=aarch64-darwin\ncpus=4\nnix_version=\n").unwrap();
        assert_eq!(no_nix.nix_version, None);
        assert!(Probe::parse("cpus=4\n").is_err());
        assert!(Probe::parse("system=x86_64-linux\ncpus=many\n").is_err());
    }

    /// The real probe script, run by the local /bin/sh, produces parseable output
    /// matching `uname -m`.
    #[test]
    fn probe_script_runs_locally() {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(crate::scripts::PROBE)
            .output()
            .unwrap();
        assert!(out.status.success());
        let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let machine = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap();
        let machine = String::from_utf8_lossy(&machine.stdout).trim().to_string();
        assert!(
            probe.system.starts_with(&machine),
            "{} vs {machine}",
            probe.system
        );
        assert!(probe.cpus >= 1);
    }
}
