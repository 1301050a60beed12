//! `nix.access_tokens` and `nix.netrc` of `nixbuild_builder` (and their
//! write-only twins `access_tokens_wo`, `netrc_wo`): plan-time validation,
//! the files they become, the converge step (contents over the channel's
//! stdin into root-only 0600 files, never on a command line), the drift
//! check and the removal. The state's private data keeps only salted
//! fingerprints of what the last apply wrote: of the contents, and of the
//! files' SHA-256, by which a refresh checks files whose contents came from a
//! write-only argument (the state does not hold them). The builder calls
//! these and holds nothing else of it.

use base64::Engine;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::blocks::{only_at, Applying, Block, Checking, CleanPhase, Cleaning, Phase};
use super::config::{BuilderPrivate, BuilderState, NixBlock, TokenMap};
use super::watch_store::Secrets;
use crate::nix::credentials::{
    check_netrc, check_token, check_token_host, render_conf, render_netrc, CREDENTIALS_CONF_PATH,
    NETRC_PATH,
};
use crate::ssh::steps::Step;
use crate::write_only::{content_fingerprint, effective, file_fingerprint, Pair};

pub struct Credentials;

impl Block for Credentials {
    fn validate(&self, config: &BuilderState, diags: &mut Diagnostics) {
        if let Value::Value(nix) = &config.nix {
            validate(nix, diags);
        }
    }

    /// Again at plan time: secrets from variables are unknown at validation.
    fn check_plan(
        &self,
        _: &crate::context::Context,
        state: &BuilderState,
        diags: &mut Diagnostics,
    ) {
        validate(&state.nix_block(), diags);
    }

    fn write_only_args(&self, state: &BuilderState) -> Vec<&'static str> {
        write_only_args(&state.nix_block())
    }

    /// Before the config: the config includes the credentials file.
    fn steps(&self, phase: Phase, apply: &Applying) -> Vec<Step> {
        only_at(phase, Phase::BeforeConfig, || {
            let credentials =
                wanted(&apply.state.nix_block()).expect("arguments are known at apply");
            vec![converge_step(&credentials)]
        })
    }

    fn check_step(&self, checking: &Checking) -> Option<Step> {
        drift_step(checking.state, checking.private, checking.refresh)
    }

    /// Also without a check: a refresh compares the state's credentials
    /// with their private fingerprint.
    fn drift(&self, checking: &Checking, output: Option<&str>) -> Vec<String> {
        drift_of(checking.state, checking.private, checking.refresh, output)
    }

    fn record_applied(&self, state: &BuilderState, private: &mut BuilderPrivate, _: &Secrets) {
        record_applied(state, private);
    }

    fn clean_steps(&self, phase: CleanPhase, _clean: &Cleaning) -> Vec<Step> {
        only_at(phase, CleanPhase::BeforeConfig, || vec![clean_step()])
    }
}

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

/// The private state's name of each argument that has a write-only twin.
pub const ACCESS_TOKENS: &str = "nix.access_tokens";
pub const NETRC: &str = "nix.netrc";

/// The arguments of `nix` whose value comes from the write-only twin (set,
/// or not known yet).
pub fn write_only_args(nix: &NixBlock) -> Vec<&'static str> {
    let mut args = Vec::new();
    if !nix.access_tokens_wo.is_null() {
        args.push(ACCESS_TOKENS);
    }
    if !nix.netrc_wo.is_null() {
        args.push(NETRC);
    }
    args
}

/// The files `nix` asks for; `None` while a value is unknown at plan time.
/// A write-only twin, when set, wins (its value is there at plan and apply;
/// in a refresh it is null: see [`drift_step`]).
pub fn wanted(nix: &NixBlock) -> Option<Wanted> {
    let tokens = match &nix.access_tokens_wo {
        Value::Unknown => return None,
        // Malformed pairs are a validation error: nothing to write for them.
        Value::Value(pairs) => parse_pairs(pairs.expose())
            .into_iter()
            .filter_map(Result::ok)
            .map(|(host, token)| (host.to_string(), token.to_string()))
            .collect(),
        Value::Null => map_tokens(&nix.access_tokens)?,
    };
    let netrc = match &effective(&nix.netrc, &nix.netrc_wo) {
        Value::Unknown => return None,
        Value::Null => None,
        Value::Value(n) => Some(render_netrc(n.expose())),
    };
    Some(Wanted {
        conf: render_conf(&tokens, netrc.is_some()),
        netrc,
    })
}

/// `access_tokens_wo`: `HOST=TOKEN` pairs separated by whitespace (Nix's
/// `access-tokens` syntax), each split at its first `=` (`Err`: the pair's
/// position, for an entry without one).
fn parse_pairs(text: &str) -> Vec<Result<(&str, &str), usize>> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, pair)| pair.split_once('=').ok_or(i + 1))
        .collect()
}

/// The known tokens of the `access_tokens` map (`None`: one is unknown).
fn map_tokens(tokens: &TokenMap) -> Option<Vec<(String, String)>> {
    Some(match tokens {
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

/// Plan-time checks of `nix.access_tokens` and `nix.netrc` and of their
/// write-only twins, with their paths.
pub fn validate(nix: &NixBlock, diags: &mut Diagnostics) {
    let at = |name: &'static str| AttributePath::new("nix").index(0).attribute(name);
    validate_tokens(&nix.access_tokens, at("access_tokens"), diags);
    if let Value::Value(pairs) = &nix.access_tokens_wo {
        validate_pairs(pairs.expose(), at("access_tokens_wo"), diags);
    }
    for (netrc, name) in [(&nix.netrc, "netrc"), (&nix.netrc_wo, "netrc_wo")] {
        if let Value::Value(netrc) = netrc {
            if let Err(e) = check_netrc(netrc.expose()) {
                diags.error("Invalid netrc", format!("the netrc {e}"), at(name));
            }
        }
    }
    let pair_at = |name: String| AttributePath::new("nix").index(0).attribute(name);
    Pair {
        name: "access_tokens",
        plain: &nix.access_tokens,
        write_only: &nix.access_tokens_wo,
        version: &nix.access_tokens_wo_version,
    }
    .validate(pair_at, diags);
    Pair {
        name: "netrc",
        plain: &nix.netrc,
        write_only: &nix.netrc_wo,
        version: &nix.netrc_wo_version,
    }
    .validate(pair_at, diags);
}

/// `access_tokens_wo`'s pairs (errors name the host or the pair's
/// position, never a token).
fn validate_pairs(text: &str, at: AttributePath, diags: &mut Diagnostics) {
    let mut seen = Vec::new();
    let pairs = parse_pairs(text);
    if pairs.is_empty() {
        diags.error(
            "Invalid access tokens",
            "no `HOST=TOKEN` pair: give at least one, or remove the argument",
            at.clone(),
        );
    }
    for pair in pairs {
        let (host, token) = match pair {
            Ok(pair) => pair,
            Err(i) => {
                diags.error(
                    "Invalid access tokens",
                    format!("entry {i} is not `HOST=TOKEN` (pairs are separated by spaces)"),
                    at.clone(),
                );
                continue;
            }
        };
        if let Err(e) = check_token_host(host) {
            diags.error("Invalid access token host", e, at.clone());
        } else if seen.contains(&host) {
            diags.error(
                "Invalid access tokens",
                format!("`{host}` is given twice"),
                at.clone(),
            );
        }
        seen.push(host);
        if let Err(e) = check_token(token) {
            diags.error(
                "Invalid access token",
                format!("the token for `{host}` {e}"),
                at.clone(),
            );
        }
    }
}

/// The tokens of one map attribute (`at`).
fn validate_tokens(tokens: &TokenMap, at: AttributePath, diags: &mut Diagnostics) {
    if let Value::Value(map) = tokens {
        for (host, token) in map {
            let path = at.clone().key(host.clone());
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
}

/// `nix_credentials.sh MODE CONF NETRC` as a step called `name`, `stdin` its input.
fn step(name: &str, mode: &str, stdin: String) -> Step {
    Step::new(
        name,
        crate::scripts::NIX_CREDENTIALS,
        &[mode, CREDENTIALS_CONF_PATH, NETRC_PATH],
    )
    .input(stdin)
    .serves("nix")
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

/// The value of `key=` in a check's output.
fn reported<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("unknown")
}

/// What the check's output `text` shows out of line.
fn drift_in(text: &str) -> Vec<String> {
    let mut drift = Vec::new();
    for (key, path) in [("conf", CREDENTIALS_CONF_PATH), ("netrc", NETRC_PATH)] {
        match reported(text, key) {
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

/// What the `digest` output `text` shows out of line with the files the
/// last apply wrote (their keyed digests in `private`).
fn digest_drift(text: &str, private: &BuilderPrivate) -> Vec<String> {
    let mut drift = Vec::new();
    for (key, path, applied) in [
        (
            "conf",
            CREDENTIALS_CONF_PATH,
            &private.credentials_conf_digest,
        ),
        ("netrc", NETRC_PATH, &private.credentials_netrc_digest),
    ] {
        match (reported(text, key), applied.is_empty()) {
            ("unknown", _) => drift.push(format!("{path}: the check reported nothing")),
            ("absent", true) => {}
            ("absent", false) => drift.push(format!("{path} is missing")),
            (_, true) => drift.push(format!(
                "{path} is on the host, but the last apply did not write it"
            )),
            ("mode", false) => drift.push(format!(
                "{path} was changed on the host (owner or mode 0600)"
            )),
            (digest, false) => {
                if file_fingerprint(&private.token_salt, digest) != *applied {
                    drift.push(format!("{path} was changed on the host"));
                }
            }
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

/// A refresh (`refresh`) of a builder whose last apply took a credential
/// from a write-only argument: the state cannot say what the files hold, so
/// they are checked by their keyed digests.
fn by_digest(private: &BuilderPrivate, refresh: bool) -> bool {
    refresh
        && private
            .write_only
            .iter()
            .any(|a| a == ACCESS_TOKENS || a == NETRC)
}

/// The check of the credential files as a step (`None`: nothing to check).
pub fn drift_step(state: &BuilderState, private: &BuilderPrivate, refresh: bool) -> Option<Step> {
    if by_digest(private, refresh) {
        return Some(step("check Nix credentials", "digest", String::new()));
    }
    let wanted = wanted(&state.nix_block())?;
    check_step(&wanted, !private.credentials_fingerprint.is_empty())
}

/// The credentials drift of a builder from the output of [`drift_step`]
/// (`None` when it had none): the files on the host, and (Read, `refresh`)
/// the state against the private fingerprint.
pub fn drift_of(
    state: &BuilderState,
    private: &BuilderPrivate,
    refresh: bool,
    check_output: Option<&str>,
) -> Vec<String> {
    if by_digest(private, refresh) {
        return check_output
            .map(|text| digest_drift(text, private))
            .unwrap_or_default();
    }
    let Some(wanted) = wanted(&state.nix_block()) else {
        return vec![];
    };
    let mut drift = check_output.map(drift_in).unwrap_or_default();
    if refresh {
        drift.extend(fingerprint_drift(
            &wanted,
            &private.token_salt,
            &private.credentials_fingerprint,
        ));
    }
    drift
}

/// After a successful apply: record what it wrote (the fingerprint of the
/// contents, the keyed digests of the files, and which arguments were
/// write-only).
pub fn record_applied(state: &BuilderState, private: &mut BuilderPrivate) {
    let nix = state.nix_block();
    let wanted = wanted(&nix).unwrap_or_default();
    let salt = &private.token_salt;
    private.credentials_fingerprint = fingerprint(salt, &wanted);
    private.credentials_conf_digest = content_fingerprint(salt, wanted.conf.as_deref());
    private.credentials_netrc_digest = content_fingerprint(salt, wanted.netrc.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

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

    /// `access_tokens_wo` / `netrc_wo` write what their twins would; a
    /// refresh (the twins null) checks the files by their keyed digests.
    #[test]
    fn write_only_twins_write_the_same_files_and_are_refreshed_by_digest() {
        let plain = nix(&[("github.com", set("ghp_x"))], set("machine h password p"));
        let wo = NixBlock {
            access_tokens_wo: set("github.com=ghp_x"),
            netrc_wo: set("machine h password p"),
            netrc_wo_version: Value::Value(1),
            ..Default::default()
        };
        assert_eq!(wanted(&wo), wanted(&plain));
        assert_eq!(write_only_args(&wo), [ACCESS_TOKENS, NETRC]);
        assert!(write_only_args(&plain).is_empty());
        let unknown = NixBlock {
            netrc_wo: Value::Unknown,
            ..Default::default()
        };
        assert!(wanted(&unknown).is_none());
        assert_eq!(write_only_args(&unknown), [NETRC]);

        let applied_state = |nix: NixBlock| BuilderState {
            nix: Value::Value(nix),
            ..Default::default()
        };
        let mut private = BuilderPrivate {
            token_salt: "salt".into(),
            write_only: vec![ACCESS_TOKENS.into(), NETRC.into()],
            ..Default::default()
        };
        record_applied(&applied_state(wo.clone()), &mut private);
        let both = wanted(&wo).unwrap();
        assert_eq!(private.credentials_fingerprint, fingerprint("salt", &both));
        let sha =
            |s: &Option<String>| crate::nix::conf::sha256_hex(s.as_deref().unwrap().as_bytes());
        let (conf_sha, netrc_sha) = (sha(&both.conf), sha(&both.netrc));
        for digest in [
            &private.credentials_conf_digest,
            &private.credentials_netrc_digest,
        ] {
            assert!(
                !digest.is_empty() && !digest.contains(&conf_sha) && !digest.contains(&netrc_sha)
            );
        }

        // The refresh: the state has neither twin, the host answers digests.
        let refreshed = applied_state(NixBlock {
            netrc_wo_version: Value::Value(1),
            ..Default::default()
        });
        let step = drift_step(&refreshed, &private, true).expect("a digest check");
        assert_eq!(step.name(), "check Nix credentials");
        let host = format!("conf={conf_sha}\nnetrc={netrc_sha}\n");
        assert!(drift_of(&refreshed, &private, true, Some(&host)).is_empty());
        let edited = format!("conf={conf_sha}\nnetrc={}\n", sha(&Some("x".into())));
        assert_eq!(
            drift_of(&refreshed, &private, true, Some(&edited)),
            [format!("{NETRC_PATH} was changed on the host")]
        );
        let gone = "conf=mode\nnetrc=absent\n".to_string();
        assert_eq!(
            drift_of(&refreshed, &private, true, Some(&gone)),
            [
                format!("{CREDENTIALS_CONF_PATH} was changed on the host (owner or mode 0600)"),
                format!("{NETRC_PATH} is missing"),
            ]
        );
        // Tokens only: a netrc on the host was not written by the last apply.
        let mut tokens_only = private.clone();
        record_applied(
            &applied_state(NixBlock {
                access_tokens_wo: set(" github.com=ghp_x\n"),
                ..Default::default()
            }),
            &mut tokens_only,
        );
        assert!(tokens_only.credentials_netrc_digest.is_empty());
        assert_eq!(
            drift_of(&refreshed, &tokens_only, true, Some(&host)),
            [
                format!("{CREDENTIALS_CONF_PATH} was changed on the host"),
                format!("{NETRC_PATH} is on the host, but the last apply did not write it"),
            ]
        );
        // At apply the values are there: the contents are compared on the host.
        assert!(!by_digest(&private, false));
        let apply_step = drift_step(&applied_state(wo), &private, false).unwrap();
        assert!(apply_step.name() == "check Nix credentials");
    }

    #[test]
    fn twins_conflict_and_versions_need_them() {
        let mut diags = Diagnostics::default();
        validate(
            &NixBlock {
                netrc: set("machine h password p"),
                netrc_wo: set("machine h password q"),
                access_tokens_wo_version: Value::Value(2),
                access_tokens_wo: Value::Null,
                ..Default::default()
            },
            &mut diags,
        );
        let paths: Vec<String> = diags
            .errors
            .iter()
            .map(|d| format!("{:?}", d.attribute))
            .collect();
        assert_eq!(diags.errors.len(), 2, "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("netrc_wo")), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.contains("access_tokens_wo_version")),
            "{paths:?}"
        );
        let mut diags = Diagnostics::default();
        validate(
            &NixBlock {
                access_tokens_wo: set("github.com=a#b nosuchpair github.com=c https://x=d"),
                netrc_wo: set("login u"),
                ..Default::default()
            },
            &mut diags,
        );
        let details: Vec<&str> = diags.errors.iter().map(|d| d.detail.as_ref()).collect();
        assert_eq!(diags.errors.len(), 5, "{details:?}");
        for d in &diags.errors {
            assert!(format!("{:?}", d.attribute).contains("_wo"));
            for token in ["a#b", "nosuchpair", "=c", "=d"] {
                assert!(!d.detail.contains(token), "{details:?}");
            }
        }
        assert!(details.iter().any(|d| d.contains("entry 2")), "{details:?}");
        assert!(
            details.iter().any(|d| d.contains("given twice")),
            "{details:?}"
        );
        let mut diags = Diagnostics::default();
        validate(
            &NixBlock {
                access_tokens_wo: set("  "),
                ..Default::default()
            },
            &mut diags,
        );
        assert_eq!(diags.errors.len(), 1);
        // Several pairs, split at the first `=` (a token may hold one).
        let several = wanted(&NixBlock {
            access_tokens_wo: set("github.com=ghp_x gitlab.com=glpat=y"),
            ..Default::default()
        })
        .unwrap();
        assert!(
            several
                .conf
                .as_deref()
                .unwrap()
                .contains("github.com=ghp_x gitlab.com=glpat=y"),
            "{:?}",
            several.conf
        );
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
