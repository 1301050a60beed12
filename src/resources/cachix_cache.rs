//! Data source `nixbuild_cachix_cache`: a Cachix cache's URI and public
//! signing keys from the Cachix API, e.g. to trust a cache on builders managed
//! elsewhere. Nothing runs on any host.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use crate::cache::cachix::{valid_cache_name, CachixApi};
use crate::cache::http::client;
use crate::context::credentials::validate_secret;
use crate::context::Shared;
use crate::secrets::Secret;
use crate::tfschema::{schema_or_diag, Computed, Optional, Required};

/// Looks up a Cachix cache through the Cachix API (`GET /cache/{name}`): its URI and public signing keys, ready for `nix.substituters` and `nix.trusted_public_keys`. Private caches need an auth token.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct CachixCacheState {
    /// Cache name (lowercase letters, digits and `-`).
    #[schemars(with = "Required<String>")]
    pub name: Value<String>,
    /// Token for a private cache. Default: the provider's `cachix.auth_token` (or `CACHIX_AUTH_TOKEN`).
    #[schemars(with = "Optional<Secret>")]
    pub auth_token: Value<Secret>,
    /// The cache name.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// The cache's binary-cache URL, e.g. `https://mycache.cachix.org`.
    #[schemars(with = "Computed<String>")]
    pub uri: Value<String>,
    /// Whether anyone may read the cache.
    #[schemars(with = "Computed<bool>")]
    pub is_public: Value<bool>,
    /// Public keys (`name:base64`) that sign the cache's paths.
    #[schemars(with = "Computed<Vec<String>>")]
    pub public_signing_keys: Value<Vec<Value<String>>>,
}

pub struct CachixCacheDataSource {
    shared: Arc<Shared>,
}

impl CachixCacheDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl DataSource for CachixCacheDataSource {
    type State<'a> = CachixCacheState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        schema_or_diag::<CachixCacheState>(diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        if let Value::Value(name) = &config.name {
            if !valid_cache_name(name) {
                diags.error(
                    "Invalid Cachix cache name",
                    format!(
                        "`{name}` is not a Cachix cache name (lowercase letters, digits and `-`)"
                    ),
                    AttributePath::new("name"),
                );
            }
        }
        validate_secret(&config.auth_token, AttributePath::new("auth_token"), diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        let configured = self.shared.get(diags)?;
        let name = config.name.as_ref_option().cloned().unwrap_or_default();
        let token = configured.cachix.auth_token(&config.auth_token);
        let api = CachixApi::new(
            client(),
            &configured.cachix.api_url,
            token.secret().map(Secret::expose),
        );
        match api.cache(&name).await {
            Ok(info) => Some(CachixCacheState {
                id: Value::Value(name),
                uri: Value::Value(info.uri),
                is_public: Value::Value(info.is_public),
                public_signing_keys: Value::Value(
                    info.public_signing_keys
                        .into_iter()
                        .map(Value::Value)
                        .collect(),
                ),
                ..config
            }),
            Err(e) => {
                diags.error(
                    format!("Cannot look up the Cachix cache `{name}`"),
                    e.to_string(),
                    AttributePath::new("name"),
                );
                None
            }
        }
    }
}
