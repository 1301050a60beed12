//! A small client for the Cachix REST API (`GET /cache/{name}`): a cache's URI
//! and public signing keys. The auth token, when given, goes in a bearer header
//! and nowhere else.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    pub name: Option<String>,
    pub uri: String,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default)]
    pub public_signing_keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CachixApiError {
    #[error("Cachix cache `{0}` does not exist (or is private and the auth token cannot read it)")]
    NotFound(String),
    #[error("the Cachix API refused access to `{0}`: set an auth token that can read it")]
    Unauthorized(String),
    #[error("the Cachix API at {url} failed: {reason}")]
    Failed { url: String, reason: String },
}

/// Cachix cache names: lowercase letters, digits and dashes.
pub fn check_cache_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Cachix cache name (lowercase letters, digits and `-`)"
        ))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!(
            "terraform-provider-nixbuild/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .expect("HTTP client builds")
}

/// `GET {api_url}/cache/{name}`.
pub async fn cache_info(
    api_url: &str,
    name: &str,
    token: Option<&str>,
) -> Result<CacheInfo, CachixApiError> {
    let url = format!("{}/cache/{name}", api_url.trim_end_matches('/'));
    let mut request = client().get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let failed = |reason: String| CachixApiError::Failed {
        url: url.clone(),
        reason,
    };
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    match response.status().as_u16() {
        200 => response
            .json::<CacheInfo>()
            .await
            .map_err(|e| failed(format!("unexpected answer: {e}"))),
        404 => Err(CachixApiError::NotFound(name.to_string())),
        401 | 403 => Err(CachixApiError::Unauthorized(name.to_string())),
        code => Err(failed(format!("HTTP {code}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_published_shape() {
        let json = r#"{"name":"mycache","uri":"https://mycache.cachix.org","isPublic":true,
            "publicSigningKeys":["mycache.cachix.org-1:AAAA"],"githubUsername":"x","permission":"Read"}"#;
        let info: CacheInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info.uri, "https://mycache.cachix.org");
        assert!(info.is_public);
        assert_eq!(
            info.public_signing_keys,
            vec!["mycache.cachix.org-1:AAAA".to_string()]
        );
    }

    #[test]
    fn cache_names() {
        assert!(check_cache_name("my-cache-1").is_ok());
        for bad in ["", "My Cache", "a;b", "-x", "ünï"] {
            assert!(check_cache_name(bad).is_err(), "{bad}");
        }
    }
}
