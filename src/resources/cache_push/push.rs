//! One push, step by step, on a connected builder: one remote command takes
//! the `source` tree, builds (one flake evaluation) and describes the
//! closure; then each destination is asked what it lacks of the closure
//! (after the filters), and only that is uploaded, destination by
//! destination. Each step's failure names the host, the step and the tail of
//! the remote output (for a build, the end of the build log).

use std::collections::BTreeMap;

use tf_provider::AttributePath;

use crate::cache::cachix;
use crate::nix::build_output::{out_paths_of, parse_path_info, Closure, PathInfo};
use crate::secrets::Secret;
use crate::ssh::{Remote, SshError};

use super::closure::{Filters, Graph};
use super::destinations::{Destination, Kind};
pub use super::evaluate::Failure;
use super::evaluate::{run_with_source, Job, Mode};

pub struct Request {
    pub job: Job,
    /// The out paths the plan evaluated, if it did: the build must produce
    /// exactly these.
    pub planned_out_paths: Option<Vec<String>>,
    pub destinations: Vec<Destination>,
    pub filters: Filters,
    /// The push's time limit: how long an uploaded tree stays leased.
    pub time_limit: std::time::Duration,
}

pub struct Outcome {
    pub source_hash: Option<String>,
    pub out_paths: Vec<String>,
    pub closure: Closure,
    /// The references among the closure paths, when filters are set.
    pub graph: Option<Graph>,
    /// Per destination (by name): how many paths this push uploaded there.
    pub pushed: BTreeMap<String, usize>,
    pub cache_url: Option<String>,
    /// Why the `skip_upstream` caches could not be asked, if they could not:
    /// they counted as serving nothing.
    pub upstream_error: Option<String>,
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

/// What the build step printed: the out paths (in installable order; outputs
/// of one installable in output-name order; duplicates once) and the
/// closure's path infos. (`run_with_source` has placed the `source` tree.)
struct Built {
    out_paths: Vec<String>,
    infos: Vec<PathInfo>,
}

fn parse_built(text: &str) -> Result<Built, String> {
    let mut built = Vec::new();
    let mut infos = None;
    for line in text.lines() {
        let line = line.trim_start_matches('\r');
        if let Some(rest) = line.strip_prefix("built\t") {
            let (index, json) = rest
                .split_once('\t')
                .and_then(|(i, json)| Some((i.parse::<usize>().ok()?, json)))
                .ok_or_else(|| format!("unexpected line `{line}`"))?;
            built.push((index, out_paths_of(json)?));
        } else if let Some(json) = line.strip_prefix("closure\t") {
            infos = Some(parse_path_info(json)?);
        }
    }
    let infos = infos.ok_or("no closure description in the output")?;
    built.sort_by_key(|(index, _)| *index);
    let mut out_paths: Vec<String> = Vec::new();
    for path in built.into_iter().flat_map(|(_, paths)| paths) {
        if !out_paths.contains(&path) {
            out_paths.push(path);
        }
    }
    if out_paths.is_empty() {
        return Err("nix build reported no outputs".into());
    }
    Ok(Built { out_paths, infos })
}

/// Take the source (uploading it if the builder lacks it), build, describe
/// the closure: one remote command when the builder has the tree.
async fn build(
    remote: &Remote,
    request: &Request,
) -> Result<(Option<String>, Vec<String>, Vec<PathInfo>), Failure> {
    // The lease outlives the push's own time limit by a margin.
    let seconds = request.time_limit.as_secs() + 600;
    let (text, source_hash) =
        run_with_source(remote, Mode::Build, &request.job, seconds, None).await?;
    let Built { out_paths, infos } = parse_built(&text).map_err(|e| {
        Failure::new(
            "Unexpected build output",
            e,
            AttributePath::new("installables"),
        )
    })?;
    check_planned(request.planned_out_paths.as_deref(), &out_paths)?;
    Ok((source_hash, out_paths, infos))
}

/// A build whose outputs are not those the plan evaluated (an impure
/// derivation, or an input that moved between plan and apply) is an error:
/// the plan promised those paths.
fn check_planned(planned: Option<&[String]>, built: &[String]) -> Result<(), Failure> {
    match planned {
        Some(planned) if planned != built => Err(Failure::new(
            "The build's outputs differ from the plan's",
            format!(
                "the plan evaluated the installables to\n  {}\nbut the build produced\n  {}\nAn input changed between plan and apply (an unlocked flake input, a moved branch), or the build is impure. Run `terraform plan` again; nothing was uploaded.",
                planned.join("\n  "),
                built.join("\n  ")
            ),
            AttributePath::new("installables"),
        )),
        _ => Ok(()),
    }
}

async fn push_store(
    remote: &Remote,
    uri: &str,
    secret_key: Option<&str>,
    missing: &[String],
) -> Result<(), Failure> {
    let at = || AttributePath::new("store");
    // The key travels on the script's stdin: the script writes the 0600 file
    // after its EXIT trap is set, so a dropped connection cannot leave it.
    let key_file = secret_key
        .map(|_| secret_path("signing-key"))
        .unwrap_or_default();
    let content = secret_key.map(|key| format!("{}\n", key.trim()));
    let mut args = vec![uri, key_file.as_str()];
    args.extend(missing.iter().map(String::as_str));
    tracing::info!(host = %remote.endpoint(), paths = missing.len(), "nix copy --to {uri}");
    remote
        .run_script(
            "nix copy",
            crate::scripts::STORE_PUSH,
            &args,
            content.as_deref().map(str::as_bytes),
            false,
        )
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
    // Credentials, an empty line, the paths: all on the script's stdin, so
    // no credential file exists on the builder at any moment.
    let mut stdin = cachix::credentials_file(auth_token, signing_key);
    stdin.push('\n');
    for p in missing {
        stdin.push_str(p);
        stdin.push('\n');
    }
    tracing::info!(host = %remote.endpoint(), paths = missing.len(), "cachix push {cache}");
    remote
        .run_script(
            "cachix push",
            crate::scripts::CACHIX_PUSH,
            &[cache],
            Some(stdin.as_bytes()),
            false,
        )
        .await
        .map_err(|e| Failure::ssh("cachix push failed", e, at()))?;
    Ok(())
}

/// Closure paths a store lacks, asked through Nix on the builder (for a
/// store that cannot be asked over HTTP).
async fn store_lacking_via_nix(
    remote: &Remote,
    uri: &str,
    paths: &[String],
    at: AttributePath,
) -> Result<Vec<String>, Failure> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["path-info", "--json", "--store", uri];
    args.extend(paths.iter().map(String::as_str));
    // Exit status 0 even for missing paths (reported as `"valid": false`).
    let text = nix(remote, "query store", &args)
        .await
        .map_err(|e| Failure::ssh("Cannot ask the store which paths it has", e, at.clone()))?;
    let infos = parse_path_info(&text).map_err(|e| Failure::new("Cannot ask the store", e, at))?;
    Ok(paths
        .iter()
        .filter(|p| !infos.iter().any(|i| &i.path == *p && i.valid))
        .cloned()
        .collect())
}

/// Closure paths `destination` lacks (over HTTP, else through Nix on the builder).
async fn lacking(
    remote: &Remote,
    destination: &Destination,
    closure: &[String],
) -> Result<Vec<String>, Failure> {
    match destination.lacking(closure).await {
        Some(result) => result.map_err(|e| {
            Failure::new(
                "Cannot ask the destination which paths it has",
                e,
                destination.at.clone(),
            )
        }),
        None => match &destination.kind {
            Kind::Store { uri, .. } => {
                store_lacking_via_nix(remote, uri, closure, destination.at.clone()).await
            }
            Kind::Cachix { .. } => Ok(Vec::new()),
        },
    }
}

/// Upload `paths` to `destination`.
async fn upload(
    remote: &Remote,
    destination: &Destination,
    paths: &[String],
) -> Result<(), Failure> {
    match &destination.kind {
        Kind::Store {
            uri, secret_key, ..
        } => push_store(remote, uri, secret_key.as_ref().map(Secret::expose), paths).await,
        Kind::Cachix {
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
                paths,
            )
            .await
        }
    }
}

/// Where the first destination serves narinfos (`cache_url`).
async fn first_cache_url(destinations: &[Destination]) -> Result<Option<String>, Failure> {
    let Some(first) = destinations.first() else {
        return Ok(None);
    };
    match &first.kind {
        Kind::Store { presence, .. } => Ok(presence.as_ref().map(|c| c.base_url().to_string())),
        Kind::Cachix { cache, api, .. } => {
            let info = api.cache(cache).await.map_err(|e| {
                Failure::new(
                    "Cannot look up the Cachix cache",
                    e,
                    first.at.clone().attribute("cache"),
                )
            })?;
            Ok(Some(info.uri.trim_end_matches('/').to_string()))
        }
    }
}

/// Run a whole push on `remote`.
pub async fn run(remote: &Remote, request: &Request) -> Result<Outcome, Failure> {
    let (source_hash, out_paths, infos) = build(remote, request).await?;
    let closure = Closure::from_path_info(&infos).map_err(|e| {
        Failure::new(
            "Cannot list the closure",
            e,
            AttributePath::new("installables"),
        )
    })?;
    let sizes: BTreeMap<&str, u64> = infos
        .iter()
        .map(|i| (i.path.as_str(), i.nar_size))
        .collect();
    let graph = request
        .filters
        .any()
        .then(|| Graph::from_path_info(&closure.paths, &infos));
    let cache_url = first_cache_url(&request.destinations).await?;
    let mut pushed = BTreeMap::new();
    let mut upstream = None;
    let mut upstream_error = None;
    for destination in &request.destinations {
        let lacks = lacking(remote, destination, &closure.paths).await?;
        let lacked = lacks.len();
        let missing = match request
            .filters
            .to_get(&closure.paths, graph.as_ref(), lacks.clone(), &mut upstream)
            .await
        {
            Ok(missing) => missing,
            Err(e) => {
                // Uploading too much is safe; leaving the cache incomplete is not.
                tracing::warn!(
                    "cannot ask the skip_upstream caches ({e}): they count as serving nothing"
                );
                upstream_error = Some(e.to_string());
                upstream = Some(Default::default());
                request
                    .filters
                    .to_get(&closure.paths, graph.as_ref(), lacks, &mut upstream)
                    .await
                    .unwrap_or_default()
            }
        };
        let bytes: u64 = missing.iter().filter_map(|p| sizes.get(p.as_str())).sum();
        tracing::info!(
            host = %remote.endpoint(),
            destination = %destination.name,
            checked = closure.paths.len(),
            lacking = lacked,
            missing = missing.len(),
            "{}: checked {} closure paths, lacks {lacked}, must get {} ({bytes} NAR bytes)",
            destination.name,
            closure.paths.len(),
            missing.len(),
        );
        if !missing.is_empty() {
            upload(remote, destination, &missing).await?;
            tracing::info!(
                host = %remote.endpoint(),
                destination = %destination.name,
                uploaded = missing.len(),
                bytes,
                "{}: uploaded {} paths, {bytes} NAR bytes",
                destination.name,
                missing.len(),
            );
        }
        pushed.insert(destination.name.clone(), missing.len());
    }
    Ok(Outcome {
        source_hash,
        out_paths,
        closure,
        graph,
        pushed,
        cache_url,
        upstream_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_build_step() {
        let text = "built\t1\t[{\"drvPath\":\"/nix/store/54832j4wwvg1bh9rgbqp8nkfy9h69qcp-nbt-app.drv\",\"outputs\":{\"out\":\"/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app\"}}]\nbuilt\t0\t[{\"drvPath\":\"/nix/store/4bxa4ys6dya3qksr6fbfqqcvq6mc89kj-nbt-tool.drv\",\"outputs\":{\"out\":\"/nix/store/am9hm5lmdblnf9qbkmsk7dhq8glcqf46-nbt-tool\"}}]\nclosure\t[{\"path\":\"/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app\",\"narSize\":5}]\n";
        {
            let Built { out_paths, infos } = parse_built(text).unwrap();
            {
                assert_eq!(
                    out_paths,
                    [
                        "/nix/store/am9hm5lmdblnf9qbkmsk7dhq8glcqf46-nbt-tool",
                        "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app"
                    ],
                    "installable order"
                );
                assert_eq!(infos[0].nar_size, 5);
            }
        }
        assert!(parse_built("closure\t[]\n").is_err(), "no outputs");
    }
}
