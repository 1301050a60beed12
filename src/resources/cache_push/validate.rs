//! Plan-time checks of `nixbuild_cache_push` arguments. Every error names the
//! attribute path at fault; values that are still unknown are skipped (they
//! are checked again when they are known).

use crate::context::settings::validate_host_and_ssh;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::{closure, destinations, source, CachePushState};
use crate::cache::{cachix, store};

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Check one installable. `in_flake`: the attribute path of a
/// `flake`/`source` (`hello`, `packages.x86_64-linux.hello`,
/// `homeConfigurations."dev@workstation".activationPackage`) rather than a
/// full installable. Quoted names take any character, with Nix's escapes;
/// only what no installable can select is refused (see
/// [`crate::nix::attr_path`]).
pub fn check_installable(value: &str, in_flake: bool) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("an installable is empty".into());
    }
    if has_control(value) {
        return Err(format!(
            "{value:?} contains control characters (a newline?); inside a quoted name write `\\n`, `\\t`"
        ));
    }
    // What comes before any quoted name: where `#`, `:` or a leading `/`
    // mean a full installable (a quoted name may hold them).
    let head = value.split('"').next().unwrap_or_default();
    if in_flake {
        if let Some(rest) = value.strip_prefix(".#").or_else(|| value.strip_prefix('#')) {
            return Err(format!(
                "write `{rest}`, not `{value}`: with `flake` or `source` set, installables are attribute paths inside that flake"
            ));
        }
        if head.contains('#') || head.contains(':') || head.starts_with('/') {
            return Err(format!(
                "`{value}` is a full installable, but `flake`/`source` is set: give attribute paths such as `packages.x86_64-linux.hello` or `hello`, or drop `flake`/`source`"
            ));
        }
    } else if head.chars().any(char::is_whitespace) {
        return Err(format!(
            "{value:?} contains whitespace outside a quoted name"
        ));
    }
    crate::nix::attr_path::cli_installable(value, in_flake)
        .map(drop)
        .map_err(|e| format!("`{value}` is not an attribute path Nix can select: {e}"))
}

/// Check a flake reference given in `flake`.
pub fn check_flake_ref(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("the flake reference is empty".into());
    }
    if has_control(value) || value.chars().any(char::is_whitespace) {
        return Err("the flake reference contains whitespace or control characters".into());
    }
    if value.contains('#') {
        return Err(format!(
            "`{value}` names an output after `#`: put the reference in `flake` and the attributes in `installables`"
        ));
    }
    Ok(())
}

/// The checks of what to build and where: `host`, `ssh`, `flake` or
/// `source`, `installables`, `build_args` (shared with
/// `nixbuild_flake_outputs`, which reads these fields only).
pub fn validate_job(config: &CachePushState, diags: &mut Diagnostics) {
    validate_host_and_ssh(&config.host, &config.ssh, diags);

    // Source: at most one of flake and source.
    if config.flake.is_value() && config.source.is_value() {
        diags.error(
            "Both flake and source are set",
            "Set `flake` (a reference the builder fetches) or `source` (a local directory to upload), not both",
            AttributePath::new("flake"),
        );
    }
    if let Value::Value(flake) = &config.flake {
        if let Err(e) = check_flake_ref(flake) {
            diags.error("Invalid flake reference", e, AttributePath::new("flake"));
        }
    }
    if let Value::Value(src) = &config.source {
        if let Err(e) = source::check(src) {
            diags.error("Invalid source directory", e, AttributePath::new("source"));
        }
    }
    // Installables.
    let in_flake = match (&config.flake, &config.source) {
        (Value::Null, Value::Null) => Some(false),
        (Value::Value(_), _) | (_, Value::Value(_)) => Some(true),
        _ => None,
    };
    match &config.installables {
        Value::Value(list) if list.is_empty() => diags.error(
            "No installables",
            "Give at least one installable to build and push",
            AttributePath::new("installables"),
        ),
        Value::Value(list) => {
            let mut seen = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let path = AttributePath::new("installables").index(i as i64);
                match item {
                    Value::Null => {
                        diags.error("Invalid installable", "an installable is null", path)
                    }
                    Value::Value(v) => {
                        if let Some(in_flake) = in_flake {
                            if let Err(e) = check_installable(v, in_flake) {
                                diags.error("Invalid installable", e, path.clone());
                            }
                        }
                        if seen.contains(&v) {
                            diags.error(
                                "Duplicate installable",
                                format!("`{v}` is listed twice"),
                                path,
                            );
                        }
                        seen.push(v);
                    }
                    Value::Unknown => {}
                }
            }
        }
        _ => {}
    }
    if let Value::Value(args) = &config.build_args {
        for (i, arg) in args.iter().enumerate() {
            if let Value::Value(arg) = arg {
                let path = AttributePath::new("build_args").index(i as i64);
                if has_control(arg) {
                    diags.error(
                        "Invalid build argument",
                        format!("{arg:?} contains control characters (a newline?)"),
                        path,
                    );
                } else if matches!(
                    arg.as_str(),
                    "--json" | "--no-link" | "-o" | "--out-link" | "--print-out-paths"
                ) {
                    diags.error(
                        "Invalid build argument",
                        format!("`{arg}` is set by the provider, which needs `--json --no-link`"),
                        path,
                    );
                }
            }
        }
    }
}

pub fn validate(config: &CachePushState, diags: &mut Diagnostics) {
    validate_job(config, diags);
    if matches!(config.source_keep, Value::Value(n) if n < 0) {
        diags.error(
            "Invalid source_keep",
            "`source_keep` is how many uploaded trees to keep: 0 (never prune) or more",
            AttributePath::new("source_keep"),
        );
    }
    validate_destinations(config, diags);

    if let Value::Value(dest) = &config.cachix {
        let at = |name: &'static str| AttributePath::new("cachix").index(0).attribute(name);
        match &dest.cache {
            Value::Value(name) if !cachix::valid_cache_name(name) => diags.error(
                "Invalid Cachix cache name",
                format!("`{name}` is not a Cachix cache name (lowercase letters, digits and `-`)"),
                at("cache"),
            ),
            Value::Null => diags.error(
                "Missing Cachix cache name",
                "`cachix.cache` is required",
                at("cache"),
            ),
            _ => {}
        }
        for (name, value) in [
            ("auth_token", &dest.auth_token),
            ("signing_key", &dest.signing_key),
        ] {
            if let Value::Value(v) = value {
                let v = v.expose();
                if crate::secrets::check_single_line(v).is_err() || v.trim().contains(' ') {
                    diags.error(
                        "Invalid Cachix credential",
                        format!("`{name}` is empty or contains spaces or control characters"),
                        at(name),
                    );
                    continue;
                }
            }
            if name == "signing_key" {
                crate::context::credentials::validate_signing_key(value, at(name), diags);
            }
        }
    }
    validate_filters(config, diags);
    crate::resources::timeouts::validate(&config.timeouts, diags);
}

/// The `store` blocks and the `cachix` block: at least one, each well formed,
/// no destination named twice.
fn validate_destinations(config: &CachePushState, diags: &mut Diagnostics) {
    if config.store.is_unknown() || config.cachix.is_unknown() {
        return;
    }
    if destinations::stores(config).is_empty() && config.cachix.is_null() {
        diags.error(
            "No destination",
            "Add a `store { uri = … }` block (any `nix copy --to` destination; repeat it for several) or a `cachix { cache = … }` block",
            AttributePath::new("store"),
        );
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, at) in destinations::names(config) {
        let Some(name) = name else { continue };
        let normal = name.trim_end_matches('/').to_string();
        if seen.contains(&normal) {
            let attribute = if name.starts_with("cachix:") {
                "cache"
            } else {
                "uri"
            };
            diags.error(
                "Duplicate destination",
                format!("`{name}` is named by two blocks: each destination once (a push already gives every destination only what it lacks)"),
                at.attribute(attribute),
            );
        }
        seen.push(normal);
    }
    for (i, dest) in destinations::stores(config).iter().enumerate() {
        let at = |name: &'static str| AttributePath::new("store").index(i as i64).attribute(name);
        match &dest.uri {
            Value::Value(uri) => {
                if let Err(e) = store::validate_store_uri(uri) {
                    diags.error("Invalid store URI", e, at("uri"));
                }
            }
            Value::Null => diags.error("Missing store URI", "`store.uri` is required", at("uri")),
            Value::Unknown => {}
        }
        if let Value::Value(url) = &dest.public_url {
            if let Err(e) = store::validate_http_url(url) {
                diags.error("Invalid public_url", e, at("public_url"));
            }
        }
        for (key, name) in [
            (&dest.secret_key, "secret_key"),
            (&dest.secret_key_wo, "secret_key_wo"),
        ] {
            if let Value::Value(key) = key {
                if let Err(e) = store::validate_secret_key(key.expose()) {
                    diags.error(format!("Invalid {name}"), e, at(name));
                }
            }
        }
        crate::write_only::Pair {
            name: "secret_key",
            plain: &dest.secret_key,
            write_only: &dest.secret_key_wo,
            version: &dest.secret_key_wo_version,
        }
        .validate(
            |name| AttributePath::new("store").index(i as i64).attribute(name),
            diags,
        );
        if let Value::Value(file) = &dest.netrc_file {
            if let Err(e) = std::fs::read_to_string(source::expand(file)) {
                diags.error(
                    "Unreadable netrc_file",
                    format!("`{file}`: {e}"),
                    at("netrc_file"),
                );
            }
        }
    }
}

/// `exclude` (regular expressions) and `skip_upstream` (HTTP binary caches
/// that are not also destinations).
fn validate_filters(config: &CachePushState, diags: &mut Diagnostics) {
    let list = |v: &super::Strings| -> Vec<(usize, String)> {
        v.as_ref_option()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref_option().map(|s| (i, s.clone())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = Vec::new();
    for (i, pattern) in list(&config.exclude) {
        let at = AttributePath::new("exclude").index(i as i64);
        if let Err(e) = closure::compile_exclude(&pattern) {
            diags.error("Invalid exclude pattern", format!("`{pattern}`: {e}"), at);
        } else if seen.contains(&pattern) {
            diags.error(
                "Duplicate exclude pattern",
                format!("`{pattern}` is listed twice"),
                at,
            );
        }
        seen.push(pattern);
    }
    let destinations: Vec<String> = destinations::stores(config)
        .iter()
        .filter_map(|s| {
            store::presence_url(
                s.uri.as_ref_option()?,
                s.public_url.as_ref_option().map(String::as_str),
            )
        })
        .collect();
    let mut seen = Vec::new();
    for (i, url) in list(&config.skip_upstream) {
        let at = AttributePath::new("skip_upstream").index(i as i64);
        let normal = url.trim_end_matches('/').to_string();
        if let Err(e) = store::validate_http_url(&url) {
            diags.error(
                "Invalid skip_upstream URL",
                format!("{e}: upstream caches are asked over HTTP(S) for `<hash>.narinfo`"),
                at,
            );
        } else if url.contains('?') {
            diags.error(
                "Invalid skip_upstream URL",
                format!("`{url}` has store parameters (`?…`): give the cache's plain URL"),
                at,
            );
        } else if destinations.contains(&normal) {
            diags.error(
                "Destination used as upstream",
                format!(
                    "`{url}` is also a destination: paths it lacks would never be uploaded to it"
                ),
                at,
            );
        } else if seen.contains(&normal) {
            diags.error(
                "Duplicate skip_upstream URL",
                format!("`{url}` is listed twice"),
                at,
            );
        }
        seen.push(normal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installables_in_a_flake() {
        for ok in [
            "hello",
            "packages.x86_64-linux.hello",
            "default",
            "hello^out,dev",
            "homeConfigurations.\"dev@workstation\".activationPackage",
            "homeConfigurations.\"ops@build.example.org\".activationPackage",
            "x.\"a b#c:d/e\"",
            "x.\"a\\\\b \\${c}\"",
            ".packages.x86_64-linux.hello",
        ] {
            assert!(
                check_installable(ok, true).is_ok(),
                "{ok}: {:?}",
                check_installable(ok, true)
            );
        }
        for (bad, why) in [
            (".#hello", "write `hello`"),
            ("#hello", "write `hello`"),
            ("nixpkgs#hello", "full installable"),
            ("/nix/store/x", "full installable"),
            ("a\nb", "control characters"),
            ("", "empty"),
            ("a b", "whitespace"),
            ("a..b", "empty name"),
            ("x.\"dev@host", "no closing"),
            ("x.\"a\\\"b\"", "no escape for it"),
        ] {
            let err = check_installable(bad, true).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_installable("nixpkgs#hello", false).is_ok());
        assert!(check_installable(
            "git+https://h/r?rev=a#homeConfigurations.\"u@h\".activationPackage",
            false
        )
        .is_ok());
        assert!(check_installable("/nix/store/abc-x.drv^out", false).is_ok());
        assert!(check_installable("nixpkgs#hello\n", false).is_err());
        let err = check_installable("nixpkgs#x.\"a", false).unwrap_err();
        assert!(err.contains("no closing"), "{err}");
    }

    #[test]
    fn flake_refs_and_durations() {
        assert!(check_flake_ref("git+http://127.0.0.1:8750/www/x.git?ref=main&rev=abc").is_ok());
        assert!(check_flake_ref("github:o/r#x").is_err());
        assert!(check_flake_ref("a b").is_err());
    }
}
