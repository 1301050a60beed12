//! The Cachix destination: the Cachix API (`GET /cache/{name}` for the cache's
//! URI, `POST /cache/{name}/narinfo` for the hashes it lacks) and the push
//! itself, which runs the `cachix` CLI on the builder with the paths on stdin
//! and the credentials in that one process's environment, read from the same
//! stdin before the paths (see `scripts/cachix_push.sh`): never a file on the
//! builder, a command line, a log line or the Terraform state.

use serde::Deserialize;

use super::http::{send, text, HttpAuth, HttpError};

/// Hashes per `POST /cache/{name}/narinfo` request (the cachix CLI sends a
/// whole closure in one; batches keep a request's size bounded).
pub const BATCH: usize = 1000;

/// What `GET /cache/{name}` says about a cache (the fields the provider uses).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CacheInfo {
    pub uri: String,
    #[serde(rename = "isPublic", default)]
    pub is_public: bool,
    #[serde(rename = "publicSigningKeys", default)]
    pub public_signing_keys: Vec<String>,
}

/// What a Cachix signing key must be, as the cachix CLI reads
/// `CACHIX_SIGNING_KEY`: the base64 of a 64-byte ed25519 secret key, the
/// form `cachix generate-keypair` prints (cachix
/// src/Cachix/Client/Secrets.hs, `parseSigningKeyLenient` and
/// `exportSigningKey`; the CLI decodes leniently and would sign with
/// whatever bytes come out, so the shape is checked here instead). The
/// error never repeats the key.
pub fn check_signing_key(value: &str) -> Result<(), String> {
    use base64::Engine;
    crate::secrets::check_single_line(value)?;
    let key = value.trim();
    if key.contains(':') {
        return Err("is in Nix's `NAME:BASE64` form: cachix takes only the base64 part after the colon (what `cachix generate-keypair` prints)".into());
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let Some(bytes) = engines.iter().find_map(|e| e.decode(key).ok()) else {
        return Err("is not base64: a Cachix signing key is the base64 of a 64-byte ed25519 secret key, as `cachix generate-keypair` prints it".into());
    };
    if bytes.len() != 64 {
        return Err(format!(
            "decodes to {} bytes: a Cachix signing key is the base64 of a 64-byte ed25519 secret key, as `cachix generate-keypair` prints it",
            bytes.len()
        ));
    }
    Ok(())
}

/// Whether `name` can be a Cachix cache name (lowercase letters, digits, `-`).
pub fn valid_cache_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

/// A client of the Cachix API at `api_url` (e.g. `https://cachix.org/api/v1`).
#[derive(Clone, Debug)]
pub struct CachixApi {
    client: reqwest::Client,
    api_url: String,
    auth: HttpAuth,
}

impl CachixApi {
    pub fn new(client: reqwest::Client, api_url: &str, token: Option<&str>) -> Self {
        Self {
            client,
            api_url: api_url.trim_end_matches('/').to_string(),
            auth: token.map_or(HttpAuth::None, |t| HttpAuth::Bearer(t.to_string())),
        }
    }

    /// The bearer credentials, for narinfo checks against a private cache.
    pub fn auth(&self) -> &HttpAuth {
        &self.auth
    }

    fn status_error(url: String, status: u16, body: &str) -> HttpError {
        match status {
            401 | 403 => HttpError::Denied { url, status },
            500..=599 => HttpError::Unreachable {
                url,
                reason: format!("server error {status}"),
            },
            _ => HttpError::Unexpected {
                url,
                status,
                reason: body.trim().chars().take(300).collect(),
            },
        }
    }

    /// `GET /cache/{name}`.
    pub async fn cache(&self, name: &str) -> Result<CacheInfo, HttpError> {
        let url = format!("{}/cache/{name}", self.api_url);
        let response = send(self.auth.apply(self.client.get(&url)), &url).await?;
        let status = response.status().as_u16();
        let body = text(response, &url).await?;
        if status != 200 {
            return Err(Self::status_error(url, status, &body));
        }
        serde_json::from_str(&body).map_err(|e| HttpError::Unexpected {
            url,
            status,
            reason: format!("not a Cachix cache description: {e}"),
        })
    }

    /// `POST /cache/{name}/narinfo` with store-path hashes, [`BATCH`] per
    /// request: the ones the cache lacks, in the caller's order.
    pub async fn missing(&self, name: &str, hashes: &[String]) -> Result<Vec<String>, HttpError> {
        let mut missing = Vec::new();
        for batch in hashes.chunks(BATCH) {
            missing.extend(self.missing_batch(name, batch).await?);
        }
        Ok(missing)
    }

    async fn missing_batch(&self, name: &str, hashes: &[String]) -> Result<Vec<String>, HttpError> {
        let url = format!("{}/cache/{name}/narinfo", self.api_url);
        let response = send(self.auth.apply(self.client.post(&url)).json(hashes), &url).await?;
        let status = response.status().as_u16();
        let body = text(response, &url).await?;
        if status != 200 {
            return Err(Self::status_error(url, status, &body));
        }
        let missing: Vec<String> =
            serde_json::from_str(&body).map_err(|e| HttpError::Unexpected {
                url: url.clone(),
                status,
                reason: format!("not a JSON list of hashes: {e}"),
            })?;
        // Keep the caller's order and ignore anything it did not ask about.
        Ok(hashes
            .iter()
            .filter(|h| missing.contains(h))
            .cloned()
            .collect())
    }
}

/// The credentials `cachix_push.sh` reads from its stdin (before an empty
/// line and the paths): one `NAME=value` line per credential that is set.
/// Values hold no newline (checked at plan time).
pub fn credentials_file(auth_token: Option<&str>, signing_key: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(token) = auth_token {
        text.push_str(&format!("CACHIX_AUTH_TOKEN={token}\n"));
    }
    if let Some(key) = signing_key {
        text.push_str(&format!("CACHIX_SIGNING_KEY={key}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_are_base64_of_64_bytes() {
        use base64::Engine;
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let key = b64(64);
        assert!(check_signing_key(&key).is_ok());
        assert!(
            check_signing_key(&format!("{key}\n")).is_ok(),
            "file() keeps a newline"
        );
        assert!(check_signing_key(key.trim_end_matches('=')).is_ok());
        let errors = [
            (format!("cache-1:{key}"), "NAME:BASE64"),
            ("@@secret-value@@".to_string(), "not base64"),
            (b64(32), "decodes to 32 bytes"),
            (String::new(), "empty"),
            (format!("{key}\n{key}"), "control character"),
        ];
        for (bad, why) in errors {
            let e = check_signing_key(&bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(
                bad.len() < 8 || !e.contains(&bad[..8]),
                "the key is repeated: {e}"
            );
        }
    }

    #[test]
    fn cache_names() {
        for ok in ["public-cache", "nixbuild", "a1"] {
            assert!(valid_cache_name(ok), "{ok}");
        }
        for bad in ["", "Upper", "with space", "-lead", "a/b", "a\nb", "é"] {
            assert!(!valid_cache_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_cache_description() {
        let info: CacheInfo = serde_json::from_str(
            r#"{"name":"public-cache","uri":"https://public-cache.cachix.org","isPublic":true,"publicSigningKeys":["public-cache-1:abc="],"githubUsername":"x"}"#,
        )
        .unwrap();
        assert_eq!(info.uri, "https://public-cache.cachix.org");
        assert!(info.is_public);
        assert_eq!(info.public_signing_keys, ["public-cache-1:abc="]);
    }

    /// The credentials, read back by the real script's parser under
    /// /bin/sh from stdin, yield exactly the values (a token with shell
    /// syntax stays inert), and the paths after the empty line stay on stdin
    /// for cachix.
    #[test]
    fn credentials_round_trip_through_the_script_parser() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let token = "tok'$(touch pwned)\"`x` ;&";
        let script = format!(
            "{}\nread_credentials\nprintf '%s|%s|' \"$auth_token\" \"$signing_key\"\ncat",
            crate::scripts::CACHIX_PUSH
                .split("# --- main ---")
                .next()
                .unwrap()
        );
        let mut child = std::process::Command::new("/bin/sh")
            .current_dir(dir.path())
            .args(["-c", &script, "sh"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = format!(
            "{}\n/nix/store/a\n/nix/store/b\n",
            credentials_file(Some(token), Some("key:abc="))
        );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{token}|key:abc=|/nix/store/a\n/nix/store/b\n")
        );
        assert!(!dir.path().join("pwned").exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing was written"
        );
    }
}
