//! Resource `nixbuild_cache_push`: build flake installables on a builder and
//! upload their closure to a binary cache (any `nix copy --to` store, or
//! Cachix through its CLI), skipping what the cache already has.
//!
//! - [`validate`]: plan-time checks of every argument;
//! - [`source`]: the local `source` tree, its content hash and tar stream;
//! - [`evaluate`]: what to build, and the remote step that builds it or
//!   (at plan time, and for `nixbuild_flake_outputs`) only evaluates it;
//! - [`plan_eval`]: the plan's evaluation, bounded and optional;
//! - [`push`]: the remote steps of one push;
//! - [`destinations`]: the `store` blocks and the `cachix` block, and asking
//!   each over HTTP what it lacks;
//! - [`closure`]: the `exclude` / `skip_upstream` filters (what a destination
//!   must hold).
//!
//! Read asks every destination about every closure path it must hold
//! (bounded parallel narinfo `HEAD`s, Cachix's batch endpoint); a lost path
//! sets `missing_paths`, which plans an in-place update that uploads what is
//! missing. Destroy
//! only forgets the push: nothing is deleted from the cache. Secrets (signing
//! keys, Cachix tokens) are sensitive, travel to the builder in 0600 files and
//! are represented in private state only by a salted HMAC, to notice rotation.

mod closure;
mod destinations;
pub mod evaluate;
mod plan_eval;
mod push;
pub mod source;
pub mod upgrade;
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

use crate::cache::http;
use crate::cache::store;
use crate::context::{
    Context, KeysSeen, Prior, Purpose, Route, SeenKeys, Shared, SshBlock, Target,
};
use crate::resources::timeouts::{self, Defaults, Operation, Timeouts};
use crate::secrets::Secret;
use crate::tfschema::{or_diag, schema_of, Block, BlockList, Computed, Optional, Required};

pub use closure::compile_exclude;
pub use destinations::{lacking_at, netrc_auth};
pub use validate::{check_flake_ref, check_installable, validate_job};

/// Default `source_keep`: uploaded trees a builder keeps.
pub const SOURCE_KEEP: i64 = 5;

/// Default `timeouts.create` / `timeouts.update`.
/// A push builds and uploads: an hour by default.
pub const TIMEOUTS: Defaults = Defaults {
    create: Duration::from_secs(60 * 60),
    update: Duration::from_secs(60 * 60),
    delete: Duration::from_secs(60),
};

pub(crate) type Strings = Value<Vec<Value<String>>>;
/// A number per destination name (`store.uri`, or `cachix:NAME`).
type Counts = Value<BTreeMap<String, Value<i64>>>;

/// Push with `nix copy --to` to any store Nix can write. Repeat the block to push to several stores (each gets only what it lacks); it can be combined with one `cachix` block.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(default)]
pub struct StoreDest {
    /// Destination store, as `nix copy --to` takes it: `https://…`/`http://…` (HTTP PUT), `s3://bucket?…`, `file:///dir`, `ssh-ng://user@host`, `ssh://…`, `gs://…`. Each `store` block names a different URI; the URI is the destination's key in `pushed_paths_by_destination` and `missing_paths_by_destination`. Changing it plans a new push.
    #[schemars(with = "Required<String>")]
    pub uri: Value<String>,
    /// Binary-cache secret key (`name:base64`, as `nix-store --generate-binary-cache-key` writes) to sign the uploaded paths with. It travels to the builder in a 0600 file that is removed after the push; it is never on a command line. Paths the cache already has are not re-signed. It is kept in the state (marked sensitive); `secret_key_wo` keeps it out.
    #[schemars(with = "Optional<Secret>")]
    pub secret_key: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): the signing key, used like `secret_key`, but never stored in the state or the plan. A new value alone does not push again (it may differ on every run, e.g. from an ephemeral resource); adding or removing it, or a new `secret_key_wo_version`, plans a push with the key then in effect, as a rotated secret does. Conflicts with `secret_key`.
    #[schemars(with = "Optional<Secret>")]
    pub secret_key_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans a push that signs with the current `secret_key_wo`. Only with `secret_key_wo`.
    #[schemars(with = "Optional<i64>")]
    pub secret_key_wo_version: Value<i64>,
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

/// Builds flake installables on a builder over SSH and uploads their closure to binary caches: any store `nix copy --to` writes (`store` blocks, repeatable) and/or Cachix (`cachix` block). Each destination gets only the paths it lacks. What a destination must hold is the closure of `out_paths`, less the paths `exclude` or `skip_upstream` filter out that no kept path references: Nix refuses to add a path to a binary cache that lacks its references, so a filtered path that a kept path depends on is uploaded anyway. On refresh, every destination is asked about every path it must hold (narinfo `HEAD` requests, a bounded number at a time over kept-alive connections; Cachix through its batch narinfo endpoint); a path a cache lost, out path or dependency, plans an update that uploads only what is missing. An unreachable cache is a warning. Destroying the resource only removes it from the state: nothing is deleted from any cache.
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
    /// What to build. With `flake` or `source`: attribute paths inside that flake, as written after `#` (`hello`, `packages.x86_64-linux.hello`, `hello^out,dev`, `homeConfigurations."dev@workstation".activationPackage`). Without either: full installables (`nixpkgs#hello`, `git+https://…?rev=…#homeConfigurations."dev@workstation".activationPackage`, `/nix/store/…-x.drv^out`). A name that is not a plain identifier goes in double quotes, written as in the Nix language: any character, with Nix's escapes `\"`, `\\`, `\${` (in HCL, escape `"` and `\` once more and write `$${` for `${`); the provider hands it to `nix build` in the form Nix's command line reads (percent-encoding what a URL fragment cannot carry), so `%` is a literal percent sign. Refused at plan time: an unclosed quote, an empty name, an unescaped `${` (an interpolation), and a name holding `"`, which no installable can select. Changing them plans a new push.
    #[schemars(with = "Required<Vec<String>>")]
    pub installables: Strings,
    /// Extra arguments for `nix build`, e.g. `["--option", "sandbox", "false"]`. Each element is one argument. Changing them plans a new push.
    #[schemars(with = "Optional<Vec<String>>")]
    pub build_args: Strings,
    /// Arbitrary values; changing any plans a new push (like `null_resource.triggers`).
    #[schemars(with = "Optional<BTreeMap<String, String>>")]
    pub triggers: Value<BTreeMap<String, Value<String>>>,
    // Repeatable; a 0.1.0 state (at most one block) decodes unchanged.
    #[serde(with = "destinations::repeated_block")]
    #[schemars(with = "BlockList<StoreDest>")]
    pub store: Value<Vec<StoreDest>>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<CachixDest>")]
    pub cachix: Value<CachixDest>,
    /// Regular expressions (Rust `regex` syntax) matched against the name of each closure path, the part after `<hash>-` (`hello-2.12`, `glibc-2.39-52`), anywhere in the name unless anchored with `^…$`. A matching path is neither uploaded nor required on refresh unless a kept path references it, directly or through other paths: a binary cache must hold every reference of a path it holds (Nix refuses the upload otherwise), so such a path is uploaded anyway. In practice this leaves out out paths and their private dependencies (e.g. `-doc$` outputs of `installables = ["hello^*"]`). Changing the list plans a push of what is then missing.
    #[schemars(with = "Optional<Vec<String>>")]
    pub exclude: Strings,
    /// Binary cache URLs (`https://…` or `http://…`, e.g. `https://cache.nixos.org`) that clients also substitute from. A closure path one of them serves (its `<hash>.narinfo` answers) is not uploaded and not required on refresh, unless a kept path references it (the same rule as `exclude`: a path the destination must hold needs its whole closure there). They are asked only when a destination lacks something: a path that disappears upstream and is missing at a destination plans a push. Unreachable upstream caches count as not serving anything during a push (it uploads everything the destinations lack, with a warning naming the cache), and are a warning during refresh (the missing count stays as it was).
    #[schemars(with = "Optional<Vec<String>>")]
    pub skip_upstream: Strings,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<Timeouts>")]
    pub timeouts: Value<Timeouts>,
    /// Evaluate the installables on the builder at plan time (`nix build --dry-run`: nothing is built or fetched), so the plan shows `out_paths` and `out_paths_missing_by_destination`, and a change of `source`, `flake` or `installables` that leaves the out paths as they were pushes nothing (only `source_hash` changes in place). It runs when the plan would push, when those inputs changed, and on every plan when the reference is not locked (a `flake` without a revision or `narHash`, such as `github:owner/repo`), so a moved upstream shows as new out paths. It needs the builder's host key at plan time (the pin in the state, or `ssh.host_key`); a builder that does not answer within its share of the time (a tenth of `timeouts.update`, or `timeouts.create` for a new push; 6 minutes by default), or whose evaluation fails, gives a warning and leaves the values unknown, as without it. A `source` tree the builder lacks is uploaded at plan time (the same content-addressed copy the push uses). Default `true`; `false` plans as before: any change of those inputs pushes again, and out paths are known after apply.
    #[schemars(with = "Optional<bool>")]
    pub evaluate_at_plan: Value<bool>,
    // Computed.
    /// Identifier of this push (a hash of the destination and the out paths).
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// Public host key the builder presented on the first push, pinned: later connections must present it.
    #[schemars(with = "Computed<String>")]
    pub host_key: Value<String>,
    /// Public host key of the bastion (`ssh.bastion_host`), pinned on the first push through it (or `ssh.bastion_host_key`): later connections through that bastion must present it. Null without a bastion.
    #[schemars(with = "Computed<String>")]
    pub bastion_host_key: Value<String>,
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
    /// How many store paths the last push uploaded, summed over destinations; paths a destination already had are not counted (a fully cached closure gives 0).
    #[schemars(with = "Computed<i64>")]
    pub pushed_paths: Value<i64>,
    /// How many closure paths the destinations lacked at the last refresh, summed over destinations (only paths a destination must hold: see `exclude` and `skip_upstream`). Non-zero plans an update that uploads what is missing; the plan shows the count. A non-HTTP store without `public_url` is not checked on refresh.
    #[schemars(with = "Computed<i64>")]
    pub missing_paths: Value<i64>,
    /// `pushed_paths` per destination, keyed by `store.uri` or `cachix:<cache>`.
    #[schemars(with = "Computed<BTreeMap<String, i64>>")]
    pub pushed_paths_by_destination: Counts,
    /// `missing_paths` per destination at the last refresh, keyed like `pushed_paths_by_destination` (destinations that cannot be checked over HTTP keep their last value).
    #[schemars(with = "Computed<BTreeMap<String, i64>>")]
    pub missing_paths_by_destination: Counts,
    /// How many of `out_paths` each destination lacked when the plan evaluated them (keyed like `pushed_paths_by_destination`; a destination that cannot be asked over HTTP is left out): known in the plan that pushes them, so a pipeline can read what a push would upload before the apply. It counts the out paths, not their dependencies, which only the build knows. Null when the push was planned without evaluation (`evaluate_at_plan = false`, or a builder that did not answer).
    #[schemars(with = "Computed<BTreeMap<String, i64>>")]
    pub out_paths_missing_by_destination: Counts,
    /// URL where the first destination serves narinfos: the HTTP(S) store URI, `store.public_url`, or the Cachix cache's URI. Null for a non-HTTP store without `public_url`.
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
    /// The references among `closure_paths`, kept when `exclude` or
    /// `skip_upstream` is set (the refresh needs them to apply the filters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<closure::Graph>,
    /// A random word each refresh writes: it keys the record of the plan's
    /// evaluation that the apply's own plan reuses (see `plan_eval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<String>,
}

/// What `state` builds, and from where.
fn job(state: &CachePushState) -> evaluate::Job {
    let origin = match (&state.flake, &state.source) {
        (Value::Value(f), _) => evaluate::Origin::Flake(f.clone()),
        (_, Value::Value(s)) => evaluate::Origin::Source {
            path: s.clone(),
            planned_hash: state.source_hash.as_ref_option().cloned(),
            keep: state
                .source_keep
                .as_ref_option()
                .map_or(SOURCE_KEEP, |n| *n)
                .max(0) as u64,
        },
        _ => evaluate::Origin::None,
    };
    evaluate::Job {
        origin,
        installables: strings(&state.installables),
        build_args: strings(&state.build_args),
    }
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

/// The known elements of a list attribute.
pub(crate) fn strings(list: &Strings) -> Vec<String> {
    list.as_ref_option()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_ref_option().cloned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn known_strings(list: Vec<String>) -> Strings {
    Value::Value(list.into_iter().map(Value::Value).collect())
}

/// The secrets a push of `state` would use (resource level first, then the
/// provider's), or `None` when one is not known yet.
fn effective_secrets(
    state: &CachePushState,
    configured: &Context,
) -> Option<Vec<(String, Option<String>)>> {
    if state.store.is_unknown() || state.cachix.is_unknown() {
        return None;
    }
    let mut secrets = Vec::new();
    if let Value::Value(c) = &state.cachix {
        secrets.push((
            "cachix_auth_token".to_string(),
            configured.cachix.auth_token(&c.auth_token).known()?,
        ));
        secrets.push((
            "cachix_signing_key".to_string(),
            configured.cachix.signing_key(&c.signing_key).known()?,
        ));
    }
    for (i, s) in destinations::stores(state).iter().enumerate() {
        // The first store keeps 0.1.0's name, so its fingerprint still matches.
        let name = match i {
            0 => "store_secret_key".to_string(),
            i => format!("store_secret_key[{i}]"),
        };
        secrets.push((name, store_key_fingerprint_input(s)?));
    }
    Some(secrets)
}

/// What a store's signing key contributes to the secrets' fingerprint: the
/// key itself, or for `secret_key_wo` (not in the prior state, and possibly
/// different on every run) only that it is write-only and its version.
/// `None` while unknown.
fn store_key_fingerprint_input(store: &StoreDest) -> Option<Option<String>> {
    match (&store.secret_key_wo, &store.secret_key_wo_version) {
        (Value::Null, _) => match &store.secret_key {
            Value::Unknown => None,
            v => Some(v.as_ref_option().map(|k| k.expose().to_string())),
        },
        (_, Value::Unknown) => None,
        (_, version) => Some(Some(format!(
            "\0write-only version {}",
            version
                .as_ref_option()
                .map_or("none".into(), i64::to_string)
        ))),
    }
}

/// Which destinations these are (kind and address, in order): a change
/// pushes again. One store keeps 0.1.0's identity (`store URI`).
fn destination_identity(state: &CachePushState) -> Value<String> {
    if state.store.is_unknown() || state.cachix.is_unknown() {
        return Value::Unknown;
    }
    let mut parts = Vec::new();
    for s in destinations::stores(state) {
        match &s.uri {
            Value::Value(u) => parts.push(format!("store {u}")),
            Value::Unknown => return Value::Unknown,
            Value::Null => {}
        }
    }
    if let Value::Value(c) = &state.cachix {
        match &c.cache {
            Value::Value(n) => parts.push(format!("cachix {n}")),
            Value::Unknown => return Value::Unknown,
            Value::Null => {}
        }
    }
    if parts.is_empty() {
        Value::Null
    } else {
        Value::Value(parts.join("\n"))
    }
}

/// `cache_url` as far as it is known at plan time: that of the first
/// destination; for a store, the presence URL (or null); for Cachix,
/// whatever the API will say (unknown).
fn planned_cache_url(state: &CachePushState) -> Value<String> {
    match &state.store {
        Value::Value(stores) if !stores.is_empty() => match (&stores[0].uri, &stores[0].public_url)
        {
            (Value::Value(uri), Value::Value(url)) => store::presence_url(uri, Some(url)).into(),
            (Value::Value(uri), Value::Null) => store::presence_url(uri, None).into(),
            _ => Value::Unknown,
        },
        _ => Value::Unknown,
    }
}

/// The computed attributes a push sets: unknown until it ran (the plan's
/// evaluation may then know the out paths).
fn plan_push(state: &mut CachePushState) {
    state.out_paths = Value::Unknown;
    state.closure_paths = Value::Unknown;
    state.closure_nar_size = Value::Unknown;
    state.pushed_paths = Value::Unknown;
    state.missing_paths = Value::Value(0);
    state.pushed_paths_by_destination = Value::Unknown;
    state.missing_paths_by_destination = Value::Unknown;
    state.out_paths_missing_by_destination = Value::Unknown;
}

fn fingerprint(salt: &str, secrets: &[(String, Option<String>)]) -> String {
    let named: Vec<(&str, Option<String>)> = secrets
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    crate::secrets::fingerprint(salt, &named)
}

fn counts(map: &BTreeMap<String, usize>) -> Counts {
    Value::Value(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::Value(*v as i64)))
            .collect(),
    )
}

pub struct CachePushResource {
    shared: Arc<Shared>,
}

impl CachePushResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        // No HTTP client yet: building one loads the system's CA
        // certificates, and most provider processes (schema, validate)
        // never push.
        Self { shared }
    }

    fn filters(&self, state: &CachePushState) -> closure::Filters {
        closure::Filters::new(
            &http::client(),
            &strings(&state.exclude),
            &strings(&state.skip_upstream),
        )
    }

    fn request(
        &self,
        state: &CachePushState,
        configured: &Context,
        time_limit: Duration,
        diags: &mut Diagnostics,
    ) -> Option<push::Request> {
        let destinations = destinations::resolve(state, configured, &http::client());
        if destinations.is_empty() {
            diags.error_short(
                "No destination: add a `store` or `cachix` block",
                AttributePath::new("store"),
            );
            return None;
        }
        Some(push::Request {
            job: job(state),
            planned_out_paths: state
                .out_paths
                .is_value()
                .then(|| strings(&state.out_paths)),
            destinations,
            filters: self.filters(state),
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
        // The keys this push connected with, kept if the push then fails.
        let seen = KeysSeen::default();
        let work = async {
            let target = Target::new(&host, &state.ssh)
                .pinned(pinned_host_key.as_deref())
                .pinned_bastion(state.bastion_host_key.as_ref_option().map(String::as_str));
            let remote = configured.connect_or_fail(&target, purpose, diags).await?;
            seen.note(&remote);
            match push::run(&remote, &request).await {
                Ok(outcome) => Some(outcome),
                Err(f) => {
                    diags.error(f.summary, f.detail, f.attribute);
                    None
                }
            }
        };
        let outcome = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                diags.error(
                    "Push timed out",
                    format!(
                        "the push to {host} did not finish within {}; raise `timeouts` or look at the builder",
                        humantime::format_duration(timeout)
                    ),
                    AttributePath::new("timeouts"),
                );
                None
            }
        };
        let Some(outcome) = outcome else {
            let pins = seen.kept_by_failed(purpose)?;
            record_keys(&mut state, pins);
            state.id = Value::Value(format!("failed-{}", crate::secrets::random_salt()));
            for list in [&mut state.out_paths, &mut state.closure_paths] {
                if !list.is_value() {
                    *list = Value::Null;
                }
            }
            for number in [&mut state.closure_nar_size, &mut state.pushed_paths] {
                if !number.is_value() {
                    *number = Value::Null;
                }
            }
            if !state.cache_url.is_value() {
                state.cache_url = Value::Null;
            }
            // Terraform refuses unknown values after an apply, also a failed one.
            for counts in [
                &mut state.pushed_paths_by_destination,
                &mut state.missing_paths_by_destination,
                &mut state.out_paths_missing_by_destination,
            ] {
                if !counts.is_value() {
                    *counts = Value::Null;
                }
            }
            return Some((state, None));
        };
        let pins = seen.take().expect("a push that ran was connected");
        if let Some(e) = &outcome.upstream_error {
            diags.warning(
                "Cannot ask the skip_upstream caches",
                format!(
                    "{e}. They counted as serving nothing: this push uploaded every path the \
                     destinations lacked, as without `skip_upstream` (more than needed, never \
                     less: clients can substitute the whole closure from the destinations)."
                ),
                AttributePath::new("skip_upstream"),
            );
        }
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
        record_keys(&mut state, pins);
        state.out_paths = known_strings(outcome.out_paths);
        state.closure_nar_size = Value::Value(outcome.closure.nar_size as i64);
        state.closure_paths = known_strings(outcome.closure.paths);
        state.pushed_paths = Value::Value(outcome.pushed.values().sum::<usize>() as i64);
        state.pushed_paths_by_destination = counts(&outcome.pushed);
        state.missing_paths = Value::Value(0);
        state.missing_paths_by_destination =
            counts(&outcome.pushed.keys().map(|k| (k.clone(), 0)).collect());
        state.cache_url = outcome.cache_url.into();
        // What the plan's evaluation saw, if it ran.
        if !state.out_paths_missing_by_destination.is_value() {
            state.out_paths_missing_by_destination = Value::Null;
        }
        let salt = crate::secrets::random_salt();
        let private = effective_secrets(&state, &configured).map(|secrets| PushPrivate {
            secrets: fingerprint(&salt, &secrets),
            salt,
            graph: outcome.graph,
            refreshed: Some(crate::secrets::random_hex()),
        });
        Some((state, private))
    }
}

/// Record the keys a push's connection verified.
fn record_keys(state: &mut CachePushState, keys: SeenKeys) {
    state.host_key = Value::Value(keys.host_key);
    state.bastion_host_key = keys.bastion_host_key.into();
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
        let mut private = private_state.unwrap_or_default();
        private.refreshed = Some(crate::secrets::random_hex());
        let private_state = Some(private);
        let mut closure = strings(&state.closure_paths);
        if closure.is_empty() {
            closure = strings(&state.out_paths);
        }
        if closure.is_empty() {
            return Some((state, private_state));
        }
        let configured = self.shared.get(diags)?;
        let destinations = destinations::resolve(&state, &configured, &http::client());
        let (total, per) = destinations::refresh(
            &destinations,
            &self.filters(&state),
            &closure,
            private_state.as_ref().and_then(|p| p.graph.as_ref()),
            &state.missing_paths_by_destination,
            crate::context::policy::READ_COMMAND_BUDGET,
            diags,
        )
        .await;
        state.missing_paths = Value::Value(total);
        state.missing_paths_by_destination = per;
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
        let configured = self.shared.get(diags)?;
        let pins = configured.plan_pins(&Route::new(&state.host, &state.ssh), None, diags)?;
        (state.host_key, state.bastion_host_key) = (pins.host_key, pins.bastion_host_key);
        state.id = Value::Unknown;
        plan_push(&mut state);
        let budget = plan_eval::budget(&state, Operation::Create);
        let evaluated = plan_eval::run(&state, None, &configured, budget, diags)
            .await
            .ok()?;
        if let Some(e) = evaluated {
            state.out_paths = known_strings(e.out_paths);
            state.out_paths_missing_by_destination = e.missing;
        }
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
        // What may or may not change the out paths (the plan's evaluation
        // tells, where it runs) …
        let inputs_changed = state.source_hash != prior_state.source_hash
            || state.flake != prior_state.flake
            || state.installables != prior_state.installables;
        // … and what pushes again whatever they are.
        let forced = state.build_args != prior_state.build_args
            || state.triggers != prior_state.triggers
            || destination_changed;
        // Other filters change what the destinations must hold.
        let filters_changed = strings(&state.exclude) != strings(&prior_state.exclude)
            || strings(&state.skip_upstream) != strings(&prior_state.skip_upstream);

        // Push again when the inputs changed, the cache lost a path or a secret rotated.
        let configured = self.shared.get(diags)?;
        let rotated = match (&prior_private_state, effective_secrets(&state, &configured)) {
            // Only a refresh's mark: no secrets were recorded.
            (Some(private), _) if private.salt.is_empty() => false,
            (Some(private), Some(secrets)) => {
                fingerprint(&private.salt, &secrets) != private.secrets
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        let lost = matches!(prior_state.missing_paths, Value::Value(n) if n > 0);
        let prior = Prior::new(
            &prior_state.host,
            &prior_state.ssh,
            &prior_state.host_key,
            &prior_state.bastion_host_key,
        );
        let pins =
            configured.plan_pins(&Route::new(&state.host, &state.ssh), Some(&prior), diags)?;
        (state.host_key, state.bastion_host_key) = (pins.host_key, pins.bastion_host_key);

        let pushes_anyway = forced || filters_changed || lost || rotated;
        let evaluated = if pushes_anyway || inputs_changed || plan_eval::is_unlocked(&state) {
            let budget = plan_eval::budget(&state, Operation::Update);
            let refreshed = prior_private_state
                .as_ref()
                .and_then(|p| p.refreshed.as_deref());
            plan_eval::run(&state, refreshed, &configured, budget, diags)
                .await
                .ok()?
        } else {
            None
        };
        // Changed inputs whose out paths stay as they were build nothing;
        // unchanged (unlocked) inputs whose out paths moved push them.
        let outputs_changed = match &evaluated {
            Some(e) => e.out_paths != strings(&prior_state.out_paths),
            None => inputs_changed,
        };
        let changed = forced || outputs_changed;
        let again = changed || filters_changed || lost || rotated;
        if again {
            plan_push(&mut state);
            if let Some(e) = evaluated {
                state.out_paths = known_strings(e.out_paths);
                state.out_paths_missing_by_destination = e.missing;
            }
        }
        if changed {
            // The id names the destination and the out paths.
            state.id = Value::Unknown;
        }
        // A changed public_url moves where presence is checked.
        let cache_url = planned_cache_url(&state);
        if !destinations::stores(&state).is_empty() {
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
            // Nothing to push (e.g. only `ssh` or `timeouts` changed): no
            // connection, so a new bastion has no key pinned yet.
            let mut state = planned_state;
            if !state.bastion_host_key.is_value() {
                state.bastion_host_key = Value::Null;
            }
            return Some((state, planned_private_state));
        }
        let timeout = timeouts::get(&planned_state.timeouts, Operation::Update, TIMEOUTS);
        let pinned = prior_state.host_key.as_ref_option().cloned();
        self.push(diags, planned_state, pinned, Purpose::Update, timeout)
            .await
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        // Only forget: the cache keeps what was pushed. A replacement on the
        // same host (a tainted push) inherits the pins within this apply.
        let configured = self.shared.get(diags)?;
        if let Value::Value(host) = &prior_state.host {
            let target = Target::new(host, &prior_state.ssh)
                .pinned(prior_state.host_key.as_ref_option().map(String::as_str))
                .pinned_bastion(
                    prior_state
                        .bastion_host_key
                        .as_ref_option()
                        .map(String::as_str),
                );
            configured.remember_pin(&target);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(key: Value<Secret>, wo: Value<Secret>, version: Value<i64>) -> StoreDest {
        StoreDest {
            uri: Value::Value("http://127.0.0.1:8750".into()),
            secret_key: key,
            secret_key_wo: wo,
            secret_key_wo_version: version,
            ..Default::default()
        }
    }

    fn key(k: &str) -> Value<Secret> {
        Value::Value(Secret::new(k))
    }

    /// A plain key counts by its value (0.1.0's rule: a rotated key pushes
    /// again); a write-only key by its presence and version only, so the
    /// plan (the value in the proposed state) and a refresh of the state (no
    /// value) agree, and a value that differs on every run plans nothing.
    #[test]
    fn a_write_only_key_counts_by_its_version() {
        let input = |s: &StoreDest| store_key_fingerprint_input(s).unwrap();
        assert_eq!(
            input(&store(key("k:1"), Value::Null, Value::Null)),
            Some("k:1".to_string())
        );
        assert_eq!(input(&store(Value::Null, Value::Null, Value::Null)), None);
        let v1 = input(&store(Value::Null, key("k:1"), Value::Value(1)));
        assert_eq!(v1, input(&store(Value::Null, key("k:2"), Value::Value(1))));
        assert!(!v1.as_deref().unwrap().contains("k:1"));
        assert_ne!(v1, input(&store(Value::Null, key("k:1"), Value::Value(2))));
        assert_ne!(v1, input(&store(Value::Null, key("k:1"), Value::Null)));
        assert_ne!(v1, input(&store(key("k:1"), Value::Null, Value::Null)));
        assert!(
            store_key_fingerprint_input(&store(Value::Unknown, Value::Null, Value::Null)).is_none()
        );
        assert!(
            store_key_fingerprint_input(&store(Value::Null, key("k"), Value::Unknown)).is_none()
        );
        // An unknown write-only value is still a write-only key of that version.
        assert_eq!(
            v1,
            input(&store(Value::Null, Value::Unknown, Value::Value(1)))
        );
    }
}
