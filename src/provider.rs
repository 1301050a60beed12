//! The `nixbuild` provider: its schema, plan-time validation of the provider
//! block, and the state shared by every resource and data source (the resolved
//! configuration and the SSH connection pool). Provider configuration is never
//! written to the Terraform state, so secrets given here stay out of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, DynamicDataSource, DynamicResource, Provider};

use crate::resources::builder::BuilderResource;
use crate::resources::host::HostDataSource;
use crate::schema::{block, optional_number, optional_string, sensitive, ssh_block};
use crate::ssh::pool::DEFAULT_MAX_SESSIONS_PER_HOST;
use crate::ssh::settings::{validate_block, Levels};
use crate::ssh::{Pool, Remote, Settings, SshBlock, SshError};

/// The public Cachix API; tests point `cachix.api_url` at a local server.
pub const DEFAULT_CACHIX_API_URL: &str = "https://cachix.org/api/v1";

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct CachixBlock {
    #[serde(default)]
    pub auth_token: Value<String>,
    #[serde(default)]
    pub signing_key: Value<String>,
    #[serde(default)]
    pub api_url: Value<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ProviderConfig {
    #[serde(with = "crate::schema::optional_block", default)]
    pub ssh: Value<SshBlock>,
    #[serde(with = "crate::schema::optional_block", default)]
    pub cachix: Value<CachixBlock>,
    #[serde(default)]
    pub max_sessions_per_host: Value<i64>,
}

/// Cachix settings after applying the environment fallbacks.
#[derive(Clone, Default)]
pub struct CachixSettings {
    pub auth_token: Option<String>,
    pub signing_key: Option<String>,
    pub api_url: String,
}

impl std::fmt::Debug for CachixSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachixSettings")
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<sensitive>"),
            )
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<sensitive>"),
            )
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// What `configure` produced; read by resources and data sources.
pub struct Configured {
    pub ssh_defaults: Option<SshBlock>,
    pub cachix: CachixSettings,
    pub pool: Pool,
}

/// State shared between the provider and everything it serves.
#[derive(Default)]
pub struct Shared {
    configured: RwLock<Option<Arc<Configured>>>,
}

impl Shared {
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Arc<Configured>> {
        let configured = self.configured.read().expect("provider lock").clone();
        if configured.is_none() {
            diags.root_error_short("The nixbuild provider was used before Terraform configured it");
        }
        configured
    }
}

impl Configured {
    /// Resolve the SSH settings for `host` from a resource-level `ssh` block
    /// (at `AttributePath ssh[0]`) and the provider defaults.
    pub fn ssh_settings(
        &self,
        host: &str,
        ssh: &Value<SshBlock>,
        diags: &mut Diagnostics,
    ) -> Option<Settings> {
        let levels = Levels {
            resource: ssh
                .as_ref_option()
                .map(|b| (b, AttributePath::new("ssh").index(0))),
            provider: self
                .ssh_defaults
                .as_ref()
                .map(|b| (b, AttributePath::new("ssh").index(0))),
        };
        crate::ssh::settings::resolve(host, AttributePath::new("host"), &levels, diags)
    }

    pub async fn connect(&self, settings: &Settings) -> Result<Remote, SshError> {
        self.pool.connect(settings).await
    }

    /// Settings for a resource's connection: an explicit `ssh.host_key` must
    /// match; otherwise the key pinned in the resource's state
    /// (`pinned_host_key`, seen on create) must match; with neither, the first
    /// key seen is pinned by the caller. Errors go to `diags`.
    pub fn resource_settings(
        &self,
        host: &str,
        ssh: &Value<SshBlock>,
        pinned_host_key: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Option<Settings> {
        let mut settings = self.ssh_settings(host, ssh, diags)?;
        if settings.host_key.is_none() {
            if let Some(pinned) = pinned_host_key.filter(|k| !k.is_empty()) {
                match crate::ssh::HostKey::parse(pinned) {
                    Ok(key) => settings.host_key = Some(key),
                    Err(e) => {
                        diags.error(
                            "Corrupt pinned host key in state",
                            format!("{e}; replace the resource to pin the host's key again"),
                            AttributePath::new("host_key"),
                        );
                        return None;
                    }
                }
            }
        }
        Some(settings)
    }

    /// [`resource_settings`](Self::resource_settings), then connect; a failure
    /// is an error against `host`.
    pub async fn connect_resource(
        &self,
        host: &str,
        ssh: &Value<SshBlock>,
        pinned_host_key: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Option<Remote> {
        let settings = self.resource_settings(host, ssh, pinned_host_key, diags)?;
        match self.connect(&settings).await {
            Ok(remote) => Some(remote),
            Err(e) => {
                diags.error(
                    format!("Cannot connect to {}", settings.endpoint),
                    e.to_string(),
                    AttributePath::new("host"),
                );
                None
            }
        }
    }
}

pub struct NixbuildProvider {
    shared: Arc<Shared>,
}

impl NixbuildProvider {
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared::default()),
        }
    }
}

impl Default for NixbuildProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[async_trait]
impl Provider for NixbuildProvider {
    type Config<'a> = ProviderConfig;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: block(
                "Runs a Nix remote-builder fleet and a binary-cache pipeline over SSH. Nothing needs Nix on the machine that runs Terraform: every Nix command runs on the builders.",
                vec![(
                    "max_sessions_per_host",
                    optional_number("How many SSH channels (concurrent remote commands) the provider opens on one host at once. Default: `4`."),
                )],
                vec![
                    ("ssh", ssh_block(false)),
                    (
                        "cachix",
                        tf_provider::schema::NestedBlock::Optional(block(
                            "Cachix credentials shared by every resource. Given here (or through the environment), secrets stay out of the Terraform state.",
                            vec![
                                ("auth_token", sensitive(optional_string("Cachix auth token. Default: the `CACHIX_AUTH_TOKEN` environment variable."))),
                                ("signing_key", sensitive(optional_string("Cachix signing key, for caches that sign on the client. Default: the `CACHIX_SIGNING_KEY` environment variable."))),
                                ("api_url", optional_string("Base URL of the Cachix API. Default: `https://cachix.org/api/v1`.")),
                            ],
                            vec![],
                        )),
                    ),
                ],
            ),
        })
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::Config<'a>) -> Option<()> {
        if let Value::Value(ssh) = &config.ssh {
            validate_block(ssh, &AttributePath::new("ssh").index(0), false, diags);
        }
        if let Value::Value(n) = config.max_sessions_per_host {
            if !(1..=64).contains(&n) {
                diags.error(
                    "Invalid max_sessions_per_host",
                    format!(
                        "{n} is out of range: use 1 to 64 (sshd's MaxSessions is 10 by default)"
                    ),
                    AttributePath::new("max_sessions_per_host"),
                );
            }
        }
        if let Value::Value(cachix) = &config.cachix {
            if let Value::Value(url) = &cachix.api_url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    diags.error(
                        "Invalid Cachix API URL",
                        format!("`{url}` is not an http(s) URL"),
                        AttributePath::new("cachix").index(0).attribute("api_url"),
                    );
                }
            }
        }
        Some(())
    }

    async fn configure<'a>(
        &self,
        _diags: &mut Diagnostics,
        terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        tracing::info!(terraform_version, "configuring the nixbuild provider");
        let cachix_block = config.cachix.as_option().unwrap_or_default();
        let cachix = CachixSettings {
            auth_token: cachix_block
                .auth_token
                .as_option()
                .or_else(|| non_empty_env("CACHIX_AUTH_TOKEN")),
            signing_key: cachix_block
                .signing_key
                .as_option()
                .or_else(|| non_empty_env("CACHIX_SIGNING_KEY")),
            api_url: cachix_block
                .api_url
                .as_option()
                .unwrap_or_else(|| DEFAULT_CACHIX_API_URL.to_string()),
        };
        let max_sessions = config
            .max_sessions_per_host
            .as_option()
            .map(|n| n.clamp(1, 64) as usize)
            .unwrap_or(DEFAULT_MAX_SESSIONS_PER_HOST);
        *self.shared.configured.write().expect("provider lock") = Some(Arc::new(Configured {
            ssh_defaults: config.ssh.as_option(),
            cachix,
            pool: Pool::new(max_sessions),
        }));
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        let mut resources: HashMap<String, Box<dyn DynamicResource>> = HashMap::new();
        resources.insert(
            "builder".into(),
            Box::new(BuilderResource::new(self.shared.clone())),
        );
        resources.insert(
            "machines_file".into(),
            Box::new(crate::resources::machines_file::MachinesFileResource::new(
                self.shared.clone(),
            )),
        );
        resources.insert(
            "cache_push".into(),
            Box::new(crate::resources::cache_push::CachePushResource::new(
                self.shared.clone(),
            )),
        );
        Some(resources)
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        let mut sources: HashMap<String, Box<dyn DynamicDataSource>> = HashMap::new();
        sources.insert(
            "host".into(),
            Box::new(HostDataSource::new(self.shared.clone())),
        );
        sources.insert(
            "cachix_cache".into(),
            Box::new(crate::resources::cachix_cache::CachixCacheDataSource::new(
                self.shared.clone(),
            )),
        );
        Some(sources)
    }
}
