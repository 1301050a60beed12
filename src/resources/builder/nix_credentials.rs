//! `nix.access_tokens` and `nix.netrc` of `nixbuild_builder`: plan-time
//! validation, the files they become, the converge step (contents over the
//! channel's stdin into root-only 0600 files, never on a command line), the
//! drift check and the removal. The state's private data keeps only a salted
//! fingerprint of what the last apply wrote. The builder calls these and
//! holds nothing else of it.

use std::collections::BTreeMap;

use base64::Engine;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::config::{BuilderPrivate, BuilderState, NixBlock};
use crate::nix::credentials::{
    check_netrc, check_token, check_token_host, render_conf, render_netrc, CREDENTIALS_CONF_PATH,
    NETRC_PATH,
};
use crate::secrets::Secret;
use crate::ssh::steps::Step;
use crate::ssh::{Remote, SshError};

/// Host name → access token.
pub type TokenMap = Value<BTreeMap<String, Value<Secret>>>;

/// The credential files one configuration asks for (`None`: no such file).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    conf: Option<String>,
    netrc: Option<String>,
}

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wanted")
            .field("conf", &self.conf.as_ref().map(|_| "<redacted>"))
            .field("netrc", &self.netrc.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Wanted {
    /// Anything to write: the managed config then includes the credentials file.
    pub fn any(&self) -> bool {
        self.conf.is_some()
    }

    /// `NAME BASE64` lines for `nix_credentials.sh` (a file not listed is removed).
    fn stdin(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut out = String::new();
        for (name, content) in [("conf", &self.conf), ("netrc", &self.netrc)] {
            if let Some(content) = content {
                out.push_str(&format!("{name} {}\n", b64(content)));
            }
        }
        out
    }
}

/// The files `nix` asks for; `None` while a value is unknown at plan time.
pub fn wanted(nix: &NixBlock) -> Option<Wanted> {
    let tokens = match &nix.access_tokens {
        Value::Unknown => return None,
        Value::Null => vec![],
        Value::Value(map) => map
            .iter()
            .map(|(host, token)| match token {
                Value::Unknown => None,
                Value::Null => Some(None),
                Value::Value(t) => Some(Some((host.clone(), t.expose().trim().to_string()))),
            })
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect(),
    };
    let netrc = match &nix.netrc {
        Value::Unknown => return None,
        Value::Null => None,
        Value::Value(n) => Some(render_netrc(n.expose())),
    };
    Some(Wanted {
        conf: render_conf(&tokens, netrc.is_some()),
        netrc,
    })
}

/// Keyed fingerprint of what `wanted` writes (empty: nothing), for the
/// private state.
pub fn fingerprint(salt: &str, wanted: &Wanted) -> String {
    if !wanted.any() {
        return String::new();
    }
    crate::secrets::fingerprint(
        salt,
        &[
            ("nix_credentials_conf", wanted.conf.clone()),
            ("nix_netrc", wanted.netrc.clone()),
        ],
    )
}

/// Plan-time checks of `nix.access_tokens` and `nix.netrc`, with their paths.
pub fn validate(nix: &NixBlock, diags: &mut Diagnostics) {
    let at = |name: &'static str| AttributePath::new("nix").index(0).attribute(name);
    if let Value::Value(map) = &nix.access_tokens {
        for (host, token) in map {
            let path = at("access_tokens").key(host.clone());
            if let Err(e) = check_token_host(host) {
                diags.error("Invalid access token host", e, path.clone());
            }
            match token {
                Value::Value(token) => {
                    if let Err(e) = check_token(token.expose()) {
                        diags.error(
                            "Invalid access token",
                            format!("the token for `{host}` {e}"),
                            path,
                        );
                    }
                }
                Value::Null => diags.error(
                    "Invalid access token",
                    format!("the token for `{host}` is null: remove the entry instead"),
                    path,
                ),
                Value::Unknown => {}
            }
        }
    }
    if let Value::Value(netrc) = &nix.netrc {
        if let Err(e) = check_netrc(netrc.expose()) {
            diags.error("Invalid netrc", format!("the netrc {e}"), at("netrc"));
        }
    }
}

/// `nix_credentials.sh MODE CONF NETRC` as a step called `name`, `stdin` its input.
fn step(name: &str, mode: &str, stdin: String) -> Step {
    Step::new(
        name,
        crate::scripts::NIX_CREDENTIALS,
        &[mode, CREDENTIALS_CONF_PATH, NETRC_PATH],
    )
    .input(stdin)
}

/// Apply: write the wanted files, remove the others; reports `changed=yes`
/// when a file changed (the daemon then needs a restart to read the settings).
pub fn converge_step(wanted: &Wanted) -> Step {
    step("write Nix credentials", "apply", wanted.stdin()).reports_change()
}

/// Remove both files (a no-op on a host with none).
pub fn clean_step() -> Step {
    step("remove Nix credentials", "clean", String::new())
}

/// Read and apply: the check of the files against `wanted`, as a step.
/// `written`: the last apply wrote credentials (else, with none wanted,
/// there is nothing to check and no command runs). The wanted contents go
/// in on stdin and are compared there: only
/// `ok`/`missing`/`changed`/`unexpected` comes back.
fn check_step(wanted: &Wanted, written: bool) -> Option<Step> {
    (wanted.any() || written).then(|| step("check Nix credentials", "check", wanted.stdin()))
}

/// What the check's output `text` shows out of line.
fn drift_in(text: &str) -> Vec<String> {
    let mut drift = Vec::new();
    for (key, path) in [("conf", CREDENTIALS_CONF_PATH), ("netrc", NETRC_PATH)] {
        let status = text
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("unknown");
        match status {
            "ok" | "absent" => {}
            "missing" => drift.push(format!("{path} is missing")),
            "changed" => drift.push(format!(
                "{path} was changed on the host (content, owner or mode 0600)"
            )),
            "unexpected" => drift.push(format!(
                "{path} is on the host, but nix.access_tokens / nix.netrc do not ask for it"
            )),
            other => drift.push(format!("{path}: unexpected check result `{other}`")),
        }
    }
    drift
}

/// Read: drift when the state's credentials are not what the last apply
/// wrote (e.g. after an import, or a state edited by hand).
pub fn fingerprint_drift(wanted: &Wanted, salt: &str, applied: &str) -> Option<String> {
    (fingerprint(salt, wanted) != applied)
        .then(|| "nix.access_tokens / nix.netrc differ from what the last apply wrote".into())
}

/// The credentials drift of a builder: the files on the host, and (Read,
/// `with_fingerprint`) the state against the private fingerprint.
pub async fn drift(
    remote: &Remote,
    state: &BuilderState,
    private: &BuilderPrivate,
    with_fingerprint: bool,
) -> Result<Vec<String>, SshError> {
    let text = match drift_step(state, private) {
        Some(step) => Some(step.run(remote, true).await?.stdout_text()),
        None => None,
    };
    Ok(drift_of(state, private, with_fingerprint, text.as_deref()))
}

/// The host side of [`drift`] as a step (`None`: nothing to check).
pub fn drift_step(state: &BuilderState, private: &BuilderPrivate) -> Option<Step> {
    let wanted = wanted(&state.nix_block())?;
    check_step(&wanted, !private.credentials_fingerprint.is_empty())
}

/// [`drift`] from the output of [`drift_step`] (`None` when it had none).
pub fn drift_of(
    state: &BuilderState,
    private: &BuilderPrivate,
    with_fingerprint: bool,
    check_output: Option<&str>,
) -> Vec<String> {
    let Some(wanted) = wanted(&state.nix_block()) else {
        return vec![];
    };
    let mut drift = check_output.map(drift_in).unwrap_or_default();
    if with_fingerprint {
        drift.extend(fingerprint_drift(
            &wanted,
            &private.token_salt,
            &private.credentials_fingerprint,
        ));
    }
    drift
}

/// After a successful apply: the fingerprint of what it wrote.
pub fn applied_fingerprint(state: &BuilderState, private: &BuilderPrivate) -> String {
    wanted(&state.nix_block())
        .map(|w| fingerprint(&private.token_salt, &w))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nix(tokens: &[(&str, Value<Secret>)], netrc: Value<Secret>) -> NixBlock {
        NixBlock {
            access_tokens: Value::Value(
                tokens
                    .iter()
                    .map(|(h, t)| (h.to_string(), t.clone()))
                    .collect(),
            ),
            netrc,
            ..Default::default()
        }
    }

    fn set(s: &str) -> Value<Secret> {
        Value::Value(Secret::new(s))
    }

    #[test]
    fn wanted_files_and_fingerprints() {
        let none = wanted(&NixBlock::default()).unwrap();
        assert!(!none.any());
        assert_eq!(none.stdin(), "");
        assert_eq!(fingerprint("salt", &none), "");
        let empty_map = wanted(&nix(&[], Value::Null)).unwrap();
        assert!(!empty_map.any());

        let both = wanted(&nix(
            &[("github.com", set("ghp_x\n"))],
            set("machine h password p"),
        ))
        .unwrap();
        assert!(both.any());
        let stdin = both.stdin();
        let lines: Vec<&str> = stdin.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("conf ") && lines[1].starts_with("netrc "));
        assert!(!both.stdin().contains("ghp_x"), "base64 on stdin");
        assert!(!format!("{both:?}").contains("ghp_x"));
        let conf = both.conf.as_deref().unwrap();
        assert!(
            conf.contains("extra-access-tokens = github.com=ghp_x\n"),
            "{conf}"
        );

        let fp = fingerprint("salt", &both);
        assert!(!fp.is_empty() && !fp.contains("ghp_x"));
        let rotated = wanted(&nix(
            &[("github.com", set("ghp_y"))],
            set("machine h password p"),
        ))
        .unwrap();
        assert_ne!(fingerprint("salt", &rotated), fp);
        assert_ne!(fingerprint("other", &both), fp);
        assert_eq!(fingerprint_drift(&both, "salt", &fp), None);
        assert!(fingerprint_drift(&rotated, "salt", &fp).is_some());
        assert_eq!(fingerprint_drift(&none, "salt", ""), None);

        let netrc_only = wanted(&nix(&[], set("machine h password p"))).unwrap();
        assert_eq!(netrc_only.stdin().lines().count(), 2);
        assert!(!netrc_only.conf.unwrap().contains("access-tokens"));

        assert!(wanted(&nix(&[("a", Value::Unknown)], Value::Null)).is_none());
        assert!(wanted(&nix(&[], Value::Unknown)).is_none());
    }

    #[test]
    fn bad_values_name_their_path() {
        let mut diags = Diagnostics::default();
        validate(
            &nix(
                &[
                    ("github.com", set("two words")),
                    ("https://gitlab.com", set("ok")),
                ],
                set("login u"),
            ),
            &mut diags,
        );
        let paths: Vec<String> = diags
            .errors
            .iter()
            .map(|d| format!("{:?}", d.attribute))
            .collect();
        assert_eq!(diags.errors.len(), 3, "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("github.com")), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.contains("https://gitlab.com")),
            "{paths:?}"
        );
        assert!(paths.iter().any(|p| p.contains("netrc")), "{paths:?}");
        for d in &diags.errors {
            assert!(!d.detail.contains("two words"), "no secret in a diagnostic");
        }
    }
}
