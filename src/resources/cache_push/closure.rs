//! Which closure paths a destination must hold: the closure of the out paths,
//! minus paths whose name matches an `exclude` pattern, minus paths an
//! `skip_upstream` cache serves. The same rule decides what a push uploads
//! and what a refresh requires, so the two never disagree (see the resource
//! docs and docs/guides/cache-push-filters.md for the stated semantics).
//! Not here: asking the destinations themselves (`destinations`).

use regex::Regex;

use crate::cache::http::{HttpAuth, HttpCache, HttpError};
use crate::nix::store_path::StorePath;

/// The filters of one push, compiled.
#[derive(Clone, Default)]
pub struct Filters {
    exclude: Vec<Regex>,
    upstream: Vec<HttpCache>,
}

/// Compile one `exclude` pattern (the `regex` crate's syntax: RE2-like, no
/// look-around or back-references).
pub fn compile_exclude(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("an empty pattern would exclude every path".into());
    }
    Regex::new(pattern).map_err(|e| e.to_string())
}

/// The name part of a store path (`hello-2.12` of `/nix/store/<hash>-hello-2.12`).
pub fn path_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split_once('-').map_or(base, |(_, name)| name)
}

impl Filters {
    /// Filters from the configured patterns and upstream URLs; invalid ones
    /// were rejected at plan time and are skipped here.
    pub fn new(client: &reqwest::Client, exclude: &[String], upstream: &[String]) -> Self {
        Self {
            exclude: exclude
                .iter()
                .filter_map(|p| compile_exclude(p).ok())
                .collect(),
            upstream: upstream
                .iter()
                .map(|u| HttpCache::new(client.clone(), u, HttpAuth::None))
                .collect(),
        }
    }

    /// Whether `path`'s name matches an `exclude` pattern (anywhere in the
    /// name, like `grep -E`; anchor with `^…$` for whole names).
    pub fn excluded(&self, path: &str) -> bool {
        let name = path_name(path);
        self.exclude.iter().any(|r| r.is_match(name))
    }

    /// The closure paths that are not excluded (upstream not yet consulted).
    pub fn not_excluded(&self, closure: &[String]) -> Vec<String> {
        closure
            .iter()
            .filter(|p| !self.excluded(p))
            .cloned()
            .collect()
    }

    pub fn has_upstream(&self) -> bool {
        !self.upstream.is_empty()
    }

    /// Of `lacking` (paths a destination lacks), those no upstream cache
    /// serves: what the destination must get. Each upstream is asked only
    /// about what the ones before it did not have.
    pub async fn not_upstream(&self, lacking: Vec<String>) -> Result<Vec<String>, HttpError> {
        let mut left = lacking;
        for cache in &self.upstream {
            if left.is_empty() {
                break;
            }
            let hashes: Vec<String> = left
                .iter()
                .filter_map(|p| StorePath::parse(p).ok().map(|s| s.hash().to_string()))
                .collect();
            let missing = cache.missing(&hashes).await?;
            left.retain(|p| {
                StorePath::parse(p).map_or(true, |s| missing.iter().any(|h| h == s.hash()))
            });
        }
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_matches_names_not_hashes() {
        let f = Filters::new(
            &crate::cache::http::client(),
            &["^nbt-dep$".into(), "-doc".into()],
            &[],
        );
        assert!(f.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"));
        assert!(!f.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep2"));
        assert!(f.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-hello-2.12-doc"));
        // The hash part is not the name.
        let h = Filters::new(&crate::cache::http::client(), &["d6h0".into()], &[]);
        assert!(!h.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"));
        assert_eq!(
            f.not_excluded(&[
                "/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep".into(),
                "/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool".into(),
            ]),
            ["/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool"]
        );
    }

    #[test]
    fn bad_patterns() {
        assert!(compile_exclude("(").is_err());
        assert!(compile_exclude("").is_err());
        assert!(compile_exclude("(?=x)").is_err(), "no look-ahead");
        assert!(compile_exclude("^glibc-[0-9.]+$").is_ok());
    }
}
