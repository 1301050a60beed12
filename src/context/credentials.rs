//! Cachix secrets and where they come from: a resource's own argument, else
//! the provider's `cachix` block, else the environment (`CACHIX_AUTH_TOKEN`,
//! `CACHIX_SIGNING_KEY`). The fallback is written here once; every value,
//! whatever its source, passes the one single-line check of
//! [`crate::secrets::check_single_line`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use crate::secrets::{check_single_line, Secret};
use crate::tfschema::Optional;

/// The public Cachix API; tests point `cachix.api_url` at a local server.
pub const DEFAULT_CACHIX_API_URL: &str = "https://cachix.org/api/v1";

pub const TOKEN_ENV: &str = "CACHIX_AUTH_TOKEN";
pub const SIGNING_KEY_ENV: &str = "CACHIX_SIGNING_KEY";

/// Cachix credentials shared by every resource. Given here (or through the environment), secrets stay out of the Terraform state.
// The provider's `cachix` block.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct CachixBlock {
    /// Cachix auth token. Default: the `CACHIX_AUTH_TOKEN` environment variable.
    #[schemars(with = "Optional<Secret>")]
    pub auth_token: Value<Secret>,
    /// Cachix signing key, for caches that sign on the client. Default: the `CACHIX_SIGNING_KEY` environment variable.
    #[schemars(with = "Optional<Secret>")]
    pub signing_key: Value<Secret>,
    /// Base URL of the Cachix API: `https://`, or `http://` to a loopback address only (the auth token travels in a Bearer header). Default: `https://cachix.org/api/v1`.
    #[schemars(with = "Optional<String>")]
    pub api_url: Value<String>,
}

/// Cachix settings after the environment fallbacks.
#[derive(Clone, Debug, Default)]
pub struct CachixSettings {
    pub auth_token: Option<Secret>,
    pub signing_key: Option<Secret>,
    pub api_url: String,
}

/// A secret as far as the plan knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretValue {
    /// Depends on a value not known yet.
    Unknown,
    Absent,
    Set(Secret),
}

impl SecretValue {
    /// The secret, if set (an unknown one counts as absent).
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }

    /// The secret's text for fingerprints: `None` while unknown.
    pub fn known(&self) -> Option<Option<String>> {
        match self {
            Self::Unknown => None,
            Self::Absent => Some(None),
            Self::Set(s) => Some(Some(s.expose().to_string())),
        }
    }
}

/// A resource's own value, else the provider's.
fn fallback(resource: &Value<Secret>, provider: &Option<Secret>) -> SecretValue {
    match resource {
        Value::Value(s) => SecretValue::Set(Secret::new(s.expose().trim())),
        Value::Unknown => SecretValue::Unknown,
        Value::Null => provider
            .clone()
            .map_or(SecretValue::Absent, SecretValue::Set),
    }
}

impl CachixSettings {
    /// The provider block's values, else the environment's. Errors (a value
    /// that is not one line) name the attribute or the variable.
    pub fn configure(block: &CachixBlock, diags: &mut Diagnostics) -> Self {
        let resolve = |value: &Value<Secret>,
                       name: &'static str,
                       env: &str,
                       check: fn(&str) -> Result<(), String>,
                       diags: &mut Diagnostics| {
            let (text, source) = match value.as_ref_option() {
                Some(s) => (s.expose().to_string(), format!("cachix.{name}")),
                None => match std::env::var(env).ok().filter(|v| !v.is_empty()) {
                    Some(v) => (v, format!("the {env} environment variable")),
                    None => return None,
                },
            };
            match check(&text).and_then(|()| Secret::single_line(&text)) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    diags.error(
                        format!("Invalid Cachix {}", name.replace('_', " ")),
                        format!("{source} {e}"),
                        AttributePath::new("cachix").index(0).attribute(name),
                    );
                    None
                }
            }
        };
        Self {
            auth_token: resolve(
                &block.auth_token,
                "auth_token",
                TOKEN_ENV,
                check_single_line,
                diags,
            ),
            signing_key: resolve(
                &block.signing_key,
                "signing_key",
                SIGNING_KEY_ENV,
                crate::cache::cachix::check_signing_key,
                diags,
            ),
            api_url: block
                .api_url
                .clone()
                .as_option()
                .unwrap_or_else(|| DEFAULT_CACHIX_API_URL.to_string()),
        }
    }

    /// The auth token for a resource whose own argument is `resource`.
    pub fn auth_token(&self, resource: &Value<Secret>) -> SecretValue {
        fallback(resource, &self.auth_token)
    }

    /// The signing key for a resource whose own argument is `resource`.
    pub fn signing_key(&self, resource: &Value<Secret>) -> SecretValue {
        fallback(resource, &self.signing_key)
    }
}

/// Plan-time check of a Cachix signing key argument at `path`: one line and
/// the shape cachix takes ([`crate::cache::cachix::check_signing_key`]).
pub fn validate_signing_key(value: &Value<Secret>, path: AttributePath, diags: &mut Diagnostics) {
    if let Value::Value(secret) = value {
        if let Err(e) = crate::cache::cachix::check_signing_key(secret.expose()) {
            diags.error("Invalid Cachix signing key", format!("the value {e}"), path);
        }
    }
}

/// Plan-time check of a resource-level secret argument at `path`.
pub fn validate_secret(value: &Value<Secret>, path: AttributePath, diags: &mut Diagnostics) {
    if let Value::Value(secret) = value {
        if let Err(e) = check_single_line(secret.expose()) {
            diags.error("Invalid secret", e, path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> Value<Secret> {
        Value::Value(Secret::new(s))
    }

    #[test]
    fn resource_then_provider_then_nothing() {
        let provider = CachixSettings {
            auth_token: Some(Secret::new("provider-token")),
            ..Default::default()
        };
        assert_eq!(
            provider.auth_token(&set("own-token")),
            SecretValue::Set(Secret::new("own-token"))
        );
        assert_eq!(
            provider.auth_token(&Value::Null),
            SecretValue::Set(Secret::new("provider-token"))
        );
        assert_eq!(provider.auth_token(&Value::Unknown), SecretValue::Unknown);
        assert_eq!(provider.signing_key(&Value::Null), SecretValue::Absent);
        assert_eq!(provider.signing_key(&Value::Null).known(), Some(None));
        assert_eq!(provider.auth_token(&Value::Unknown).known(), None);
    }

    #[test]
    fn every_source_passes_the_single_line_check() {
        let mut diags = Diagnostics::default();
        let block = CachixBlock {
            auth_token: set("tok\nsecond line"),
            ..Default::default()
        };
        let settings = CachixSettings::configure(&block, &mut diags);
        assert!(settings.auth_token.is_none());
        assert_eq!(diags.errors.len(), 1);
        assert!(diags.errors[0].attribute.to_string().contains("auth_token"));

        let mut diags = Diagnostics::default();
        validate_secret(
            &set("a\u{7}b"),
            AttributePath::new("cachix")
                .index(0)
                .attribute("auth_token"),
            &mut diags,
        );
        assert_eq!(diags.errors.len(), 1);
        let mut diags = Diagnostics::default();
        validate_secret(&set("fine"), AttributePath::new("x"), &mut diags);
        validate_secret(&Value::Unknown, AttributePath::new("x"), &mut diags);
        assert!(diags.errors.is_empty());
    }
}
