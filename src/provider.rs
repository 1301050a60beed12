//! The `nixbuild` provider: its schema, plan-time validation of the provider
//! block, `configure` (which builds the [`Context`] every resource and data
//! source reads), and the registry of resources and data sources. Nothing
//! imports this module but the binary and the docs generator: resources
//! depend on `crate::context`. Provider configuration is never written to the
//! Terraform state, so secrets given here stay out of it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{NestedBlock, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{
    AttributePath, DataSource, Diagnostics, DynamicDataSource, DynamicResource, Provider, Resource,
};

use crate::context::credentials::{validate_secret, validate_signing_key, CachixBlock};
use crate::context::settings::validate_block;
use crate::context::{CachixSettings, Context, Shared, SshBlock};
use crate::resources::builder::status::BuilderStatusDataSource;
use crate::resources::builder::BuilderResource;
use crate::resources::cache_proxy::CacheProxyResource;
use crate::resources::cache_push::CachePushResource;
use crate::resources::cachix_cache::CachixCacheDataSource;
use crate::resources::flake_outputs::FlakeOutputsDataSource;
use crate::resources::host::HostDataSource;
use crate::resources::machines_file::MachinesFileResource;
use crate::resources::state_upgrade::Upgrades;
use crate::ssh::pool::DEFAULT_MAX_SESSIONS_PER_HOST;
use crate::ssh::Pool;
use crate::tfschema::{or_diag, schema_of, Block, Optional};

/// Runs a Nix remote-builder fleet and a binary-cache pipeline over SSH. Nothing needs Nix on the machine that runs Terraform: every Nix command runs on the builders.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct ProviderConfig {
    /// Default SSH settings for every connection the provider makes. Resources and data sources can override each argument in their own `ssh` block.
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<CachixBlock>")]
    pub cachix: Value<CachixBlock>,
    /// How many SSH channels (concurrent remote commands) the provider opens on one host at once. Default: `4`.
    #[schemars(with = "Optional<i64>")]
    pub max_sessions_per_host: Value<i64>,
}

/// The provider block's schema: [`ProviderConfig`] without `ssh.host_key`,
/// which only resources and data sources have (the provider's configuration
/// is deserialized, never serialized, so the field stays null).
pub fn provider_schema() -> Result<Schema, String> {
    let mut schema = schema_of::<ProviderConfig>()?;
    if let Some(NestedBlock::Optional(ssh)) = schema.block.blocks.get_mut("ssh") {
        ssh.attributes.remove("host_key");
    }
    Ok(schema)
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

#[async_trait]
impl Provider for NixbuildProvider {
    type Config<'a> = ProviderConfig;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        or_diag(provider_schema(), diags)
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
            let at = |name: &'static str| AttributePath::new("cachix").index(0).attribute(name);
            validate_secret(&cachix.auth_token, at("auth_token"), diags);
            validate_signing_key(&cachix.signing_key, at("signing_key"), diags);
            if let Value::Value(url) = &cachix.api_url {
                if let Err(e) = check_cachix_api_url(url) {
                    diags.error(
                        "Invalid Cachix API URL",
                        e,
                        AttributePath::new("cachix").index(0).attribute("api_url"),
                    );
                }
            }
        }
        Some(())
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        tracing::info!(terraform_version, "configuring the nixbuild provider");
        let cachix =
            CachixSettings::configure(&config.cachix.as_option().unwrap_or_default(), diags);
        let max_sessions = config
            .max_sessions_per_host
            .as_option()
            .map(|n| n.clamp(1, 64) as usize)
            .unwrap_or(DEFAULT_MAX_SESSIONS_PER_HOST);
        self.shared.set(Context {
            ssh_defaults: config.ssh.as_option(),
            cachix,
            pool: Pool::new(max_sessions),
            successors: Default::default(),
        });
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        let mut boxes = Boxes::default();
        self.catalog(&mut boxes);
        Some(boxes.resources)
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        let mut boxes = Boxes::default();
        self.catalog(&mut boxes);
        Some(boxes.data_sources)
    }
}

/// What receives the provider's resources and data sources, typed: the plugin
/// layer (src/plugin/) serves them; [`Boxes`] hands them to tf-provider's
/// `Provider` interface (the docs generator reads schemas through it).
pub trait Catalog {
    /// A resource type, by its name without the `nixbuild_` prefix, with the
    /// steps that upgrade its older states (`None`: never changed shape).
    fn resource<R: Resource + 'static>(
        &mut self,
        name: &str,
        resource: R,
        upgrades: Option<&'static Upgrades>,
    );
    fn data_source<D: DataSource + 'static>(&mut self, name: &str, source: D);
}

impl NixbuildProvider {
    /// Every resource type and data source of the provider.
    pub fn catalog(&self, catalog: &mut impl Catalog) {
        let shared = &self.shared;
        catalog.resource("builder", BuilderResource::new(shared.clone()), None);
        catalog.resource(
            "machines_file",
            MachinesFileResource::new(shared.clone()),
            None,
        );
        catalog.resource(
            "cache_push",
            CachePushResource::new(shared.clone()),
            Some(&crate::resources::cache_push::upgrade::UPGRADES),
        );
        catalog.resource("cache_proxy", CacheProxyResource::new(shared.clone()), None);
        catalog.data_source("host", HostDataSource::new(shared.clone()));
        catalog.data_source(
            "builder_status",
            BuilderStatusDataSource::new(shared.clone()),
        );
        catalog.data_source("cachix_cache", CachixCacheDataSource::new(shared.clone()));
        catalog.data_source("flake_outputs", FlakeOutputsDataSource::new(shared.clone()));
    }
}

/// The catalog as tf-provider's boxed dynamic resources.
#[derive(Default)]
struct Boxes {
    resources: HashMap<String, Box<dyn DynamicResource>>,
    data_sources: HashMap<String, Box<dyn DynamicDataSource>>,
}

impl Catalog for Boxes {
    fn resource<R: Resource + 'static>(
        &mut self,
        name: &str,
        resource: R,
        _: Option<&'static Upgrades>,
    ) {
        self.resources.insert(name.into(), Box::new(resource));
    }

    fn data_source<D: DataSource + 'static>(&mut self, name: &str, source: D) {
        self.data_sources.insert(name.into(), Box::new(source));
    }
}

/// The Cachix API gets the auth token as a Bearer header: only over https,
/// or plain http to this machine itself (a local stand-in or proxy).
fn check_cachix_api_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{url}` is plain http to another machine: the Cachix auth token would travel in clear. Use https (plain http is accepted only on loopback)"
                ))
            }
        }
        _ => Err(format!("`{url}` is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::check_cachix_api_url;

    #[test]
    fn the_cachix_api_is_https_or_loopback() {
        for ok in [
            "https://cachix.org/api/v1",
            "http://127.0.0.1:8751/api/v1",
            "http://[::1]:8751/api/v1",
            "http://localhost/api/v1",
        ] {
            assert!(check_cachix_api_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://cachix.org/api/v1",
            "http://192.0.2.1/api/v1",
            "http://127.0.0.1.example.com/api/v1",
            "ftp://cachix.org/api/v1",
            "cachix.org/api/v1",
        ] {
            let e = check_cachix_api_url(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
