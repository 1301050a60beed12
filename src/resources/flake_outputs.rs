//! Data source `nixbuild_flake_outputs`: evaluate flake installables on a
//! builder (nothing is built or fetched) and say which out paths given
//! binary caches already hold. It runs the evaluator of
//! `nixbuild_cache_push`'s plan ([`crate::resources::cache_push::evaluate`]),
//! written once, so its out paths are those a push of the same installables
//! records.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use crate::cache::http::{self, HttpCache};
use crate::cache::store;
use crate::context::{Purpose, Shared, SshBlock, Target};
use crate::resources::cache_push::evaluate::{self, Evaluation, Job, Origin};
use crate::resources::cache_push::{
    self, known_strings, lacking_at, netrc_auth, strings, CachePushState, Strings,
};
use crate::tfschema::{schema_or_diag, Block, Computed, Optional, Required};

/// Evaluates flake installables on a builder over SSH (`nix build --dry-run`: nothing is built or fetched) and returns their derivation and out paths, and which of them each given binary cache already holds. The out paths are those `nixbuild_cache_push` records for the same installables. Use it to wire store paths into other resources (a deployment, a NixOS host), or in a `check` block ("everything this commit needs is cached"). A `source` tree the builder lacks is uploaded first, to the same content-addressed place a push uses.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Default)]
#[serde(default)]
pub struct FlakeOutputsState {
    /// Builder to evaluate on (host name or IP address).
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    /// Flake reference the builder fetches, as in `nixbuild_cache_push.flake`. Conflicts with `source`.
    #[schemars(with = "Optional<String>")]
    pub flake: Value<String>,
    /// Local directory holding a `flake.nix`, as in `nixbuild_cache_push.source` (the same files are uploaded, and the same `source_hash` results). Conflicts with `flake`.
    #[schemars(with = "Optional<String>")]
    pub source: Value<String>,
    /// What to evaluate, written as in `nixbuild_cache_push.installables` (attribute paths with `flake` or `source`, full installables without).
    #[schemars(with = "Required<Vec<String>>")]
    pub installables: Strings,
    /// Extra arguments for `nix build`, as in `nixbuild_cache_push.build_args` (e.g. `--override-input`).
    #[schemars(with = "Optional<Vec<String>>")]
    pub build_args: Strings,
    /// HTTP(S) binary cache URLs to ask which out paths they hold (`<hash>.narinfo`), e.g. a `nixbuild_cache_push` destination's `cache_url` or `https://NAME.cachix.org`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub caches: Strings,
    /// netrc file on the machine running Terraform with basic-auth credentials for private `caches` (the entry for each cache's host is used, else `default`).
    #[schemars(with = "Optional<String>")]
    pub netrc_file: Value<String>,
    // Computed.
    /// `user@host:port` of the builder and the evaluated out paths' hash.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// Content hash of `source` (as `nixbuild_cache_push.source_hash`); null without `source`.
    #[schemars(with = "Computed<String>")]
    pub source_hash: Value<String>,
    /// Derivation path of each installable, in installable order (an empty string for an installable that is a plain store path).
    #[schemars(with = "Computed<Vec<String>>")]
    pub drv_paths: Strings,
    /// Out paths of all installables, in installable order (outputs of one installable in output-name order, each path once): what `nixbuild_cache_push.out_paths` is after a push of the same installables.
    #[schemars(with = "Computed<Vec<String>>")]
    pub out_paths: Strings,
    /// Out paths per installable, keyed by the installable as written.
    #[schemars(with = "Computed<BTreeMap<String, Vec<String>>>")]
    pub out_paths_by_installable: Value<BTreeMap<String, Strings>>,
    /// Per cache URL in `caches` (as written): the out paths it lacks, in `out_paths` order. Empty lists when it holds them all.
    #[schemars(with = "Computed<BTreeMap<String, Vec<String>>>")]
    pub missing_paths_by_cache: Value<BTreeMap<String, Strings>>,
    /// Whether every cache in `caches` holds every out path (true without `caches`).
    #[schemars(with = "Computed<bool>")]
    pub all_cached: Value<bool>,
}

impl FlakeOutputsState {
    /// The same fields as a push, for the shared checks and evaluator.
    fn as_push(&self) -> CachePushState {
        CachePushState {
            host: self.host.clone(),
            ssh: self.ssh.clone(),
            flake: self.flake.clone(),
            source: self.source.clone(),
            installables: self.installables.clone(),
            build_args: self.build_args.clone(),
            ..Default::default()
        }
    }
}

pub struct FlakeOutputsDataSource {
    shared: Arc<Shared>,
}

impl FlakeOutputsDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The job of `config`: its source hashed now (a data source has no plan).
fn job_of(config: &FlakeOutputsState) -> Job {
    let origin = match (&config.flake, &config.source) {
        (Value::Value(f), _) => Origin::Flake(f.clone()),
        (_, Value::Value(s)) => Origin::Source {
            path: s.clone(),
            planned_hash: None,
            keep: 0,
        },
        _ => Origin::None,
    };
    Job {
        origin,
        installables: strings(&config.installables),
        build_args: strings(&config.build_args),
    }
}

#[async_trait]
impl DataSource for FlakeOutputsDataSource {
    type State<'a> = FlakeOutputsState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        schema_or_diag::<FlakeOutputsState>(diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        cache_push::validate_job(&config.as_push(), diags);
        for (i, url) in strings(&config.caches).iter().enumerate() {
            if let Err(e) = store::validate_http_url(url) {
                diags.error(
                    "Invalid cache URL",
                    format!("{e}: caches are asked over HTTP(S) for `<hash>.narinfo`"),
                    AttributePath::new("caches").index(i as i64),
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
        let netrc = match &config.netrc_file {
            Value::Value(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(text),
                Err(e) => {
                    diags.error(
                        "Cannot read netrc_file",
                        format!("{path}: {e}"),
                        AttributePath::new("netrc_file"),
                    );
                    return None;
                }
            },
            _ => None,
        };
        let job = job_of(&config);
        let host = config.host.as_ref_option().cloned().unwrap_or_default();
        let remote = configured
            .connect_or_fail(&Target::new(&host, &config.ssh), Purpose::DataSource, diags)
            .await?;
        let budget = crate::context::policy::READ_COMMAND_BUDGET;
        let evaluation: Evaluation =
            match tokio::time::timeout(budget, evaluate::evaluate(&remote, &job, None)).await {
                Ok(Ok(e)) => e,
                Ok(Err(f)) => {
                    diags.error(f.summary, f.detail, f.attribute);
                    return None;
                }
                Err(_) => {
                    diags.error(
                        "Evaluation timed out",
                        format!(
                            "evaluating the installables on {} took longer than {}",
                            remote.endpoint(),
                            humantime::format_duration(budget)
                        ),
                        AttributePath::new("installables"),
                    );
                    return None;
                }
            };
        let out_paths = evaluation.out_paths();
        let client = http::client();
        let mut missing_by_cache = BTreeMap::new();
        for (i, url) in strings(&config.caches).iter().enumerate() {
            let auth = netrc
                .as_deref()
                .map(|text| netrc_auth(text, url))
                .unwrap_or_default();
            let cache = HttpCache::new(client.clone(), url, auth);
            match lacking_at(&cache, &out_paths).await {
                Ok(missing) => {
                    missing_by_cache.insert(url.clone(), known_strings(missing));
                }
                Err(e) => {
                    diags.error(
                        "Cannot ask the cache",
                        e.to_string(),
                        AttributePath::new("caches").index(i as i64),
                    );
                    return None;
                }
            }
        }
        let all_cached = missing_by_cache
            .values()
            .all(|m| m.as_ref_option().is_some_and(Vec::is_empty));
        let id = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for p in &out_paths {
                h.update(p.as_bytes());
                h.update(b"\0");
            }
            format!("{}/{}", remote.endpoint(), hex::encode(&h.finalize()[..8]))
        };
        Some(FlakeOutputsState {
            id: Value::Value(id),
            source_hash: evaluation.source_hash.clone().into(),
            drv_paths: known_strings(
                evaluation
                    .installables
                    .iter()
                    .map(|i| i.drv_path.clone().unwrap_or_default())
                    .collect(),
            ),
            out_paths_by_installable: Value::Value(
                evaluation
                    .installables
                    .iter()
                    .map(|i| (i.installable.clone(), known_strings(i.out_paths.clone())))
                    .collect(),
            ),
            out_paths: known_strings(out_paths),
            missing_paths_by_cache: Value::Value(missing_by_cache),
            all_cached: Value::Value(all_cached),
            ..config
        })
    }
}
