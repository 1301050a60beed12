//! The provider's resources and data sources behind object-safe handlers:
//! each handler decodes Terraform's values into the typed states of
//! tf-provider's `Resource` / `DataSource` traits, calls the resource, and
//! encodes what it returns. The resources keep implementing tf-provider's
//! traits; only the wire is ours.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::{AttributePath, DataSource, Diagnostics, Resource};

use super::values::{encode_bytes, private_raw, Raw, WriteOnly};
use crate::provider::Catalog;
use crate::resources::state_upgrade::Upgrades;

/// What the server needs of one resource type.
#[async_trait]
pub trait ResourceHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: &Raw);
    /// `None`: the resource is gone.
    async fn read(
        &self,
        diags: &mut Diagnostics,
        state: &Raw,
        private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>)>;
    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: &Raw,
        proposed: &Raw,
        config: &Raw,
        prior_private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>, Vec<AttributePath>)>;
    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: &Raw,
        planned: &Raw,
        config: &Raw,
        planned_private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>)>;
    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<(Raw, Vec<u8>)>;
    /// Whether an upgraded state (JSON) decodes as the current state type.
    fn decodes(&self, diags: &mut Diagnostics, json: &Raw) -> bool;
}

/// What the server needs of one data source.
#[async_trait]
pub trait DataSourceHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: &Raw);
    async fn read(&self, diags: &mut Diagnostics, config: &Raw, meta: &Raw) -> Option<Raw>;
}

struct Typed<T>(T);

#[async_trait]
impl<R: Resource> ResourceHandler for Typed<R> {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        self.0.schema(diags)
    }

    async fn validate(&self, diags: &mut Diagnostics, config: &Raw) {
        if let Some(config) = config.decode(diags) {
            if self.0.validate(diags, config).await.is_none() {
                internal_error(diags);
            }
        }
    }

    async fn read(
        &self,
        diags: &mut Diagnostics,
        state: &Raw,
        private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>)> {
        let private = private_raw(private);
        let (state, private, meta) = (
            state.decode(diags)?,
            private.decode(diags)?,
            meta.decode(diags)?,
        );
        let (state, private) = self.0.read(diags, state, private, meta).await?;
        Some((Raw::encode(diags, &state)?, encode_bytes(diags, &private)?))
    }

    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: &Raw,
        proposed: &Raw,
        config: &Raw,
        prior_private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>, Vec<AttributePath>)> {
        let prior_private = private_raw(prior_private);
        match (prior.is_null(), proposed.is_null(), config.is_null()) {
            (false, false, false) => {
                let (prior, proposed, config, private, meta) = (
                    prior.decode(diags)?,
                    proposed.decode(diags)?,
                    config.decode(diags)?,
                    prior_private.decode(diags)?,
                    meta.decode(diags)?,
                );
                let (state, private, replace) = self
                    .0
                    .plan_update(diags, prior, proposed, config, private, meta)
                    .await?;
                Some((
                    Raw::encode(diags, &state)?,
                    encode_bytes(diags, &private)?,
                    replace,
                ))
            }
            (false, true, true) => {
                let (prior, private, meta) = (
                    prior.decode(diags)?,
                    prior_private.decode(diags)?,
                    meta.decode(diags)?,
                );
                let private = self.0.plan_destroy(diags, prior, private, meta).await;
                let private = match private {
                    Some(p) => encode_bytes(diags, &p)?,
                    None => Vec::new(),
                };
                Some((Raw::null(), private, Vec::new()))
            }
            (true, false, false) => {
                let (proposed, config, meta) = (
                    proposed.decode(diags)?,
                    config.decode(diags)?,
                    meta.decode(diags)?,
                );
                let (state, private) = self.0.plan_create(diags, proposed, config, meta).await?;
                Some((
                    Raw::encode(diags, &state)?,
                    encode_bytes(diags, &private)?,
                    Vec::new(),
                ))
            }
            _ => {
                diags.root_error_short("Resource is planned both for creation and deletion");
                None
            }
        }
    }

    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: &Raw,
        planned: &Raw,
        config: &Raw,
        planned_private: Vec<u8>,
        meta: &Raw,
    ) -> Option<(Raw, Vec<u8>)> {
        let planned_private = private_raw(planned_private);
        match (prior.is_null(), planned.is_null(), config.is_null()) {
            (false, false, false) => {
                let (prior, planned, config, private, meta) = (
                    prior.decode(diags)?,
                    planned.decode(diags)?,
                    config.decode(diags)?,
                    planned_private.decode(diags)?,
                    meta.decode(diags)?,
                );
                let (state, private) = self
                    .0
                    .update(diags, prior, planned, config, private, meta)
                    .await?;
                Some((Raw::encode(diags, &state)?, encode_bytes(diags, &private)?))
            }
            (false, true, true) => {
                let (prior, private, meta) = (
                    prior.decode(diags)?,
                    planned_private.decode(diags)?,
                    meta.decode(diags)?,
                );
                // A failed destroy returns errors with a null state: Terraform
                // then keeps the prior state.
                let _ = self.0.destroy(diags, prior, private, meta).await;
                Some((Raw::null(), Vec::new()))
            }
            (true, false, false) => {
                let (planned, config, private, meta) = (
                    planned.decode(diags)?,
                    config.decode(diags)?,
                    planned_private.decode(diags)?,
                    meta.decode(diags)?,
                );
                let (state, private) = self.0.create(diags, planned, config, private, meta).await?;
                Some((Raw::encode(diags, &state)?, encode_bytes(diags, &private)?))
            }
            _ => {
                diags.root_error_short("Resource is marked both for creation and deletion");
                None
            }
        }
    }

    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<(Raw, Vec<u8>)> {
        let (state, private) = self.0.import(diags, id).await?;
        Some((Raw::encode(diags, &state)?, encode_bytes(diags, &private)?))
    }

    fn decodes(&self, diags: &mut Diagnostics, json: &Raw) -> bool {
        json.decode::<R::State<'_>>(diags).is_some()
    }
}

#[async_trait]
impl<D: DataSource> DataSourceHandler for Typed<D> {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        self.0.schema(diags)
    }

    async fn validate(&self, diags: &mut Diagnostics, config: &Raw) {
        if let Some(config) = config.decode(diags) {
            if self.0.validate(diags, config).await.is_none() {
                internal_error(diags);
            }
        }
    }

    async fn read(&self, diags: &mut Diagnostics, config: &Raw, meta: &Raw) -> Option<Raw> {
        let (config, meta) = (config.decode(diags)?, meta.decode(diags)?);
        let state = self.0.read(diags, config, meta).await?;
        Raw::encode(diags, &state)
    }
}

/// An error diagnostic where a call failed without saying why.
pub fn internal_error(diags: &mut Diagnostics) {
    if diags.errors.is_empty() {
        diags.root_error_short("Internal error");
    }
}

/// A resource type as served: handler, schema, write-only attributes, upgrades.
pub struct ResourceEntry {
    /// The full type name (`nixbuild_builder`), for messages.
    pub name: &'static str,
    pub handler: Box<dyn ResourceHandler>,
    pub schema: Schema,
    pub write_only: WriteOnly,
    pub upgrades: Option<&'static Upgrades>,
}

pub struct DataSourceEntry {
    pub handler: Box<dyn DataSourceHandler>,
    pub schema: Schema,
}

/// Every resource type and data source, by full type name (`nixbuild_…`),
/// with the diagnostics of building it (a broken schema is reported to
/// Terraform, not a panic).
pub struct Registry {
    prefix: String,
    pub resources: BTreeMap<String, ResourceEntry>,
    pub data_sources: BTreeMap<String, DataSourceEntry>,
    pub diagnostics: Diagnostics,
}

impl Registry {
    pub fn new(provider_name: &str) -> Self {
        Registry {
            prefix: format!("{provider_name}_"),
            resources: BTreeMap::new(),
            data_sources: BTreeMap::new(),
            diagnostics: Diagnostics::default(),
        }
    }
}

impl Catalog for Registry {
    fn resource<R: Resource + 'static>(
        &mut self,
        name: &str,
        resource: R,
        upgrades: Option<&'static Upgrades>,
    ) {
        let type_name = format!("{}{name}", self.prefix);
        let Some(mut schema) = resource.schema(&mut self.diagnostics) else {
            internal_error(&mut self.diagnostics);
            return;
        };
        if let Some(upgrades) = upgrades {
            // The schema's version is the one the upgrade steps reach.
            schema.version = upgrades.current();
        }
        super::schema::check_write_only(&type_name, &schema.block, "", &mut self.diagnostics);
        let write_only = WriteOnly::of(&schema.block);
        // Registered once per process: the name lives as long as it.
        let name: &'static str = Box::leak(type_name.clone().into_boxed_str());
        self.resources.insert(
            type_name,
            ResourceEntry {
                name,
                handler: Box::new(Typed(resource)),
                schema,
                write_only,
                upgrades,
            },
        );
    }

    fn data_source<D: DataSource + 'static>(&mut self, name: &str, source: D) {
        let type_name = format!("{}{name}", self.prefix);
        let Some(schema) = source.schema(&mut self.diagnostics) else {
            internal_error(&mut self.diagnostics);
            return;
        };
        self.data_sources.insert(
            type_name,
            DataSourceEntry {
                handler: Box::new(Typed(source)),
                schema,
            },
        );
    }
}
