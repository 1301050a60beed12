//! What to build and where it comes from ([`Job`]), and the one remote step
//! that takes the `source` tree and runs Nix on it (`push_build.sh`), in its
//! two modes: the push's build, and the plan's evaluation, which builds and
//! fetches nothing (`nix build --dry-run --json`, substituters not asked) and
//! answers each installable's derivation and out paths. The evaluator is
//! written once: `nixbuild_cache_push`'s plan and the `nixbuild_flake_outputs`
//! data source both call [`evaluate`].
//!
//! A `source` tree the builder lacks is uploaded first (content-addressed,
//! checked against its hash on the builder), in both modes: at plan time this
//! only adds a copy the next push would upload anyway, and which the push's
//! pruning (`source_keep`) removes like any other.

use tf_provider::AttributePath;

use crate::nix::build_output::parse_build_json;
use crate::ssh::{Remote, SshError};

use super::source;

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

/// What one push builds, or one evaluation evaluates.
pub struct Job {
    pub origin: Origin,
    pub installables: Vec<String>,
    pub build_args: Vec<String>,
}

/// A failed step: what to tell the user, and which argument it concerns.
pub struct Failure {
    pub summary: String,
    pub detail: String,
    pub attribute: AttributePath,
    /// Terraform's stop ended the step.
    pub interrupted: bool,
}

impl Failure {
    pub fn new(summary: &str, detail: impl ToString, attribute: AttributePath) -> Self {
        Self {
            summary: summary.to_string(),
            detail: detail.to_string(),
            attribute,
            interrupted: false,
        }
    }

    pub fn ssh(summary: &str, e: SshError, attribute: AttributePath) -> Self {
        let interrupted = e.is_interrupted();
        let summary = match e.step() {
            Some(step) if interrupted => format!("Interrupted during step `{step}`"),
            _ => summary.to_string(),
        };
        Self {
            interrupted,
            ..Self::new(&summary, e, attribute)
        }
    }
}

/// The mode of `push_build.sh`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Build,
    Evaluate,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Build => "build",
            Mode::Evaluate => "evaluate",
        }
    }

    fn step(self) -> &'static str {
        match self {
            Mode::Build => "nix build",
            Mode::Evaluate => "evaluate installables",
        }
    }
}

/// One installable as evaluated: its derivation (null for a plain store
/// path) and its out paths, in output-name order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    pub installable: String,
    pub drv_path: Option<String>,
    pub out_paths: Vec<String>,
}

/// Every installable of a [`Job`], evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub source_hash: Option<String>,
    pub installables: Vec<Evaluated>,
    /// The answer was the record of an earlier evaluation (Nix did not run).
    pub recorded: bool,
}

impl Evaluation {
    /// The out paths a push of these installables records (`out_paths`): in
    /// installable order, outputs of one in output-name order, each once.
    pub fn out_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for p in self.installables.iter().flat_map(|i| &i.out_paths) {
            if !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        paths
    }
}

/// The content hash of `source`, which must be what the plan saw.
pub fn check_source(path: &str, planned_hash: Option<&str>) -> Result<String, Failure> {
    let hash = source::content_hash(path)
        .map_err(|e| Failure::new("Cannot read source", e, AttributePath::new("source")))?;
    if planned_hash.is_some_and(|planned| planned != hash) {
        return Err(source_changed(path, &hash, planned_hash));
    }
    Ok(hash)
}

fn source_changed(path: &str, hash: &str, planned_hash: Option<&str>) -> Failure {
    Failure::new(
        "Source changed after the plan",
        format!("`{path}` hashes to {hash}, the plan had {}: run terraform apply again to push the current tree", planned_hash.unwrap_or_default()),
        AttributePath::new("source"),
    )
}

/// Upload `source` (hashed `hash`) to the builder's content-addressed copies.
async fn upload_source(remote: &Remote, path: &str, hash: &str) -> Result<(), Failure> {
    let at = || AttributePath::new("source");
    let (archived_hash, tar) =
        source::archive(path).map_err(|e| Failure::new("Cannot read source", e, at()))?;
    if archived_hash != hash {
        return Err(source_changed(path, &archived_hash, Some(hash)));
    }
    tracing::info!(host = %remote.endpoint(), bytes = tar.len(), "uploading source {hash}");
    let dir = remote
        .run_script(
            "upload source",
            crate::scripts::SOURCE,
            &["unpack", hash],
            Some(&tar),
            false,
        )
        .await
        .map_err(|e| Failure::ssh("Cannot upload the source to the builder", e, at()))?
        .stdout_text();
    if !dir.trim().starts_with('/') {
        return Err(Failure::new(
            "Cannot place the source on the builder",
            format!("source.sh printed `{}`, not a directory", dir.trim()),
            at(),
        ));
    }
    Ok(())
}

/// A refused download in a failed build's log: say where the builder's
/// credentials go. GitHub and GitLab answer 404 for a private repository.
fn credentials_hint(tail: &str) -> Option<&'static str> {
    let refused = tail.contains("HTTP error 401") || tail.contains("HTTP error 403");
    let private_repo = tail.contains("HTTP error 404")
        && (tail.contains("/tarball/") || tail.contains("/repository/archive"));
    (refused || private_repo).then_some(
        "\n\nThe builder was refused a download. Give it credentials on its nixbuild_builder: `nix.netrc` (HTTP basic auth: tarballs, binary caches) or `nix.access_tokens` (github:, gitlab:, sourcehut:). Only root's Nix reads them: this push must log in as root.",
    )
}

/// The `source` tree of a step: its path, hash, lease and lease seconds.
struct SourceLease {
    path: String,
    hash: String,
    lease: String,
    seconds: String,
}

/// Run `push_build.sh` once in `mode`; its standard output. `record`: the
/// key an evaluation is kept under (see [`evaluate`]).
async fn run_step(
    remote: &Remote,
    mode: Mode,
    job: &Job,
    source: Option<&SourceLease>,
    record: Option<&str>,
) -> Result<String, Failure> {
    let at = || AttributePath::new("installables");
    let (hash, lease, seconds) = source
        .map(|s| (s.hash.as_str(), s.lease.as_str(), s.seconds.as_str()))
        .unwrap_or_default();
    let (flake, keep) = match &job.origin {
        Origin::Flake(f) => (f.as_str(), String::new()),
        Origin::Source { keep, .. } => ("", keep.to_string()),
        Origin::None => ("", String::new()),
    };
    // In evaluate mode the KEEP argument is the record key.
    let keep = match mode {
        Mode::Build => keep,
        Mode::Evaluate => record.unwrap_or_default().to_string(),
    };
    let nargs = job.build_args.len().to_string();
    let mut args: Vec<&str> = vec![
        mode.arg(),
        crate::scripts::NIX,
        crate::scripts::SOURCE,
        hash,
        lease,
        seconds,
        &keep,
        flake,
        &nargs,
    ];
    args.extend(job.build_args.iter().map(String::as_str));
    // As Nix's command line reads them (quoted names percent-encoded); the
    // plan validated them, so a failure here is the same refusal.
    let in_flake = !matches!(job.origin, Origin::None);
    let installables = job
        .installables
        .iter()
        .map(|i| crate::nix::attr_path::cli_installable(i, in_flake))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::new("Invalid installable", e, at()))?;
    args.extend(installables.iter().map(String::as_str));
    let (summary, what) = match mode {
        Mode::Build => ("Build failed", "`nix build`"),
        Mode::Evaluate => ("Evaluation failed", "`nix build --dry-run`"),
    };
    tracing::info!(host = %remote.endpoint(), "{} {}", mode.step(), job.installables.join(" "));
    remote
        .run_script(mode.step(), crate::scripts::PUSH_BUILD, &args, None, false)
        .await
        .map(|out| out.stdout_text())
        .map_err(|e| match e {
            SshError::CommandFailed {
                host, exit, tail, ..
            } => Failure::new(
                summary,
                format!(
                    "{what} on {host} failed (exit status {}); last lines of its log:\n{tail}{}",
                    exit.map_or("none".to_string(), |c| c.to_string()),
                    credentials_hint(&tail).unwrap_or_default()
                ),
                at(),
            ),
            other => Failure::ssh(summary, other, at()),
        })
}

/// Run the step in `mode` with the job's `source` tree on the builder
/// (uploading it first when the builder lacks it): the step's output, and the
/// tree's hash. `lease_seconds`: how long the tree stays leased.
pub async fn run_with_source(
    remote: &Remote,
    mode: Mode,
    job: &Job,
    lease_seconds: u64,
    record: Option<&str>,
) -> Result<(String, Option<String>), Failure> {
    let source = match &job.origin {
        Origin::Source {
            path, planned_hash, ..
        } => Some(SourceLease {
            hash: check_source(path, planned_hash.as_deref())?,
            path: path.clone(),
            lease: crate::secrets::random_hex(),
            seconds: lease_seconds.to_string(),
        }),
        _ => None,
    };
    let mut text = run_step(remote, mode, job, source.as_ref(), record).await?;
    if let Some(s) = source.as_ref().filter(|_| is_source_missing(&text)) {
        upload_source(remote, &s.path, &s.hash).await?;
        text = run_step(remote, mode, job, source.as_ref(), record).await?;
        if is_source_missing(&text) {
            return Err(Failure::new(
                "Cannot place the source on the builder",
                "the builder still lacks the uploaded tree",
                AttributePath::new("source"),
            ));
        }
    }
    Ok((text, source.map(|s| s.hash)))
}

fn is_source_missing(text: &str) -> bool {
    text.trim() == "source-missing"
}

/// Evaluate the job's installables on `remote`: one remote command (two
/// when a `source` tree must be uploaded first). Builds nothing. With
/// `record`, the answer is kept on the builder under that key, and an
/// answer already kept under it is returned without running Nix
/// ([`Evaluation::recorded`]).
pub async fn evaluate(
    remote: &Remote,
    job: &Job,
    record: Option<&str>,
) -> Result<Evaluation, Failure> {
    // A plan's lease only needs to outlive the evaluation.
    let (text, source_hash) = run_with_source(remote, Mode::Evaluate, job, 600, record).await?;
    let recorded = text.lines().any(|l| l.starts_with("recorded\t"));
    // A recorded answer did not look at the source: its hash is the job's.
    let source_hash = source_hash.or_else(|| match &job.origin {
        Origin::Source { planned_hash, .. } => planned_hash.clone(),
        _ => None,
    });
    let installables = parse_evaluated(&text, &job.installables).map_err(|e| {
        Failure::new(
            "Unexpected evaluation output",
            e,
            AttributePath::new("installables"),
        )
    })?;
    Ok(Evaluation {
        source_hash,
        installables,
        recorded,
    })
}

/// The `evaluated<TAB>JSON` line: one element per installable, in order.
fn parse_evaluated(text: &str, installables: &[String]) -> Result<Vec<Evaluated>, String> {
    let json = text
        .lines()
        .map(|l| l.trim_start_matches('\r'))
        .find_map(|l| {
            l.strip_prefix("evaluated\t")
                .or_else(|| l.strip_prefix("recorded\t"))
        })
        .ok_or("no evaluation in the output")?;
    let built = parse_build_json(json)?;
    if built.len() != installables.len() {
        return Err(format!(
            "`nix build --dry-run` described {} derivations for {} installables",
            built.len(),
            installables.len()
        ));
    }
    built
        .into_iter()
        .zip(installables)
        .map(|(b, installable)| {
            let out_paths = b.out_paths();
            if out_paths.is_empty() {
                return Err(format!("`{installable}` has no out paths known before it is built (a content-addressed derivation?)"));
            }
            Ok(Evaluated {
                installable: installable.clone(),
                drv_path: b.drv_path,
                out_paths,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_downloads_point_at_the_builder_credentials() {
        for refused in [
            "error: unable to download 'http://h/f.tar.gz': HTTP error 401 ('Unauthorized')",
            "error: unable to download 'https://h/f.tar.gz': HTTP error 403 ('Forbidden')",
            "error: unable to download 'https://api.github.com/repos/o/r/tarball/abc': HTTP error 404 ('')",
        ] {
            assert!(credentials_hint(refused).unwrap().contains("nix.netrc"), "{refused}");
        }
        for other in [
            "error: unable to download 'https://h/f.tar.gz': HTTP error 404 ('')",
            "nbt: deliberate failure for the test",
        ] {
            assert_eq!(credentials_hint(other), None, "{other}");
        }
    }

    #[test]
    fn parses_an_evaluation_in_installable_order() {
        let text = "evaluated\t[{\"drvPath\":\"/nix/store/1ivsab92yindjavx1qjqfjg18ydq2ci9-a.drv\",\"outputs\":{\"out\":\"/nix/store/0sfqllzc4sprpz0827x1jbc3gbvybjy7-a\",\"dev\":\"/nix/store/yb2yjzhwk10mm4di0vpm1h370cdbww34-a-dev\"}},{\"drvPath\":\"/nix/store/jdipgvh7dr2d4q96pz7721cxsr0f5v70-hm.drv\",\"outputs\":{\"out\":\"/nix/store/x3bipslz4112r4ldnhhkca75i23zddla-hm\"}}]\n";
        let names = ["a^*".to_string(), "hm".to_string()];
        let e = Evaluation {
            source_hash: None,
            installables: parse_evaluated(text, &names).unwrap(),
            recorded: false,
        };
        let recorded = text.replace("evaluated\t", "recorded\t");
        assert_eq!(
            parse_evaluated(&recorded, &names).unwrap(),
            e.installables,
            "a recorded answer reads the same"
        );
        assert_eq!(
            e.installables[0].drv_path.as_deref(),
            Some("/nix/store/1ivsab92yindjavx1qjqfjg18ydq2ci9-a.drv")
        );
        assert_eq!(
            e.out_paths(),
            [
                "/nix/store/yb2yjzhwk10mm4di0vpm1h370cdbww34-a-dev",
                "/nix/store/0sfqllzc4sprpz0827x1jbc3gbvybjy7-a",
                "/nix/store/x3bipslz4112r4ldnhhkca75i23zddla-hm",
            ],
            "installable order, outputs by name"
        );
        assert!(parse_evaluated(text, &names[..1]).is_err(), "count differs");
        assert!(parse_evaluated("nothing\n", &names).is_err());
        let floating = "evaluated\t[{\"drvPath\":\"/nix/store/1ivsab92yindjavx1qjqfjg18ydq2ci9-a.drv\",\"outputs\":{}}]";
        assert!(parse_evaluated(floating, &names[..1]).is_err());
    }
}
