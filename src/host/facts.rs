//! `builder_check.sh` (run after `nix_fingerprint.sh` and `probe.sh`): what a
//! builder host looks like, for drift detection and import. The facts only
//! `nix` can tell (version, system features) come from the last full check
//! while the host's Nix fingerprint is unchanged, so a routine Read starts no
//! `nix` process; everything drift detection compares is read every time.

use serde::{Deserialize, Serialize};

use super::Probe;
use crate::ssh::steps::Step;
use crate::ssh::{Remote, SshError};

/// The check's step name (in logs and errors).
pub const CHECK_STEP: &str = "check builder";

/// What the read-only check reports about a host.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub probe: Probe,
    pub config_sha256: String,
    pub include: bool,
    pub user: bool,
    pub user_keys_sha256: String,
    /// Who owns the build user's account: `created`, `adopted`, `other`
    /// (another builder resource), `foreign`, `absent`.
    pub user_owner: String,
    /// The owner id of the host's owner claim (empty: none).
    pub host_owner: String,
    pub unit: String,
    /// The watch-store token file exists.
    pub cachix_env: bool,
    pub features: Vec<String>,
    /// Only when asked for (import): the managed config and authorized_keys.
    pub config_text: Option<String>,
    pub keys_text: Option<String>,
    /// What `nix_fingerprint.sh` reported (empty: no fingerprint possible).
    pub nix_fingerprint: String,
    /// `nix show-config` was not run: the features (and the version) came
    /// from the caller's [`NixSnapshot`] (the host said `nix_unchanged=yes`).
    pub nix_from_snapshot: bool,
    /// `nix --version` was not run: the version came from the snapshot (the
    /// nix binary is unchanged; the host said `nix_version_unchanged=yes`).
    pub version_from_snapshot: bool,
}

/// The facts of the last full check that only `nix` can report, with the
/// fingerprint of everything they depend on (see `nix_fingerprint.sh`).
/// Kept by the caller (a resource's private state) between checks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NixSnapshot {
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default)]
    pub nix_version: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
}

impl Facts {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields = super::fields(text);
        let get = |k: &str| fields.get(k).copied().unwrap_or_default();
        Ok(Self {
            probe: Probe::parse(text)?,
            config_sha256: get("config_sha256").to_string(),
            include: get("include") == "yes",
            user: get("user") == "yes",
            user_keys_sha256: get("user_keys_sha256").to_string(),
            user_owner: get("user_owner").to_string(),
            host_owner: get("host_owner").to_string(),
            unit: get("unit").to_string(),
            cachix_env: get("cachix_env") == "yes",
            features: get("features")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            config_text: fields.get("config_b64").and_then(|b| decode_b64(b)),
            keys_text: fields.get("keys_b64").and_then(|b| decode_b64(b)),
            nix_fingerprint: get("nix_fingerprint").to_string(),
            // Only the caller's snapshot can make the host say these.
            nix_from_snapshot: get("nix_unchanged") == "yes",
            version_from_snapshot: get("nix_version_unchanged") == "yes",
        })
    }

    /// Run the check (`nix_fingerprint.sh`, `probe.sh`, `account.sh`,
    /// `builder_check.sh` as one script, one round trip) with `args` for
    /// `builder_check.sh`. With a `known` snapshot whose fingerprint the host
    /// still shows, Nix's facts are taken from it instead of starting `nix`.
    pub async fn check(
        remote: &Remote,
        args: &[&str],
        known: Option<&NixSnapshot>,
    ) -> Result<Self, SshError> {
        let out = Self::check_step(args, known).run(remote, true).await?;
        Self::from_check(remote, &out.stdout_text(), known)
    }

    /// The check of [`check`](Self::check) as a step, to run alone or with others.
    pub fn check_step(args: &[&str], known: Option<&NixSnapshot>) -> Step {
        let script = format!(
            "{}\n{}\n{}\n{}",
            crate::scripts::NIX_FINGERPRINT,
            crate::scripts::PROBE,
            crate::scripts::ACCOUNT,
            crate::scripts::BUILDER_CHECK
        );
        let known = known.filter(|k| !k.fingerprint.is_empty());
        let mut all_args = vec![known.map_or("", |k| k.fingerprint.as_str())];
        all_args.extend_from_slice(args);
        Step::new(CHECK_STEP, script, &all_args)
    }

    /// The facts in the output `text` of [`check_step`](Self::check_step).
    pub fn from_check(
        remote: &Remote,
        text: &str,
        known: Option<&NixSnapshot>,
    ) -> Result<Self, SshError> {
        let known = known.filter(|k| !k.fingerprint.is_empty());
        let mut facts = Self::parse(text).map_err(|reason| SshError::Unexpected {
            host: remote.endpoint().to_string(),
            step: CHECK_STEP.into(),
            reason,
        })?;
        match known {
            Some(known) => {
                if facts.version_from_snapshot {
                    facts.probe.nix_version = known.nix_version.clone();
                }
                if facts.nix_from_snapshot {
                    facts.features = known.features.clone();
                }
            }
            None => (facts.nix_from_snapshot, facts.version_from_snapshot) = (false, false),
        }
        tracing::debug!(
            host = %remote.endpoint(),
            nix_from_snapshot = facts.nix_from_snapshot,
            version_from_snapshot = facts.version_from_snapshot,
            "builder checked"
        );
        Ok(facts)
    }

    /// The snapshot to keep for the next check (an empty fingerprint never matches).
    pub fn nix_snapshot(&self) -> NixSnapshot {
        NixSnapshot {
            fingerprint: self.nix_fingerprint.clone(),
            nix_version: self.probe.nix_version.clone(),
            features: self.features.clone(),
        }
    }
}

fn decode_b64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_parse() {
        let text = "system=x86_64-linux\ncpus=2\nnix_version=2.8.0\nnixos=no\nconfig_sha256=abc\ninclude=yes\nuser=yes\nuser_keys_sha256=def\nunit=active\nfeatures=benchmark big-parallel\n";
        let f = Facts::parse(text).unwrap();
        assert!(f.include && f.user && !f.probe.nixos);
        assert_eq!(f.unit, "active");
        assert_eq!(f.features, vec!["benchmark", "big-parallel"]);
        assert!(!f.nix_from_snapshot);
    }

    /// The real fingerprint and probe scripts, run by the local /bin/sh: a
    /// matching fingerprint skips `nix` (no version line), another one does not.
    #[test]
    fn fingerprint_script_runs_locally() {
        let script = format!(
            "{}\n{}",
            crate::scripts::NIX_FINGERPRINT,
            crate::scripts::PROBE
        );
        let run = |known: &str| {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &script, "nixbuild", known])
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let first = run("");
        let fields = crate::host::fields(&first);
        assert_eq!(fields.get("nix_unchanged"), Some(&"no"));
        let fingerprint = fields["nix_fingerprint"].to_string();
        let has_nix = std::path::Path::new("/usr/bin/nix").exists()
            || std::path::Path::new("/nix/var/nix/profiles/default/bin/nix").exists();
        if fingerprint.is_empty() {
            assert!(!has_nix, "nix is installed, but no fingerprint: {first}");
            return;
        }
        let again = run(&fingerprint);
        assert!(again.contains("nix_unchanged=yes\n"), "{again}");
        assert!(!again.contains("nix_version="), "{again}");
        // Another config: the version still holds (same binary).
        let config = run(&format!("{fingerprint}x"));
        assert!(config.contains("nix_unchanged=no\n"), "{config}");
        assert!(!config.contains("nix_version="), "{config}");
        // Another binary: nothing holds.
        let binary = run(&fingerprint.replacen("v3 /", "v3 /x", 1));
        assert!(binary.contains("nix_unchanged=no\n"), "{binary}");
        assert!(binary.contains("nix_version_unchanged=no\n"), "{binary}");
        assert!(binary.contains("nix_version="), "{binary}");
    }
}
