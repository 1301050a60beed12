//! The `store` destination: any store `nix copy --to` can write (HTTP(S),
//! S3, `file://`, SSH). Validation of its URIs, where to check presence over
//! HTTP, and the shape of the remote push (`scripts/store_push.sh`, which
//! signs with a key file uploaded 0600 and removed afterwards).

/// Schemes of `store.uri` Nix can copy to.
pub const STORE_SCHEMES: &[&str] = &["http", "https", "s3", "file", "ssh", "ssh-ng", "gs"];

fn scheme(uri: &str) -> Option<&str> {
    uri.split_once("://").map(|(s, _)| s)
}

/// Check `store.uri`: a known scheme, something after it, no whitespace or
/// control characters.
pub fn validate_store_uri(uri: &str) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URI contains whitespace or control characters".into());
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!(
            "`{uri}` is not a store URI: expected `<scheme>://…` with a scheme among {}",
            STORE_SCHEMES.join(", ")
        ));
    };
    if !STORE_SCHEMES.contains(&scheme) {
        return Err(format!(
            "unknown store URI scheme `{scheme}`: use one of {}",
            STORE_SCHEMES.join(", ")
        ));
    }
    if rest.is_empty() || rest.starts_with('?') {
        return Err(format!("`{uri}` names no host, bucket or directory"));
    }
    if uri.contains("secret-key=") {
        return Err(
            "do not put `secret-key=` in the URI: set `secret_key`, which travels to the builder in a 0600 file"
                .into(),
        );
    }
    Ok(())
}

/// Check an HTTP(S) URL (`public_url`, Cachix `uri`).
pub fn validate_http_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains whitespace or control characters".into());
    }
    match scheme(url) {
        Some("http") | Some("https")
            if url.split_once("://").is_some_and(|(_, r)| !r.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(format!("`{url}` is not an http:// or https:// URL")),
    }
}

/// Whether `uri` is itself an HTTP(S) binary cache.
pub fn is_http(uri: &str) -> bool {
    matches!(scheme(uri), Some("http") | Some("https"))
}

/// The URL to check narinfos at: `public_url` if given, else the store URI
/// itself when it is HTTP(S) (without its `?…` store parameters), else none.
pub fn presence_url(uri: &str, public_url: Option<&str>) -> Option<String> {
    if let Some(url) = public_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    if is_http(uri) {
        let base = uri.split('?').next().unwrap_or(uri);
        return Some(base.trim_end_matches('/').to_string());
    }
    None
}

/// The host part of an HTTP(S) URL, for netrc lookups.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Check a Nix binary-cache secret key: `<name>:<base64 of 64 bytes>`.
pub fn validate_secret_key(key: &str) -> Result<(), String> {
    use base64::Engine;
    let key = key.trim();
    let Some((name, b64)) = key.split_once(':') else {
        return Err(
            "expected `<key name>:<base64>` as `nix-store --generate-binary-cache-key` writes it"
                .into(),
        );
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the key name (before `:`) is empty or has whitespace".into());
    }
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(bytes) if bytes.len() == 64 => Ok(()),
        Ok(bytes) => Err(format!(
            "the key is {} bytes, an ed25519 secret key is 64 (is this the public key?)",
            bytes.len()
        )),
        Err(_) => Err("the part after `:` is not base64".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_uris() {
        for ok in [
            "http://127.0.0.1:8750",
            "https://cache.example.com",
            "s3://bucket?region=eu-west-1",
            "file:///var/cache/nix",
            "ssh-ng://nix@cache.example.com",
            "ssh://cache",
        ] {
            assert!(validate_store_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "cache.example.com",
            "http://",
            "file://",
            "http://a b",
            "http://x\n",
            "https://x?secret-key=/k",
        ] {
            assert!(validate_store_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn presence_urls() {
        assert_eq!(
            presence_url("http://127.0.0.1:8750/?compression=zstd", None).as_deref(),
            Some("http://127.0.0.1:8750")
        );
        assert_eq!(presence_url("file:///x", None), None);
        assert_eq!(
            presence_url("s3://b", Some("https://b.example.com/")).as_deref(),
            Some("https://b.example.com")
        );
        assert_eq!(
            url_host("https://u:p@cache.example.com:8443/x"),
            Some("cache.example.com")
        );
        assert_eq!(url_host("http://[::1]:80/"), Some("::1"));
        assert!(validate_http_url("s3://b").is_err());
        assert!(validate_http_url("https://b").is_ok());
    }

    #[test]
    fn secret_keys() {
        let key = format!("test-1:{}", "A".repeat(86) + "==");
        assert!(validate_secret_key(&key).is_ok(), "{key}");
        assert!(
            validate_secret_key("test-1:rK3/o+NLnbXXpUKJdFg07XgqV89TPj3wNurwPygKPSI=").is_err()
        );
        assert!(validate_secret_key("no-colon").is_err());
        assert!(validate_secret_key(":abc").is_err());
    }
}
