//! The `tfplugin6.Provider` service: each RPC decodes its request, calls the
//! resource or data source through the [`Registry`], and answers with
//! diagnostics. Policies of the boundary live here, once:
//! - one `ConfigureProvider` per process (a second one would swap the live
//!   settings and drop every host-key pin mid-run);
//! - write-only attributes (names ending in `_wo`) reach the resources in the
//!   proposed and planned states, never leave in a state, and are refused
//!   where Terraform (< 1.11) would store them;
//! - `StopProvider` cancels the work in flight ([`crate::interrupt`]), not
//!   the server, which keeps answering so the interrupted calls return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tf_provider::{Diagnostics, Provider};
use tonic::{Request, Response, Status};

use super::proto::tfplugin6 as tf;
use super::registry::{internal_error, Registry, ResourceEntry};
use super::schema::{diagnostics, path, schema};
use super::values::raw_or_null;

/// The minimum Terraform version that keeps write-only values out of state.
const WRITE_ONLY_MINIMUM: &str = "1.11";

pub struct ProviderService<P> {
    provider: P,
    provider_schema: Option<tf_provider::schema::Schema>,
    registry: Registry,
    configured: AtomicBool,
}

type Answer<T> = Result<Response<T>, Status>;

impl<P: Provider + 'static> ProviderService<P> {
    pub fn new(provider: P, mut registry: Registry) -> Arc<Self> {
        let provider_schema = provider.schema(&mut registry.diagnostics);
        if provider_schema.is_none() {
            internal_error(&mut registry.diagnostics);
        }
        Arc::new(ProviderService {
            provider,
            provider_schema,
            registry,
            configured: AtomicBool::new(false),
        })
    }

    fn resource(&self, diags: &mut Diagnostics, type_name: &str) -> Option<&ResourceEntry> {
        let entry = self.registry.resources.get(type_name);
        if entry.is_none() {
            diags.root_error_short(format!("This provider has no resource type `{type_name}`"));
        }
        entry
    }

    fn capabilities() -> tf::ServerCapabilities {
        tf::ServerCapabilities {
            plan_destroy: true,
            // Terraform may reuse a cached schema instead of asking every
            // provider process for it (the schema is fixed per build).
            get_provider_schema_optional: true,
            move_resource_state: false,
        }
    }
}

/// Wrap an answer (tonic's own result type, whose error is large).
#[allow(clippy::result_large_err)]
fn ok<T>(message: T) -> Answer<T> {
    Ok(Response::new(message))
}

#[tonic::async_trait]
impl<P: Provider + 'static> tf::provider_server::Provider for Arc<ProviderService<P>> {
    async fn get_metadata(
        &self,
        _: Request<tf::get_metadata::Request>,
    ) -> Answer<tf::get_metadata::Response> {
        ok(tf::get_metadata::Response {
            server_capabilities: Some(ProviderService::<P>::capabilities()),
            diagnostics: diagnostics(self.registry.diagnostics.clone()),
            data_sources: self
                .registry
                .data_sources
                .keys()
                .map(|n| tf::get_metadata::DataSourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            resources: self
                .registry
                .resources
                .keys()
                .map(|n| tf::get_metadata::ResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
        })
    }

    async fn get_provider_schema(
        &self,
        _: Request<tf::get_provider_schema::Request>,
    ) -> Answer<tf::get_provider_schema::Response> {
        ok(tf::get_provider_schema::Response {
            provider: self.provider_schema.as_ref().map(schema),
            resource_schemas: self
                .registry
                .resources
                .iter()
                .map(|(n, e)| (n.clone(), schema(&e.schema)))
                .collect(),
            data_source_schemas: self
                .registry
                .data_sources
                .iter()
                .map(|(n, e)| (n.clone(), schema(&e.schema)))
                .collect(),
            diagnostics: diagnostics(self.registry.diagnostics.clone()),
            provider_meta: None,
            server_capabilities: Some(ProviderService::<P>::capabilities()),
        })
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<tf::get_resource_identity_schemas::Request>,
    ) -> Answer<tf::get_resource_identity_schemas::Response> {
        ok(Default::default())
    }

    async fn get_functions(
        &self,
        _: Request<tf::get_functions::Request>,
    ) -> Answer<tf::get_functions::Response> {
        ok(Default::default())
    }

    async fn validate_provider_config(
        &self,
        request: Request<tf::validate_provider_config::Request>,
    ) -> Answer<tf::validate_provider_config::Response> {
        let config = raw_or_null(request.into_inner().config);
        let mut diags = Diagnostics::default();
        if let Some(config) = config.decode(&mut diags) {
            if self.provider.validate(&mut diags, config).await.is_none() {
                internal_error(&mut diags);
            }
        }
        ok(tf::validate_provider_config::Response {
            diagnostics: diagnostics(diags),
        })
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Answer<tf::validate_resource_config::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(entry) = self.resource(&mut diags, &request.type_name) {
            let config = raw_or_null(request.config);
            let write_only_allowed = request
                .client_capabilities
                .is_some_and(|c| c.write_only_attributes_allowed);
            if !write_only_allowed {
                for at in entry.write_only.set_in(&mut diags, &config) {
                    diags.error(
                        "Write-only argument needs Terraform 1.11 or later",
                        format!(
                            "`{at}` is write-only: Terraform {WRITE_ONLY_MINIMUM} and later keep its value out of the plan and the state. \
                             This Terraform would store it there. Upgrade Terraform to {WRITE_ONLY_MINIMUM} or later, or use the \
                             argument without `_wo` (stored in the state, marked sensitive)."
                        ),
                        at,
                    );
                }
            }
            entry.handler.validate(&mut diags, &config).await;
        }
        ok(tf::validate_resource_config::Response {
            diagnostics: diagnostics(diags),
        })
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tf::validate_data_resource_config::Request>,
    ) -> Answer<tf::validate_data_resource_config::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        match self.registry.data_sources.get(&request.type_name) {
            Some(entry) => {
                entry
                    .handler
                    .validate(&mut diags, &raw_or_null(request.config))
                    .await
            }
            None => diags.root_error_short(format!(
                "This provider has no data source `{}`",
                request.type_name
            )),
        }
        ok(tf::validate_data_resource_config::Response {
            diagnostics: diagnostics(diags),
        })
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Answer<tf::upgrade_resource_state::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let upgraded = self
            .resource(&mut diags, &request.type_name)
            .and_then(|entry| {
                super::upgrade::upgrade(
                    &mut diags,
                    &request.type_name,
                    entry,
                    request.version,
                    request.raw_state,
                )
            });
        ok(tf::upgrade_resource_state::Response {
            upgraded_state: upgraded.map(Into::into),
            diagnostics: diagnostics(diags),
        })
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Answer<tf::configure_provider::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        if self.configured.swap(true, Ordering::SeqCst) {
            tracing::warn!("refused a second ConfigureProvider");
            diags.root_error(
                "The provider is already configured",
                "A provider process is configured once, by the Terraform run that started it. A second configuration \
                 would replace the settings and the host-key pins of the run in progress.",
            );
        } else {
            let config = raw_or_null(request.config);
            if let Some(config) = config.decode(&mut diags) {
                if self
                    .provider
                    .configure(&mut diags, request.terraform_version, config)
                    .await
                    .is_none()
                {
                    internal_error(&mut diags);
                }
            };
        }
        ok(tf::configure_provider::Response {
            diagnostics: diagnostics(diags),
        })
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Answer<tf::read_resource::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut answer = tf::read_resource::Response::default();
        if let Some(entry) = self.resource(&mut diags, &request.type_name) {
            let state = raw_or_null(request.current_state);
            let meta = raw_or_null(request.provider_meta);
            if let Some((state, private)) = entry
                .handler
                .read(&mut diags, &state, request.private, &meta)
                .await
            {
                answer.new_state = Some(entry.write_only.nulled(&mut diags, state).into());
                answer.private = private;
            }
        }
        answer.diagnostics = diagnostics(diags);
        ok(answer)
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Answer<tf::plan_resource_change::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut answer = tf::plan_resource_change::Response::default();
        if let Some(entry) = self.resource(&mut diags, &request.type_name) {
            let config = raw_or_null(request.config);
            let prior = raw_or_null(request.prior_state);
            let proposed = entry.write_only.copied_from(
                &mut diags,
                &config,
                raw_or_null(request.proposed_new_state),
            );
            let meta = raw_or_null(request.provider_meta);
            let planned = entry
                .handler
                .plan(
                    &mut diags,
                    &prior,
                    &proposed,
                    &config,
                    request.prior_private,
                    &meta,
                )
                .await;
            match planned {
                Some((state, private, replace)) => {
                    answer.planned_state = Some(entry.write_only.nulled(&mut diags, state).into());
                    answer.planned_private = private;
                    answer.requires_replace = replace.into_iter().map(path).collect();
                }
                None => internal_error(&mut diags),
            }
        }
        answer.diagnostics = diagnostics(diags);
        ok(answer)
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Answer<tf::apply_resource_change::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut answer = tf::apply_resource_change::Response::default();
        if let Some(entry) = self.resource(&mut diags, &request.type_name) {
            let config = raw_or_null(request.config);
            let prior = raw_or_null(request.prior_state);
            let planned = entry.write_only.copied_from(
                &mut diags,
                &config,
                raw_or_null(request.planned_state),
            );
            let meta = raw_or_null(request.provider_meta);
            let applied = entry
                .handler
                .apply(
                    &mut diags,
                    &prior,
                    &planned,
                    &config,
                    request.planned_private,
                    &meta,
                )
                .await;
            match applied {
                Some((state, private)) => {
                    answer.new_state = Some(entry.write_only.nulled(&mut diags, state).into());
                    answer.private = private;
                }
                None => internal_error(&mut diags),
            }
        }
        answer.diagnostics = diagnostics(diags);
        ok(answer)
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Answer<tf::import_resource_state::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut answer = tf::import_resource_state::Response::default();
        if let Some(entry) = self.resource(&mut diags, &request.type_name) {
            match entry.handler.import(&mut diags, request.id).await {
                Some((state, private)) => {
                    answer
                        .imported_resources
                        .push(tf::import_resource_state::ImportedResource {
                            type_name: request.type_name,
                            state: Some(entry.write_only.nulled(&mut diags, state).into()),
                            private,
                        })
                }
                None => internal_error(&mut diags),
            }
        }
        answer.diagnostics = diagnostics(diags);
        ok(answer)
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Answer<tf::read_data_source::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut answer = tf::read_data_source::Response::default();
        match self.registry.data_sources.get(&request.type_name) {
            Some(entry) => {
                let config = raw_or_null(request.config);
                let meta = raw_or_null(request.provider_meta);
                match entry.handler.read(&mut diags, &config, &meta).await {
                    Some(state) => answer.state = Some(state.into()),
                    None => internal_error(&mut diags),
                }
            }
            None => diags.root_error_short(format!(
                "This provider has no data source `{}`",
                request.type_name
            )),
        }
        answer.diagnostics = diagnostics(diags);
        ok(answer)
    }

    async fn stop_provider(
        &self,
        _: Request<tf::stop_provider::Request>,
    ) -> Answer<tf::stop_provider::Response> {
        crate::interrupt::stop();
        ok(tf::stop_provider::Response {
            error: String::new(),
        })
    }
}
