//! One push, step by step, on a connected builder: put the source in place,
//! build, describe the closure, ask the destination what it lacks, upload
//! only that. Each step's failure names the host, the step and the tail of the
//! remote output (for a build, the end of the build log).

use tf_provider::AttributePath;

use crate::cache::cachix::{self, CachixApi};
use crate::cache::http::{HttpCache, HttpError};
use crate::nix::build_output::{out_paths_of, parse_path_info, Closure};
use crate::nix::store_path::StorePath;
use crate::secrets::Secret;
use crate::ssh::{Remote, SshError};

use super::source;

/// Where the closure goes, with everything resolved (secrets included).
pub enum Destination {
    Store {
        uri: String,
        secret_key: Option<Secret>,
        /// Where narinfos can be asked for over HTTP, if anywhere.
        presence: Option<HttpCache>,
    },
    Cachix {
        cache: String,
        api: CachixApi,
        auth_token: Option<Secret>,
        signing_key: Option<Secret>,
    },
}

/// Where the installables come from.
pub enum Origin {
    /// Installables are complete as given.
    None,
    Flake(String),
    /// A local directory and its content hash as planned (if known); `keep`:
    /// how many uploaded trees the builder keeps (0: no pruning).
    Source {
        path: String,
        planned_hash: Option<String>,
        keep: u64,
    },
}

pub struct Request {
    pub origin: Origin,
    pub installables: Vec<String>,
    pub build_args: Vec<String>,
    pub destination: Destination,
    /// The push's time limit: how long an uploaded tree stays leased.
    pub time_limit: std::time::Duration,
}

pub struct Outcome {
    pub source_hash: Option<String>,
    pub out_paths: Vec<String>,
    pub closure: Closure,
    pub pushed: usize,
    pub cache_url: Option<String>,
}

/// A failed push: what to tell the user, and which argument it concerns.
pub struct Failure {
    pub summary: String,
    pub detail: String,
    pub attribute: AttributePath,
}

impl Failure {
    fn new(summary: &str, detail: impl ToString, attribute: AttributePath) -> Self {
        Self {
            summary: summary.to_string(),
            detail: detail.to_string(),
            attribute,
        }
    }

    fn ssh(summary: &str, e: SshError, attribute: AttributePath) -> Self {
        Self::new(summary, e, attribute)
    }
}

/// Relative to the login directory, which is where SSH sessions start.
fn secret_path(kind: &str) -> String {
    format!(
        ".cache/nixbuild/secrets/{kind}-{}",
        crate::secrets::random_hex()
    )
}

async fn nix(remote: &Remote, step: &str, args: &[&str]) -> Result<String, SshError> {
    remote
        .run_script(step, crate::scripts::NIX, args, None, false)
        .await
        .map(|out| out.stdout_text())
}

/// A `source` tree placed on the builder, under a lease that keeps pruning
/// away from it until [`release_source`].
struct PlacedSource {
    flake: String,
    hash: String,
    lease: String,
}

/// Put `source` on the builder (uploading it unless a verified copy is there).
async fn place_source(
    remote: &Remote,
    path: &str,
    planned_hash: Option<&str>,
    lease_for: std::time::Duration,
) -> Result<PlacedSource, Failure> {
    let at = || AttributePath::new("source");
    let hash =
        source::content_hash(path).map_err(|e| Failure::new("Cannot read source", e, at()))?;
    let changed = |hash: &str| {
        Failure::new(
            "Source changed after the plan",
            format!("`{path}` hashes to {hash}, the plan had {}: run terraform apply again to push the current tree", planned_hash.unwrap_or_default()),
            at(),
        )
    };
    if planned_hash.is_some_and(|planned| planned != hash) {
        return Err(changed(&hash));
    }
    let lease = crate::secrets::random_hex();
    // The lease outlives the push's own time limit by a margin.
    let seconds = (lease_for.as_secs() + 600).to_string();
    let present = remote
        .run_script(
            "find source",
            crate::scripts::SOURCE,
            &["use", &hash, &lease, &seconds],
            None,
            false,
        )
        .await
        .map_err(|e| Failure::ssh("Cannot check the source on the builder", e, at()))?
        .stdout_text();
    let dir = if present.trim().is_empty() {
        let (archived_hash, tar) =
            source::archive(path).map_err(|e| Failure::new("Cannot read source", e, at()))?;
        if archived_hash != hash {
            return Err(changed(&archived_hash));
        }
        tracing::info!(host = %remote.endpoint(), bytes = tar.len(), "uploading source {hash}");
        remote
            .run_script(
                "upload source",
                crate::scripts::SOURCE,
                &["unpack", &hash],
                Some(&tar),
                false,
            )
            .await
            .map_err(|e| Failure::ssh("Cannot upload the source to the builder", e, at()))?
            .stdout_text()
    } else {
        present
    };
    let dir = dir.trim().to_string();
    if !dir.starts_with('/') {
        return Err(Failure::new(
            "Cannot place the source on the builder",
            format!("source.sh printed `{dir}`, not a directory"),
            at(),
        ));
    }
    Ok(PlacedSource {
        flake: format!("path:{dir}"),
        hash,
        lease,
    })
}

/// Drop the push's lease and prune uploaded trees beyond `keep` (0: none).
/// Best effort: a failure only delays pruning until the next push.
async fn release_source(remote: &Remote, lease: &str, keep: u64) {
    if let Err(e) = remote
        .run_script(
            "prune sources",
            crate::scripts::SOURCE,
            &["release", lease, &keep.to_string()],
            None,
            false,
        )
        .await
    {
        tracing::warn!(host = %remote.endpoint(), "cannot prune uploaded sources: {e}");
    }
}

/// Build the installables; out paths in installable order.
async fn build(
    remote: &Remote,
    installables: &[String],
    build_args: &[String],
) -> Result<Vec<String>, Failure> {
    let at = || AttributePath::new("installables");
    let mut args: Vec<&str> = vec!["build", "--json", "--no-link", "--print-build-logs"];
    args.extend(build_args.iter().map(String::as_str));
    let all = {
        let mut all = args.clone();
        all.extend(installables.iter().map(String::as_str));
        all
    };
    tracing::info!(host = %remote.endpoint(), "building {}", installables.join(" "));
    let text = nix(remote, "nix build", &all).await.map_err(|e| match e {
        SshError::CommandFailed { host, exit, tail, .. } => Failure::new(
            "Build failed",
            format!(
                "`nix build` on {host} failed (exit status {}); last lines of the build log:\n{tail}",
                exit.map_or("none".to_string(), |c| c.to_string())
            ),
            at(),
        ),
        other => Failure::ssh("Build failed", other, at()),
    })?;
    if installables.len() == 1 {
        return out_paths_of(&text)
            .map_err(|e| Failure::new("Unexpected nix build output", e, at()));
    }
    // `nix build --json` lists results by derivation, not by installable: ask
    // for each installable's outputs (already built: no build happens).
    let mut out = Vec::new();
    for (i, installable) in installables.iter().enumerate() {
        let mut one = args.clone();
        one.retain(|a| *a != "--print-build-logs");
        one.push(installable);
        let text = nix(remote, "nix build (outputs)", &one)
            .await
            .map_err(|e| Failure::ssh("Cannot read build outputs", e, at().index(i as i64)))?;
        for p in out_paths_of(&text)
            .map_err(|e| Failure::new("Unexpected nix build output", e, at().index(i as i64)))?
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

async fn closure(remote: &Remote, out_paths: &[String]) -> Result<Closure, Failure> {
    let at = || AttributePath::new("installables");
    let mut args = vec!["path-info", "--json", "--recursive"];
    args.extend(out_paths.iter().map(String::as_str));
    let text = nix(remote, "nix path-info", &args)
        .await
        .map_err(|e| Failure::ssh("Cannot list the closure", e, at()))?;
    let infos =
        parse_path_info(&text).map_err(|e| Failure::new("Cannot list the closure", e, at()))?;
    Closure::from_path_info(&infos).map_err(|e| Failure::new("Cannot list the closure", e, at()))
}

fn hashes(paths: &[String]) -> Result<Vec<String>, String> {
    paths
        .iter()
        .map(|p| StorePath::parse(p).map(|s| s.hash().to_string()))
        .collect()
}

fn http_failure(summary: &str, e: HttpError, at: AttributePath) -> Failure {
    Failure::new(summary, e, at)
}

/// Closure paths the store lacks: over HTTP when possible, else by asking the
/// store through Nix on the builder.
async fn store_missing(
    remote: &Remote,
    uri: &str,
    presence: Option<&HttpCache>,
    paths: &[String],
) -> Result<Vec<String>, Failure> {
    let at = || AttributePath::new("store").index(0).attribute("uri");
    if let Some(cache) = presence {
        let hashes = hashes(paths).map_err(|e| Failure::new("Bad store path", e, at()))?;
        let missing = cache
            .missing(&hashes)
            .await
            .map_err(|e| http_failure("Cannot ask the cache which paths it has", e, at()))?;
        return Ok(paths
            .iter()
            .zip(&hashes)
            .filter(|(_, h)| missing.contains(h))
            .map(|(p, _)| p.clone())
            .collect());
    }
    let mut args = vec!["path-info", "--json", "--store", uri];
    args.extend(paths.iter().map(String::as_str));
    // Exit status 0 even for missing paths (reported as `"valid": false`).
    let text = nix(remote, "query store", &args)
        .await
        .map_err(|e| Failure::ssh("Cannot ask the store which paths it has", e, at()))?;
    let infos =
        parse_path_info(&text).map_err(|e| Failure::new("Cannot ask the store", e, at()))?;
    Ok(paths
        .iter()
        .filter(|p| !infos.iter().any(|i| &i.path == *p && i.valid))
        .cloned()
        .collect())
}

async fn push_store(
    remote: &Remote,
    uri: &str,
    secret_key: Option<&str>,
    missing: &[String],
) -> Result<(), Failure> {
    let at = || AttributePath::new("store");
    let key_file = match secret_key {
        Some(key) => {
            let path = secret_path("signing-key");
            let content = format!("{}\n", key.trim());
            remote
                .upload(
                    "upload signing key",
                    &path,
                    "0600",
                    content.as_bytes(),
                    false,
                )
                .await
                .map_err(|e| Failure::ssh("Cannot place the signing key", e, at()))?;
            path
        }
        None => String::new(),
    };
    let mut args = vec![uri, key_file.as_str()];
    args.extend(missing.iter().map(String::as_str));
    tracing::info!(host = %remote.endpoint(), paths = missing.len(), "nix copy --to {uri}");
    remote
        .run_script("nix copy", crate::scripts::STORE_PUSH, &args, None, false)
        .await
        .map_err(|e| Failure::ssh("Upload to the store failed", e, at()))?;
    Ok(())
}

async fn push_cachix(
    remote: &Remote,
    cache: &str,
    auth_token: Option<&str>,
    signing_key: Option<&str>,
    missing: &[String],
) -> Result<(), Failure> {
    let at = || AttributePath::new("cachix");
    let creds = if auth_token.is_some() || signing_key.is_some() {
        let path = secret_path("cachix");
        remote
            .upload(
                "upload cachix credentials",
                &path,
                "0600",
                cachix::credentials_file(auth_token, signing_key).as_bytes(),
                false,
            )
            .await
            .map_err(|e| Failure::ssh("Cannot place the Cachix credentials", e, at()))?;
        path
    } else {
        String::new()
    };
    let stdin = missing.iter().map(|p| format!("{p}\n")).collect::<String>();
    tracing::info!(host = %remote.endpoint(), paths = missing.len(), "cachix push {cache}");
    remote
        .run_script(
            "cachix push",
            crate::scripts::CACHIX_PUSH,
            &[&creds, cache],
            Some(stdin.as_bytes()),
            false,
        )
        .await
        .map_err(|e| Failure::ssh("cachix push failed", e, at()))?;
    Ok(())
}

/// Run a whole push on `remote`.
pub async fn run(remote: &Remote, request: &Request) -> Result<Outcome, Failure> {
    let (base, placed, keep) = match &request.origin {
        Origin::None => (None, None, 0),
        Origin::Flake(f) => (Some(f.clone()), None, 0),
        Origin::Source {
            path,
            planned_hash,
            keep,
        } => {
            let placed =
                place_source(remote, path, planned_hash.as_deref(), request.time_limit).await?;
            (Some(placed.flake.clone()), Some(placed), *keep)
        }
    };
    let installables: Vec<String> = request
        .installables
        .iter()
        .map(|i| match &base {
            Some(flake) => format!("{flake}#{i}"),
            None => i.clone(),
        })
        .collect();
    let mut build_args = request.build_args.clone();
    if placed.is_some() {
        // The uploaded copy must stay byte for byte the tree that was hashed.
        build_args.push("--no-write-lock-file".into());
    }
    let built = build(remote, &installables, &build_args).await;
    // Nix has copied the tree into its store: the lease can go.
    if let Some(placed) = &placed {
        release_source(remote, &placed.lease, keep).await;
    }
    let out_paths = built?;
    let source_hash = placed.map(|p| p.hash);
    let closure = closure(remote, &out_paths).await?;

    let (missing, cache_url) = match &request.destination {
        Destination::Store { uri, presence, .. } => (
            store_missing(remote, uri, presence.as_ref(), &closure.paths).await?,
            presence.as_ref().map(|c| c.base_url().to_string()),
        ),
        Destination::Cachix { cache, api, .. } => {
            let at = || AttributePath::new("cachix").index(0).attribute("cache");
            let info = api
                .cache(cache)
                .await
                .map_err(|e| http_failure("Cannot look up the Cachix cache", e, at()))?;
            let hashes =
                hashes(&closure.paths).map_err(|e| Failure::new("Bad store path", e, at()))?;
            let missing = api
                .missing(cache, &hashes)
                .await
                .map_err(|e| http_failure("Cannot ask Cachix which paths it has", e, at()))?;
            let missing = closure
                .paths
                .iter()
                .zip(&hashes)
                .filter(|(_, h)| missing.contains(h))
                .map(|(p, _)| p.clone())
                .collect();
            (missing, Some(info.uri.trim_end_matches('/').to_string()))
        }
    };
    tracing::info!(
        host = %remote.endpoint(),
        closure = closure.paths.len(),
        missing = missing.len(),
        "destination lacks {} of {} closure paths",
        missing.len(),
        closure.paths.len()
    );
    if !missing.is_empty() {
        match &request.destination {
            Destination::Store {
                uri, secret_key, ..
            } => {
                push_store(
                    remote,
                    uri,
                    secret_key.as_ref().map(Secret::expose),
                    &missing,
                )
                .await?
            }
            Destination::Cachix {
                cache,
                auth_token,
                signing_key,
                ..
            } => {
                push_cachix(
                    remote,
                    cache,
                    auth_token.as_ref().map(Secret::expose),
                    signing_key.as_ref().map(Secret::expose),
                    &missing,
                )
                .await?
            }
        }
    }
    Ok(Outcome {
        source_hash,
        out_paths,
        closure,
        pushed: missing.len(),
        cache_url,
    })
}
