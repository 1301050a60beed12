//! The destinations of one push: every `store` block (repeatable) and the
//! `cachix` block, each with the name that keys `pushed_paths_by_destination`
//! and `missing_paths_by_destination` (the store URI, or `cachix:NAME`), its
//! attribute path for diagnostics, and how to ask it over HTTP which paths it
//! lacks (narinfo `HEAD`s, or Cachix's batch narinfo endpoint). Not here:
//! uploads (`push`) and the filters (`closure`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::closure::{Filters, Graph};
use super::{source, CachePushState, StoreDest};
use crate::cache::cachix::CachixApi;
use crate::cache::http::{self, HttpAuth, HttpCache, HttpError};
use crate::cache::store;
use crate::context::Context;
use crate::nix::store_path::StorePath;
use crate::secrets::Secret;

/// How a destination is written and asked.
pub enum Kind {
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

pub struct Destination {
    /// `store.uri` as configured, or `cachix:NAME`.
    pub name: String,
    /// The block, e.g. `store[1]` or `cachix[0]`.
    pub at: AttributePath,
    pub kind: Kind,
}

/// The name a Cachix destination has in the per-destination maps.
pub fn cachix_name(cache: &str) -> String {
    format!("cachix:{cache}")
}

/// The configured store blocks (an unknown list counts as none).
pub fn stores(state: &CachePushState) -> &[StoreDest] {
    state.store.as_ref_option().map_or(&[], Vec::as_slice)
}

/// Names of the destinations of `state` and their blocks, where known.
pub fn names(state: &CachePushState) -> Vec<(Option<String>, AttributePath)> {
    let mut out: Vec<_> = stores(state)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s.uri.as_ref_option().cloned(),
                AttributePath::new("store").index(i as i64),
            )
        })
        .collect();
    if let Value::Value(c) = &state.cachix {
        out.push((
            c.cache.as_ref_option().map(|n| cachix_name(n)),
            AttributePath::new("cachix").index(0),
        ));
    }
    out
}

/// Credentials for narinfo checks of a store at `url` (its `netrc_file`).
fn store_auth(dest: &StoreDest, url: &str) -> HttpAuth {
    match &dest.netrc_file {
        Value::Value(file) => std::fs::read_to_string(source::expand(file))
            .map(|text| netrc_auth(&text, url))
            .unwrap_or_default(),
        _ => HttpAuth::None,
    }
}

/// The entry of a netrc file (`text`) for the host of `url`.
pub fn netrc_auth(text: &str, url: &str) -> HttpAuth {
    store::url_host(url)
        .and_then(|host| http::netrc_lookup(text, host))
        .unwrap_or_default()
}

/// Which of `paths` the binary cache `cache` lacks (narinfo checks).
pub async fn lacking_at(cache: &HttpCache, paths: &[String]) -> Result<Vec<String>, HttpError> {
    lacking_by_hash(paths, |hashes| async move { cache.missing(&hashes).await }).await
}

/// Ask `missing` (hash parts in, hash parts out) which of `paths` are
/// lacking, and answer with the paths.
async fn lacking_by_hash<F, Fut>(paths: &[String], missing: F) -> Result<Vec<String>, HttpError>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, HttpError>>,
{
    let pairs = hashes(paths);
    let missing = missing(pairs.iter().map(|(_, h)| h.clone()).collect()).await?;
    Ok(pairs
        .into_iter()
        .filter(|(_, h)| missing.contains(h))
        .map(|(p, _)| p)
        .collect())
}

/// Every destination of `state`, secrets resolved.
pub fn resolve(
    state: &CachePushState,
    configured: &Context,
    client: &reqwest::Client,
) -> Vec<Destination> {
    let mut out = Vec::new();
    for (i, s) in stores(state).iter().enumerate() {
        let uri = s.uri.as_ref_option().cloned().unwrap_or_default();
        let presence = store::presence_url(&uri, s.public_url.as_ref_option().map(String::as_str))
            .map(|url| HttpCache::new(client.clone(), &url, store_auth(s, &url)));
        out.push(Destination {
            name: uri.clone(),
            at: AttributePath::new("store").index(i as i64),
            kind: Kind::Store {
                uri,
                secret_key: crate::write_only::effective(&s.secret_key, &s.secret_key_wo)
                    .as_ref_option()
                    .cloned(),
                presence,
            },
        });
    }
    if let Value::Value(c) = &state.cachix {
        let auth_token = configured
            .cachix
            .auth_token(&c.auth_token)
            .secret()
            .cloned();
        let signing_key = configured
            .cachix
            .signing_key(&c.signing_key)
            .secret()
            .cloned();
        let cache = c.cache.as_ref_option().cloned().unwrap_or_default();
        out.push(Destination {
            name: cachix_name(&cache),
            at: AttributePath::new("cachix").index(0),
            kind: Kind::Cachix {
                api: CachixApi::new(
                    client.clone(),
                    &configured.cachix.api_url,
                    auth_token.as_ref().map(Secret::expose),
                ),
                cache,
                auth_token,
                signing_key,
            },
        });
    }
    out
}

/// The hash parts of store paths (unparseable paths are skipped: they came
/// from Nix and were parsed before).
pub fn hashes(paths: &[String]) -> Vec<(String, String)> {
    paths
        .iter()
        .filter_map(|p| {
            StorePath::parse(p)
                .ok()
                .map(|s| (p.clone(), s.hash().to_string()))
        })
        .collect()
}

impl Destination {
    /// Which of `paths` this destination lacks, asked over HTTP; `None` when
    /// it cannot be asked that way (a non-HTTP store without `public_url`).
    pub async fn lacking(&self, paths: &[String]) -> Option<Result<Vec<String>, HttpError>> {
        Some(match &self.kind {
            Kind::Store { presence, .. } => lacking_at(presence.as_ref()?, paths).await,
            Kind::Cachix { api, cache, .. } => {
                lacking_by_hash(
                    paths,
                    |hashes| async move { api.missing(cache, &hashes).await },
                )
                .await
            }
        })
    }
}

/// Refresh: ask every destination about every closure path, then keep what
/// it must hold (`filters`, with the reference `graph` of the last push).
/// Returns the total and the per-destination counts; a destination that
/// cannot be asked (unreachable, or a non-HTTP store) keeps its `prior`
/// count, with a warning when it was unreachable. All of it within `budget`
/// (the read policy's): a cache that answers, but slowly, is a warning once
/// the budget is spent, and the destinations not asked by then keep their
/// prior counts.
pub async fn refresh(
    destinations: &[Destination],
    filters: &Filters,
    closure: &[String],
    graph: Option<&Graph>,
    prior: &Value<BTreeMap<String, Value<i64>>>,
    budget: std::time::Duration,
    diags: &mut Diagnostics,
) -> (i64, Value<BTreeMap<String, Value<i64>>>) {
    let started = std::time::Instant::now();
    let prior = prior.as_ref_option();
    let mut per = BTreeMap::new();
    let mut upstream = None;
    let mut out_of_time = false;
    // One destination after the other; each asks its paths in parallel.
    for d in destinations {
        let left = budget.saturating_sub(started.elapsed());
        let ask = async {
            match d.lacking(closure).await {
                Some(Ok(lacking)) => Some(
                    filters
                        .to_get(closure, graph, lacking, &mut upstream)
                        .await
                        .map_err(|e| (e, AttributePath::new("skip_upstream"))),
                ),
                Some(Err(e)) => Some(Err((e, d.at.clone()))),
                None => None,
            }
        };
        let result = match tokio::time::timeout(left, ask).await {
            Ok(result) => result,
            Err(_) if out_of_time => None,
            Err(_) => {
                out_of_time = true;
                diags.warning(
                    "The binary cache answers too slowly",
                    format!(
                        "checking {} closure paths at {} took longer than {}. The push is kept as it was; the next refresh checks again.",
                        closure.len(),
                        d.name,
                        humantime::format_duration(budget)
                    ),
                    d.at.clone(),
                );
                None
            }
        };
        let count = match result {
            Some(Ok(missing)) => {
                if !missing.is_empty() {
                    tracing::info!(destination = %d.name, "{} lacks {} of {} closure paths it must hold", d.name, missing.len(), closure.len());
                }
                missing.len() as i64
            }
            Some(Err((e, at))) if e.is_interrupted() => {
                diags.error(
                    "Interrupted",
                    format!("{e}. The push is kept as it was."),
                    at,
                );
                prior_count(prior, &d.name)
            }
            Some(Err((e, at))) => {
                diags.warning(
                    "Cannot check the binary cache",
                    format!("{e}. The push is kept as it was; the next refresh checks again."),
                    at,
                );
                prior_count(prior, &d.name)
            }
            None => prior_count(prior, &d.name),
        };
        per.insert(d.name.clone(), Value::Value(count));
    }
    let total = per.values().filter_map(|v| v.as_ref_option()).sum();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        paths = closure.len(),
        destinations = destinations.len(),
        missing = total,
        elapsed_ms,
        "refresh: checked {} closure paths at {} destinations in {elapsed_ms} ms, {total} missing",
        closure.len(),
        destinations.len(),
    );
    (total, Value::Value(per))
}

fn prior_count(prior: Option<&BTreeMap<String, Value<i64>>>, name: &str) -> i64 {
    prior
        .and_then(|p| p.get(name))
        .and_then(|v| v.as_ref_option().copied())
        .unwrap_or(0)
}

/// Serde for the repeatable `store` block: Terraform sends no blocks as an
/// empty list and refuses a null one back, so null is written as `[]`. A
/// 0.1.0 state (one `store` block, also a list) decodes unchanged.
pub mod repeated_block {
    use super::*;

    pub fn serialize<T, S>(value: &Value<Vec<T>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Value::Null => Vec::<&T>::new().serialize(serializer),
            other => other.serialize(serializer),
        }
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Value<Vec<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Value::<Vec<T>>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache that answers every request, but only after `delay`.
    async fn slow_cache(delay: std::time::Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        tokio::time::sleep(delay).await;
                        let answer = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    /// Issue 28, hole 8: a cache that answers each narinfo request within
    /// the HTTP client's own timeout, but slowly, held the refresh (and so
    /// `terraform plan`) for as long as its answers took, unbounded. Now the
    /// refresh ends at its budget with a warning and the prior counts.
    #[tokio::test]
    async fn a_slow_cache_ends_the_refresh_at_its_budget() {
        let url = slow_cache(std::time::Duration::from_secs(30)).await;
        let client = http::client();
        let destination = Destination {
            name: url.clone(),
            at: AttributePath::new("store").index(0),
            kind: Kind::Store {
                uri: url.clone(),
                secret_key: None,
                presence: Some(HttpCache::new(client.clone(), &url, HttpAuth::None)),
            },
        };
        let closure = vec!["/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app".to_string()];
        let prior = Value::Value(BTreeMap::from([(url.clone(), Value::Value(7))]));
        let mut diags = Diagnostics::default();
        let started = std::time::Instant::now();
        let (total, per) = refresh(
            &[destination],
            &Filters::new(&client, &[], &[]),
            &closure,
            None,
            &prior,
            std::time::Duration::from_millis(300),
            &mut diags,
        )
        .await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the refresh waited for the slow cache"
        );
        assert_eq!(total, 7, "the prior count is kept");
        assert_eq!(per.as_ref_option().unwrap()[&url], Value::Value(7));
        let text = format!("{:?}", diags.warnings);
        assert!(text.contains("answers too slowly"), "{text}");
        assert!(diags.errors.is_empty(), "a warning, not an error");
    }

    /// A state written by 0.1.0 (one `store` block, none of the newer
    /// attributes) decodes, keeps its destination, and writes back as a list.
    #[test]
    fn a_0_1_0_state_decodes() {
        let old = serde_json::json!({
            "host": "127.0.0.12",
            "ssh": [],
            "installables": ["app"],
            "store": [{"uri": "http://127.0.0.1:8750", "secret_key": null, "public_url": null, "netrc_file": null}],
            "cachix": [],
            "timeouts": [],
            "id": "9dbab5a5fe6becf41ef8968b9bc0129c",
            "out_paths": ["/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app"],
            "closure_paths": ["/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app"],
            "pushed_paths": 1,
            "missing_paths": 0,
            "cache_url": "http://127.0.0.1:8750"
        });
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let state: CachePushState = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(stores(&state).len(), 1);
        assert!(state.cachix.is_null());
        assert!(state.exclude.is_null() && state.skip_upstream.is_null());
        assert_eq!(
            names(&state)
                .into_iter()
                .map(|(n, _)| n.unwrap())
                .collect::<Vec<_>>(),
            ["http://127.0.0.1:8750"]
        );
        let again: CachePushState =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&state).unwrap()).unwrap();
        assert_eq!(stores(&again).len(), 1);
    }

    /// No `store` block is written as an empty list (Terraform refuses null
    /// for a block list).
    #[test]
    fn no_store_blocks_is_an_empty_list() {
        let state = CachePushState::default();
        let bytes = rmp_serde::to_vec_named(&state).unwrap();
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(value["store"], serde_json::json!([]));
    }
}
