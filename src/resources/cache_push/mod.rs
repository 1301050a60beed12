//! Resource `nixbuild_cache_push`: build flake installables on a builder and
//! upload their closure to a binary cache (any `nix copy --to` store, or
//! Cachix through its CLI), skipping what the cache already has.
//!
//! - [`validate`]: plan-time checks of every argument;
//! - [`source`]: the local `source` tree, its content hash and tar stream;
//! - [`push`]: the remote steps of one push.
//!
//! Read asks the cache for each out path's narinfo over HTTP; a lost path sets
//! `missing_paths`, which plans an in-place update that pushes again. Destroy
//! only forgets the push: nothing is deleted from the cache. Secrets (signing
//! keys, Cachix tokens) are sensitive, travel to the builder in 0600 files and
//! are represented in private state only by a salted HMAC, to notice rotation.

mod push;
pub mod source;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::cache::cachix::CachixApi;
use crate::cache::http::{self, HttpAuth, HttpCache};
use crate::cache::store;
use crate::context::{plan_pin, Context, PlannedPin, Purpose, Shared, SshBlock, Target};
use crate::resources::timeouts::{self, Defaults, Operation, Timeouts};
use crate::secrets::Secret;
use crate::tfschema::{or_diag, schema_of, Block, Computed, Optional, Required};

pub use validate::{check_flake_ref, check_installable};

/// Default `source_keep`: uploaded trees a builder keeps.
pub const SOURCE_KEEP: i64 = 5;

/// Default `timeouts.create` / `timeouts.update`.
/// A push builds and uploads: an hour by default.
pub const TIMEOUTS: Defaults = Defaults {
    create: Duration::from_secs(60 * 60),
    update: Duration::from_secs(60 * 60),
    delete: Duration::from_secs(60),
};

type Strings = Value<Vec<Value<String>>>;

/// Push with `nix copy --to` to any store Nix can write.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(default)]
pub struct StoreDest {
    /// Destination store, as `nix copy --to` takes it: `https://…`/`http://…` (HTTP PUT), `s3://bucket?…`, `file:///dir`, `ssh-ng://user@host`, `ssh://…`, `gs://…`. Changing it plans a new push.
    #[schemars(with = "Required<String>")]
    pub uri: Value<String>,
    /// Binary-cache secret key (`name:base64`, as `nix-store --generate-binary-cache-key` writes) to sign the uploaded paths with. It travels to the builder in a 0600 file that is removed after the push; it is never on a command line. Paths the cache already has are not re-signed.
    #[schemars(with = "Optional<Secret>")]
    pub secret_key: Value<Secret>,
    /// HTTP(S) URL where the cache serves `<hash>.narinfo`, for presence checks when `uri` is not HTTP (e.g. the website of an S3 bucket). Without it, a non-HTTP store is asked through Nix on the builder at push time, and refresh cannot notice lost paths.
    #[schemars(with = "Optional<String>")]
    pub public_url: Value<String>,
    /// netrc file on the machine running Terraform with basic-auth credentials for presence checks of a private cache (the format of Nix's `netrc-file`; the entry for the cache's host is used, else `default`). Uploads use the builder's own Nix configuration.
    #[schemars(with = "Optional<String>")]
    pub netrc_file: Value<String>,
}

/// Push to a Cachix cache with the `cachix` CLI on the builder (it must be installed there, e.g. with `nixbuild_builder`'s `cachix.install`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(default)]
pub struct CachixDest {
    /// Name of the Cachix cache. Changing it plans a new push.
    #[schemars(with = "Required<String>")]
    pub cache: Value<String>,
    /// Cachix auth token for this push. Default: the provider's `cachix.auth_token` (recommended: then the token stays out of the state). Given to the `cachix` process only, through its environment, from a 0600 file.
    #[schemars(with = "Optional<Secret>")]
    pub auth_token: Value<Secret>,
    /// Cachix signing key, for caches whose paths are signed by the client. Default: the provider's `cachix.signing_key`.
    #[schemars(with = "Optional<Secret>")]
    pub signing_key: Value<Secret>,
}

/// Builds flake installables on a builder over SSH and uploads their closure to a binary cache: any store `nix copy --to` writes (`store` block) or Cachix (`cachix` block). Paths the cache already has are not uploaded again. On refresh, each out path's `<hash>.narinfo` is requested from the cache; a path the cache lost plans a new push. Destroying the resource only removes it from the state: nothing is deleted from the cache.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Default)]
#[serde(default)]
pub struct CachePushState {
    /// Builder to build and upload on (host name or IP address). Changing it plans a new push.
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    /// Flake reference the builder fetches, e.g. `git+https://example.com/repo.git?ref=main&rev=<sha>` or `github:owner/repo/<rev>`. Pin a revision: the reference is built again only when it changes. Conflicts with `source`.
    #[schemars(with = "Optional<String>")]
    pub flake: Value<String>,
    /// Local directory (on the machine running Terraform) holding a `flake.nix`. It is uploaded to the builder (to `~/.cache/nixbuild/sources/<source_hash>`, checked there against `source_hash` before anything builds from it) and built as a `path:` flake. What is uploaded is what Nix would copy: in a git work tree only the files git tracks (staged or committed, with their current content; this runs `git ls-files`), elsewhere the whole directory without `.git`; never `.terraform/` directories or `*.tfstate*` files. Changing an uploaded file plans a new push. Conflicts with `flake`.
    #[schemars(with = "Optional<String>")]
    pub source: Value<String>,
    /// How many uploaded `source` trees the builder keeps: after building, a push removes the least recently used trees beyond this many. A tree a running push uses is never removed. Default `5`; `0` never removes any. Changing it changes nothing until the next push.
    #[schemars(with = "Optional<i64>")]
    pub source_keep: Value<i64>,
    /// What to build. With `flake` or `source`: attribute paths inside that flake, as written after `#` (`hello`, `packages.x86_64-linux.hello`, `hello^out,dev`). Without either: full installables (`nixpkgs#hello`, `/nix/store/…-x.drv^out`). Changing them plans a new push.
    #[schemars(with = "Required<Vec<String>>")]
    pub installables: Strings,
    /// Extra arguments for `nix build`, e.g. `["--option", "sandbox", "false"]`. Each element is one argument. Changing them plans a new push.
    #[schemars(with = "Optional<Vec<String>>")]
    pub build_args: Strings,
    /// Arbitrary values; changing any plans a new push (like `null_resource.triggers`).
    #[schemars(with = "Optional<BTreeMap<String, String>>")]
    pub triggers: Value<BTreeMap<String, Value<String>>>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<StoreDest>")]
    pub store: Value<StoreDest>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<CachixDest>")]
    pub cachix: Value<CachixDest>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<Timeouts>")]
    pub timeouts: Value<Timeouts>,
    // Computed.
    /// Identifier of this push (a hash of the destination and the out paths).
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// Public host key the builder presented on the first push, pinned: later connections must present it.
    #[schemars(with = "Computed<String>")]
    pub host_key: Value<String>,
    /// Content hash of `source`, known at plan time: the SHA-256 (hex) of the uploaded tree's NAR serialisation, as `nix-hash --type sha256` prints it and as Nix records in the flake's `narHash`. Null without `source`.
    #[schemars(with = "Computed<String>")]
    pub source_hash: Value<String>,
    /// Store paths the installables built, in installable order (outputs of one installable in output-name order).
    #[schemars(with = "Computed<Vec<String>>")]
    pub out_paths: Strings,
    /// Every store path in the closure of `out_paths` (sorted): what the cache must hold.
    #[schemars(with = "Computed<Vec<String>>")]
    pub closure_paths: Strings,
    /// Sum of the NAR sizes of `closure_paths`, in bytes.
    #[schemars(with = "Computed<i64>")]
    pub closure_nar_size: Value<i64>,
    /// How many store paths the last push uploaded; paths the cache already had are not counted (a fully cached closure gives 0).
    #[schemars(with = "Computed<i64>")]
    pub pushed_paths: Value<i64>,
    /// How many out paths the cache lacked at the last refresh. Non-zero plans an update that pushes again.
    #[schemars(with = "Computed<i64>")]
    pub missing_paths: Value<i64>,
    /// URL where narinfos are checked: the HTTP(S) store URI, `store.public_url`, or the Cachix cache's URI. Null for a non-HTTP store without `public_url`.
    #[schemars(with = "Computed<String>")]
    pub cache_url: Value<String>,
}

/// Private state: a salted HMAC of the secrets in effect at the last push
/// (never the secrets), to plan a new push when one rotates.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct PushPrivate {
    pub salt: String,
    pub secrets: String,
}

/// The resource's schema: [`CachePushState`] and its timeouts' notes and
/// defaults.
pub fn schema() -> Result<Schema, String> {
    let mut schema = schema_of::<CachePushState>()?;
    timeouts::describe(
        &mut schema,
        TIMEOUTS,
        [
            "Limit for the first push (build + upload).",
            "Limit for a repeated push (after the cache lost a path or a secret rotated).",
            "Accepted for symmetry; destroy does nothing remotely.",
        ],
    );
    Ok(schema)
}

fn strings(list: &Strings) -> Vec<String> {
    list.as_ref_option()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_ref_option().cloned())
                .collect()
        })
        .unwrap_or_default()
}

fn known_strings(list: Vec<String>) -> Strings {
    Value::Value(list.into_iter().map(Value::Value).collect())
}

/// The secrets a push of `state` would use (resource level first, then the
/// provider's), or `None` when one is not known yet.
fn effective_secrets(
    state: &CachePushState,
    configured: &Context,
) -> Option<Vec<(&'static str, Option<String>)>> {
    match (&state.store, &state.cachix) {
        (_, Value::Value(c)) => Some(vec![
            (
                "cachix_auth_token",
                configured.cachix.auth_token(&c.auth_token).known()?,
            ),
            (
                "cachix_signing_key",
                configured.cachix.signing_key(&c.signing_key).known()?,
            ),
        ]),
        (Value::Value(s), _) => Some(vec![(
            "store_secret_key",
            match &s.secret_key {
                Value::Unknown => return None,
                v => v.as_ref_option().map(|k| k.expose().to_string()),
            },
        )]),
        _ => Some(vec![]),
    }
}

/// Which destination this is (its kind and address): a change pushes again.
fn destination_identity(state: &CachePushState) -> Value<String> {
    match (&state.store, &state.cachix) {
        (Value::Value(s), _) => s.uri.as_ref_option().map(|u| format!("store {u}")).into(),
        (_, Value::Value(c)) => c
            .cache
            .as_ref_option()
            .map(|n| format!("cachix {n}"))
            .into(),
        (Value::Unknown, _) | (_, Value::Unknown) => Value::Unknown,
        _ => Value::Null,
    }
}

/// `cache_url` as far as it is known at plan time: for a store, the presence
/// URL (or null); for Cachix, whatever the API will say (unknown).
fn planned_cache_url(state: &CachePushState) -> Value<String> {
    match &state.store {
        Value::Value(s) => match (&s.uri, &s.public_url) {
            (Value::Value(uri), Value::Value(url)) => store::presence_url(uri, Some(url)).into(),
            (Value::Value(uri), Value::Null) => store::presence_url(uri, None).into(),
            _ => Value::Unknown,
        },
        _ => Value::Unknown,
    }
}

pub struct CachePushResource {
    shared: Arc<Shared>,
    client: reqwest::Client,
}

impl CachePushResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            client: http::client(),
        }
    }

    /// Credentials for narinfo checks at `url`.
    fn http_auth(&self, state: &CachePushState, configured: &Context, url: &str) -> HttpAuth {
        if let Value::Value(c) = &state.cachix {
            return match configured.cachix.auth_token(&c.auth_token).secret() {
                Some(token) => HttpAuth::Bearer(token.expose().to_string()),
                None => HttpAuth::None,
            };
        }
        if let Value::Value(s) = &state.store {
            if let (Value::Value(file), Some(host)) = (&s.netrc_file, store::url_host(url)) {
                if let Ok(text) = std::fs::read_to_string(source::expand(file)) {
                    return http::netrc_lookup(&text, host).unwrap_or_default();
                }
            }
        }
        HttpAuth::None
    }

    fn request(
        &self,
        state: &CachePushState,
        configured: &Context,
        time_limit: Duration,
        diags: &mut Diagnostics,
    ) -> Option<push::Request> {
        let origin = match (&state.flake, &state.source) {
            (Value::Value(f), _) => push::Origin::Flake(f.clone()),
            (_, Value::Value(s)) => push::Origin::Source {
                path: s.clone(),
                planned_hash: state.source_hash.as_ref_option().cloned(),
                keep: state
                    .source_keep
                    .as_ref_option()
                    .map_or(SOURCE_KEEP, |n| *n)
                    .max(0) as u64,
            },
            _ => push::Origin::None,
        };
        let destination = match (&state.store, &state.cachix) {
            (Value::Value(s), _) => {
                let uri = s.uri.as_ref_option().cloned().unwrap_or_default();
                let presence =
                    store::presence_url(&uri, s.public_url.as_ref_option().map(String::as_str))
                        .map(|url| {
                            HttpCache::new(
                                self.client.clone(),
                                &url,
                                self.http_auth(state, configured, &url),
                            )
                        });
                push::Destination::Store {
                    uri,
                    secret_key: s.secret_key.as_ref_option().cloned(),
                    presence,
                }
            }
            (_, Value::Value(c)) => {
                let auth_token = configured
                    .cachix
                    .auth_token(&c.auth_token)
                    .secret()
                    .cloned();
                let signing_key = configured
                    .cachix
                    .signing_key(&c.signing_key)
                    .secret()
                    .cloned();
                push::Destination::Cachix {
                    cache: c.cache.as_ref_option().cloned().unwrap_or_default(),
                    api: CachixApi::new(
                        self.client.clone(),
                        &configured.cachix.api_url,
                        auth_token.as_ref().map(Secret::expose),
                    ),
                    auth_token,
                    signing_key,
                }
            }
            _ => {
                diags.error_short(
                    "No destination: add a `store` or `cachix` block",
                    AttributePath::new("store"),
                );
                return None;
            }
        };
        Some(push::Request {
            origin,
            installables: strings(&state.installables),
            build_args: strings(&state.build_args),
            destination,
            time_limit,
        })
    }

    /// Connect, push, and fill the computed attributes of `state`.
    async fn push(
        &self,
        diags: &mut Diagnostics,
        mut state: CachePushState,
        pinned_host_key: Option<String>,
        purpose: Purpose,
        timeout: Duration,
    ) -> Option<(CachePushState, Option<PushPrivate>)> {
        let configured = self.shared.get(diags)?;
        let request = self.request(&state, &configured, timeout, diags)?;
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        let work = async {
            let target = Target::new(&host, &state.ssh).pinned(pinned_host_key.as_deref());
            let remote = configured.connect_or_fail(&target, purpose, diags).await?;
            match push::run(&remote, &request).await {
                Ok(outcome) => Some((remote.host_key().openssh_line(), outcome)),
                Err(f) => {
                    diags.error(f.summary, f.detail, f.attribute);
                    None
                }
            }
        };
        let (host_key, outcome) = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                diags.error(
                    "Push timed out",
                    format!(
                        "the push to {host} did not finish within {}; raise `timeouts` or look at the builder",
                        humantime::format_duration(timeout)
                    ),
                    AttributePath::new("timeouts"),
                );
                return None;
            }
        };
        if let Some(hash) = outcome.source_hash {
            state.source_hash = Value::Value(hash);
        }
        let mut id = Sha256::new();
        id.update(
            destination_identity(&state)
                .as_ref_option()
                .cloned()
                .unwrap_or_default(),
        );
        for p in &outcome.out_paths {
            id.update(b"\0");
            id.update(p.as_bytes());
        }
        if !state.id.is_value() {
            state.id = Value::Value(hex::encode(&id.finalize()[..16]));
        }
        state.host_key = Value::Value(host_key);
        state.out_paths = known_strings(outcome.out_paths);
        state.closure_nar_size = Value::Value(outcome.closure.nar_size as i64);
        state.closure_paths = known_strings(outcome.closure.paths);
        state.pushed_paths = Value::Value(outcome.pushed as i64);
        state.missing_paths = Value::Value(0);
        state.cache_url = outcome.cache_url.into();
        let salt = crate::secrets::random_salt();
        let private = effective_secrets(&state, &configured).map(|secrets| PushPrivate {
            secrets: crate::secrets::fingerprint(&salt, &secrets),
            salt,
        });
        Some((state, private))
    }
}

#[async_trait]
impl Resource for CachePushResource {
    type State<'a> = CachePushState;
    type PrivateState<'a> = Option<PushPrivate>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        or_diag(schema(), diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        validate::validate(&config, diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        mut state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let (Value::Value(url), Value::Value(_)) = (&state.cache_url, &state.out_paths) else {
            return Some((state, private_state));
        };
        let configured = self.shared.get(diags)?;
        let out_paths = strings(&state.out_paths);
        let hashes: Result<Vec<String>, String> = out_paths
            .iter()
            .map(|p| crate::nix::store_path::StorePath::parse(p).map(|s| s.hash().to_string()))
            .collect();
        let Ok(hashes) = hashes else {
            return Some((state, private_state));
        };
        let cache = HttpCache::new(
            self.client.clone(),
            url,
            self.http_auth(&state, &configured, url),
        );
        match cache.missing(&hashes).await {
            Ok(missing) => {
                if !missing.is_empty() {
                    tracing::info!(cache = %url, "the cache lost {} of {} out paths", missing.len(), hashes.len());
                }
                state.missing_paths = Value::Value(missing.len() as i64);
            }
            Err(e) => diags.warning(
                "Cannot check the binary cache",
                format!("{e}. The push is kept as it was; the next refresh checks again."),
                AttributePath::new("cache_url"),
            ),
        }
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = proposed_state;
        state.source_hash = match &state.source {
            Value::Value(path) => match source::content_hash(path) {
                Ok(hash) => Value::Value(hash),
                Err(e) => {
                    diags.error("Cannot read source", e, AttributePath::new("source"));
                    return None;
                }
            },
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        };
        state.id = Value::Unknown;
        state.host_key = Value::Unknown;
        state.out_paths = Value::Unknown;
        state.closure_paths = Value::Unknown;
        state.closure_nar_size = Value::Unknown;
        state.pushed_paths = Value::Unknown;
        state.missing_paths = Value::Value(0);
        state.cache_url = planned_cache_url(&state);
        Some((state, None))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let mut state = proposed_state;
        let mut replace = Vec::new();
        state.source_hash = match &state.source {
            Value::Value(path) => match source::content_hash(path) {
                Ok(hash) => Value::Value(hash),
                Err(e) => {
                    diags.error("Cannot read source", e, AttributePath::new("source"));
                    return None;
                }
            },
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        };
        // Another host is another push (and may pin a key of its own).
        if state.host != prior_state.host {
            replace.push(AttributePath::new("host"));
            let (planned, _) = self
                .plan_create(
                    diags,
                    state,
                    CachePushState::default(),
                    ValueEmpty::default(),
                )
                .await?;
            return Some((planned, prior_private_state, replace));
        }
        // On the same host, a changed source, build or destination is pushed
        // again in place: the pinned key stays, so a re-installed (or
        // impersonated) builder fails the push before any login instead of
        // being trusted on first use by a replacement.
        let destination_changed =
            destination_identity(&state) != destination_identity(&prior_state);
        let changed = state.source_hash != prior_state.source_hash
            || state.flake != prior_state.flake
            || state.installables != prior_state.installables
            || state.build_args != prior_state.build_args
            || state.triggers != prior_state.triggers
            || destination_changed;

        // Push again when the inputs changed, the cache lost a path or a secret rotated.
        let configured = self.shared.get(diags)?;
        let rotated = match (&prior_private_state, effective_secrets(&state, &configured)) {
            (Some(private), Some(secrets)) => {
                crate::secrets::fingerprint(&private.salt, &secrets) != private.secrets
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        let lost = matches!(prior_state.missing_paths, Value::Value(n) if n > 0);
        let again = changed || lost || rotated;
        if again {
            state.out_paths = Value::Unknown;
            state.closure_paths = Value::Unknown;
            state.closure_nar_size = Value::Unknown;
            state.pushed_paths = Value::Unknown;
            state.missing_paths = Value::Value(0);
        }
        if changed {
            // The id names the destination and the out paths.
            state.id = Value::Unknown;
        }
        let explicit = state
            .ssh
            .as_ref_option()
            .map(|s| s.host_key.clone())
            .unwrap_or_default();
        let host = state.host.as_ref_option().cloned().unwrap_or_default();
        match plan_pin(
            &host,
            &explicit,
            prior_state.host_key.as_ref_option().map(String::as_str),
            false,
            AttributePath::new("ssh").index(0).attribute("host_key"),
            diags,
        )? {
            PlannedPin::Keep => {}
            PlannedPin::Unknown => state.host_key = Value::Unknown,
            PlannedPin::Explicit(key) => state.host_key = Value::Value(key.openssh_line()),
        }
        // A changed public_url moves where presence is checked.
        let cache_url = planned_cache_url(&state);
        if state.store.is_value() {
            state.cache_url = cache_url;
        } else if again {
            state.cache_url = Value::Unknown;
        }
        Some((state, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let timeout = timeouts::get(&planned_state.timeouts, Operation::Create, TIMEOUTS);
        self.push(diags, planned_state, None, Purpose::Create, timeout)
            .await
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        if planned_state.pushed_paths.is_value() {
            // Nothing to push (e.g. only `ssh` or `timeouts` changed).
            return Some((planned_state, planned_private_state));
        }
        let timeout = timeouts::get(&planned_state.timeouts, Operation::Update, TIMEOUTS);
        let pinned = prior_state.host_key.as_ref_option().cloned();
        self.push(diags, planned_state, pinned, Purpose::Update, timeout)
            .await
    }

    async fn destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        // Only forget: the cache keeps what was pushed.
        Some(())
    }
}
