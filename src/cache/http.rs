//! Asking a binary cache over HTTP(S) which store paths it has: `HEAD
//! <cache>/<hash>.narinfo` per path (200 = present, 404/410 = missing), at most
//! [`CONCURRENCY`] at a time over the keep-alive connections of one client per
//! provider process, with optional credentials (a bearer token for Cachix,
//! basic auth for other private caches). `GET` reads one narinfo when its
//! content matters. Never uploads anything; uploads happen on the builder.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::Semaphore;

use crate::nix::narinfo::NarInfo;

/// Concurrent narinfo requests per check.
pub const CONCURRENCY: usize = 16;

/// Credentials for a private cache. Never logged (`Debug` hides them).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum HttpAuth {
    #[default]
    None,
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpAuth::None => "None",
            HttpAuth::Bearer(_) => "Bearer(<sensitive>)",
            HttpAuth::Basic { .. } => "Basic(<sensitive>)",
        })
    }
}

impl HttpAuth {
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            HttpAuth::None => request,
            HttpAuth::Bearer(token) => request.bearer_auth(token),
            HttpAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No answer (DNS, refused connection, timeout, TLS) or a server error.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server refused the credentials (or their absence).
    #[error("{url} answered {status}: check the cache's credentials")]
    Denied { url: String, status: u16 },
    /// Any other unexpected answer.
    #[error("{url} answered {status}: {reason}")]
    Unexpected {
        url: String,
        status: u16,
        reason: String,
    },
    /// Terraform asked the provider to stop while waiting for the answer.
    #[error("interrupted while asking {url}: Terraform asked the provider to stop")]
    Interrupted { url: String },
}

impl HttpError {
    /// Whether the cache could not be asked at all (a warning during Read).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HttpError::Unreachable { .. })
    }

    /// Whether Terraform's stop ended the request ([`crate::interrupt`]).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, HttpError::Interrupted { .. })
    }
}

/// Send `request` to `url`, unless or until Terraform stops the provider
/// (a slow cache would otherwise hold a Ctrl-C up for the client's timeout).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, HttpError> {
    match crate::interrupt::or_stopped(request.send()).await {
        Err(_) => Err(HttpError::Interrupted {
            url: url.to_string(),
        }),
        Ok(sent) => sent.map_err(|e| unreachable(url, &e)),
    }
}

/// The body of `response` from `url`, unless or until Terraform stops the provider.
pub(crate) async fn text(response: reqwest::Response, url: &str) -> Result<String, HttpError> {
    match crate::interrupt::or_stopped(response.text()).await {
        Err(_) => Err(HttpError::Interrupted {
            url: url.to_string(),
        }),
        Ok(body) => body.map_err(|e| unreachable(url, &e)),
    }
}

/// The provider process's HTTP client (a clone shares its connection pool):
/// rustls (ring), short timeouts, a recognisable agent. One client per
/// process, so every resource's checks reuse the same keep-alive connections.
pub fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(new_client).clone()
}

fn new_client() -> reqwest::Client {
    // reqwest is built without a crypto provider of its own; ring is the one
    // tf-provider's gRPC server uses. Err only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!(
            "terraform-provider-nixbuild/",
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .expect("the HTTP client configuration is static")
}

pub(crate) fn unreachable(url: &str, e: &reqwest::Error) -> HttpError {
    // reqwest's Display omits the cause ("error sending request"); add it.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    HttpError::Unreachable {
        url: url.to_string(),
        reason,
    }
}

/// A binary cache reachable over HTTP(S).
#[derive(Clone, Debug)]
pub struct HttpCache {
    client: reqwest::Client,
    base: String,
    auth: HttpAuth,
}

impl HttpCache {
    pub fn new(client: reqwest::Client, base_url: &str, auth: HttpAuth) -> Self {
        Self {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            auth,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The narinfo of the store path with hash part `hash`, or `None` when the
    /// cache does not have it.
    pub async fn narinfo(&self, hash: &str) -> Result<Option<NarInfo>, HttpError> {
        let url = format!("{}/{hash}.narinfo", self.base);
        let response = send(self.auth.apply(self.client.get(&url)), &url).await?;
        let status = response.status().as_u16();
        match status {
            200 => {
                let text = text(response, &url).await?;
                NarInfo::parse(&text)
                    .map(Some)
                    .map_err(|reason| HttpError::Unexpected {
                        url,
                        status,
                        reason: format!("not a narinfo ({reason})"),
                    })
            }
            404 | 410 => Ok(None),
            401 | 403 => Err(HttpError::Denied { url, status }),
            500..=599 => Err(HttpError::Unreachable {
                url,
                reason: format!("server error {status}"),
            }),
            _ => Err(HttpError::Unexpected {
                url,
                status,
                reason: "expected 200 or 404".into(),
            }),
        }
    }

    /// Whether the cache has the store path with hash part `hash` (`HEAD` of
    /// its narinfo: no body travels).
    pub async fn has(&self, hash: &str) -> Result<bool, HttpError> {
        let url = format!("{}/{hash}.narinfo", self.base);
        let response = send(self.auth.apply(self.client.head(&url)), &url).await?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 | 410 => Ok(false),
            status @ (401 | 403) => Err(HttpError::Denied { url, status }),
            status @ 500..=599 => Err(HttpError::Unreachable {
                url,
                reason: format!("server error {status}"),
            }),
            status => Err(HttpError::Unexpected {
                url,
                status,
                reason: "expected 200 or 404".into(),
            }),
        }
    }

    /// Which of `hashes` the cache lacks, in the given order. Asks up to
    /// [`CONCURRENCY`] at a time; the first error ends the check.
    pub async fn missing(&self, hashes: &[String]) -> Result<Vec<String>, HttpError> {
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, hash) in hashes.iter().enumerate() {
            let cache = self.clone();
            let hash = hash.clone();
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (i, cache.has(&hash).await.map(|has| !has))
            });
        }
        let mut missing = vec![false; hashes.len()];
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.map_err(|e| HttpError::Unreachable {
                url: self.base.clone(),
                reason: format!("presence check task failed: {e}"),
            })?;
            missing[i] = result?;
        }
        Ok(hashes
            .iter()
            .zip(missing)
            .filter(|(_, m)| *m)
            .map(|(h, _)| h.clone())
            .collect())
    }
}

/// Credentials for `host` from a netrc file (the format curl and Nix's
/// `netrc-file` use): the `machine` entry for the host, else `default`.
pub fn netrc_lookup(text: &str, host: &str) -> Option<HttpAuth> {
    let mut tokens = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace);
    let mut entries: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            "machine" => entries.push((tokens.next().map(str::to_string), None, None)),
            "default" => entries.push((None, None, None)),
            "login" | "password" | "account" | "macdef" => {
                let value = tokens.next().map(str::to_string);
                if let Some(entry) = entries.last_mut() {
                    match token {
                        "login" => entry.1 = value,
                        "password" => entry.2 = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let to_auth = |(_, login, password): &(Option<String>, Option<String>, Option<String>)| {
        Some(HttpAuth::Basic {
            user: login.clone().unwrap_or_default(),
            password: password.clone()?,
        })
    };
    entries
        .iter()
        .find(|e| e.0.as_deref() == Some(host))
        .or_else(|| entries.iter().find(|e| e.0.is_none()))
        .and_then(to_auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_picks_the_machine_then_default() {
        let text = "# comment\nmachine cache.example.com login ci password s3cret\n\
                    machine other.example.com\n  login o\n  password p\ndefault login anon password guest\n";
        assert_eq!(
            netrc_lookup(text, "cache.example.com"),
            Some(HttpAuth::Basic {
                user: "ci".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(
            netrc_lookup(text, "other.example.com"),
            Some(HttpAuth::Basic {
                user: "o".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            netrc_lookup(text, "unknown.example.com"),
            Some(HttpAuth::Basic {
                user: "anon".into(),
                password: "guest".into()
            })
        );
        assert_eq!(netrc_lookup("machine a login b", "a"), None);
        assert_eq!(netrc_lookup("", "a"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let auth = HttpAuth::Basic {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(!format!("{:?}", HttpAuth::Bearer("tok".into())).contains("tok"));
    }

    /// A closed port is `Unreachable` (a warning during Read), not a failure.
    #[tokio::test]
    async fn closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let cache = HttpCache::new(
            client(),
            &format!("http://127.0.0.1:{port}/"),
            HttpAuth::None,
        );
        let err = cache
            .narinfo("3z85mp8hy1d9h3xhrpw7nmfj9q4va65n")
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains(&port.to_string()));
    }
}
