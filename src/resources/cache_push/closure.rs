//! Which closure paths a destination must hold. Nix refuses to add a path to
//! a binary cache that lacks one of its references, so a cache is always
//! closed under references; the filters can therefore leave out only paths no
//! kept path needs. Precisely: a path is *filtered* when its name matches an
//! `exclude` pattern or a `skip_upstream` cache serves it; a destination must
//! hold every unfiltered closure path and everything those reference,
//! transitively (filtered or not). The same rule decides what a push uploads
//! and what a refresh requires (docs/guides/cache-push-filters.md).
//! Not here: asking the destinations themselves (`destinations`).

use std::collections::{BTreeSet, HashMap};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::cache::http::{HttpAuth, HttpCache, HttpError};
use crate::nix::build_output::PathInfo;
use crate::nix::store_path::StorePath;

/// The filters of one push, compiled.
#[derive(Clone, Default)]
pub struct Filters {
    exclude: Vec<Regex>,
    upstream: Vec<HttpCache>,
}

/// The references among the closure paths: `references[i]` lists the indices
/// (into the sorted `closure_paths`) that path `i` references. Kept in private
/// state when filters are set, so a refresh applies the rule without the
/// builder.
#[derive(Serialize, Deserialize, Clone, Default, Debug, PartialEq, Eq)]
pub struct Graph {
    pub references: Vec<Vec<u32>>,
}

impl Graph {
    /// The graph of `closure` (sorted paths) from `nix path-info` output.
    pub fn from_path_info(closure: &[String], infos: &[PathInfo]) -> Self {
        let index: HashMap<&str, u32> = closure
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i as u32))
            .collect();
        let by_path: HashMap<&str, &PathInfo> =
            infos.iter().map(|i| (i.path.as_str(), i)).collect();
        Self {
            references: closure
                .iter()
                .map(|p| {
                    by_path.get(p.as_str()).map_or_else(Vec::new, |info| {
                        info.references
                            .iter()
                            .filter_map(|r| index.get(r.as_str()).copied())
                            .collect()
                    })
                })
                .collect(),
        }
    }
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

    /// Whether any filter is set (then the graph matters).
    pub fn any(&self) -> bool {
        !self.exclude.is_empty() || !self.upstream.is_empty()
    }

    /// Whether `path`'s name matches an `exclude` pattern (anywhere in the
    /// name, like `grep -E`; anchor with `^…$` for whole names).
    pub fn excluded(&self, path: &str) -> bool {
        let name = path_name(path);
        self.exclude.iter().any(|r| r.is_match(name))
    }

    /// Of the non-excluded `closure` paths, those an upstream cache serves.
    /// Each upstream is asked only about what the ones before it lack.
    pub async fn served_upstream(&self, closure: &[String]) -> Result<BTreeSet<String>, HttpError> {
        let mut left: Vec<String> = closure
            .iter()
            .filter(|p| !self.excluded(p))
            .cloned()
            .collect();
        let mut served = BTreeSet::new();
        for cache in &self.upstream {
            if left.is_empty() {
                break;
            }
            let hashes: Vec<String> = left
                .iter()
                .filter_map(|p| StorePath::parse(p).ok().map(|s| s.hash().to_string()))
                .collect();
            let missing = cache.missing(&hashes).await?;
            let (still, found): (Vec<String>, Vec<String>) = left.into_iter().partition(|p| {
                StorePath::parse(p).map_or(true, |s| missing.iter().any(|h| h == s.hash()))
            });
            served.extend(found);
            left = still;
        }
        Ok(served)
    }

    /// Of `lacking` (closure paths a destination lacks), what it must get.
    /// `upstream` remembers the upstream caches' answer across destinations
    /// (they are asked only when some destination lacks something).
    pub async fn to_get(
        &self,
        closure: &[String],
        graph: Option<&Graph>,
        lacking: Vec<String>,
        upstream: &mut Option<BTreeSet<String>>,
    ) -> Result<Vec<String>, HttpError> {
        if lacking.is_empty() || !self.any() {
            return Ok(lacking);
        }
        let served = match upstream {
            Some(served) => served,
            None if self.upstream.is_empty() => upstream.insert(BTreeSet::new()),
            None => upstream.insert(self.served_upstream(closure).await?),
        };
        let required: BTreeSet<String> =
            self.required(closure, graph, served).into_iter().collect();
        Ok(lacking
            .into_iter()
            .filter(|p| required.contains(p))
            .collect())
    }

    /// What a destination must hold of `closure` (sorted): every path that is
    /// neither excluded nor in `upstream`, and everything those reference.
    /// Without a graph (a state from before the filters were set) every
    /// closure path is required.
    pub fn required(
        &self,
        closure: &[String],
        graph: Option<&Graph>,
        upstream: &BTreeSet<String>,
    ) -> Vec<String> {
        let graph = match graph {
            Some(g) if self.any() && g.references.len() == closure.len() => g,
            _ => return closure.to_vec(),
        };
        let mut keep = vec![false; closure.len()];
        let mut stack: Vec<usize> = closure
            .iter()
            .enumerate()
            .filter(|(_, p)| !self.excluded(p) && !upstream.contains(*p))
            .map(|(i, _)| i)
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut keep[i], true) {
                continue;
            }
            stack.extend(
                graph.references[i]
                    .iter()
                    .map(|&r| r as usize)
                    .filter(|&r| r < closure.len() && !keep[r]),
            );
        }
        closure
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(p, _)| p.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app";
    const DEP: &str = "/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep";
    const LIB: &str = "/nix/store/k8gnddq6qwh34da9scl3ynqlvwdymsfr-nbt-lib";
    const TOOL: &str = "/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool";

    /// app -> lib -> dep, tool -> dep (sorted: app, dep, lib, tool).
    fn fixture() -> (Vec<String>, Graph) {
        let closure: Vec<String> = [APP, DEP, LIB, TOOL].map(String::from).to_vec();
        let info = |path: &str, refs: &[&str]| PathInfo {
            path: path.into(),
            nar_size: 1,
            references: refs.iter().map(|r| r.to_string()).collect(),
            valid: true,
        };
        let infos = [
            info(APP, &[LIB]),
            info(LIB, &[DEP]),
            info(DEP, &[]),
            info(TOOL, &[DEP, TOOL]),
        ];
        let graph = Graph::from_path_info(&closure, &infos);
        (closure, graph)
    }

    fn filters(exclude: &[&str]) -> Filters {
        Filters::new(
            &crate::cache::http::client(),
            &exclude.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &[],
        )
    }

    #[test]
    fn exclude_matches_names_not_hashes() {
        let f = filters(&["^nbt-dep$", "-doc"]);
        assert!(f.excluded(DEP));
        assert!(!f.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep2"));
        assert!(f.excluded("/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-hello-2.12-doc"));
        assert!(
            !filters(&["d6h0"]).excluded(DEP),
            "the hash is not the name"
        );
    }

    #[test]
    fn a_filtered_dependency_of_a_kept_path_is_still_required() {
        let (closure, graph) = fixture();
        let none = BTreeSet::new();
        // app excluded: nothing needs it, it is left out; dep is needed by lib.
        let f = filters(&["^nbt-app$", "^nbt-dep$"]);
        assert_eq!(f.required(&closure, Some(&graph), &none), [DEP, LIB, TOOL]);
        // lib excluded, but app needs it.
        let f = filters(&["^nbt-lib$"]);
        assert_eq!(f.required(&closure, Some(&graph), &none), closure);
        // Upstream serves tool and dep: tool is left out, dep is needed by lib.
        let upstream: BTreeSet<String> = [TOOL, DEP].map(String::from).into();
        assert_eq!(
            filters(&[]).required(&closure, Some(&graph), &upstream),
            closure,
            "no filters: everything"
        );
        let f = Filters {
            upstream: vec![HttpCache::new(
                crate::cache::http::client(),
                "http://127.0.0.1:1",
                HttpAuth::None,
            )],
            ..filters(&[])
        };
        assert_eq!(
            f.required(&closure, Some(&graph), &upstream),
            [APP, DEP, LIB]
        );
        // Without a graph, everything is required.
        assert_eq!(
            filters(&["^nbt-app$"]).required(&closure, None, &none),
            closure
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
