//! `builder_check.sh` (run after `probe.sh`): what a builder host looks like,
//! for drift detection and import.

use super::Probe;

/// What the read-only check reports about a host.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub probe: Probe,
    pub config_sha256: String,
    pub include: bool,
    pub user: bool,
    pub user_keys_sha256: String,
    /// Who owns the build user's account: `created`, `adopted`, `foreign`, `absent`.
    pub user_owner: String,
    pub unit: String,
    /// The watch-store token file exists.
    pub cachix_env: bool,
    pub features: Vec<String>,
    /// Only when asked for (import): the managed config and authorized_keys.
    pub config_text: Option<String>,
    pub keys_text: Option<String>,
}

impl Facts {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields = super::fields(text);
        let get = |k: &str| fields.get(k).copied().unwrap_or_default();
        Ok(Self {
            probe: Probe::parse(text)?,
            config_sha256: get("config_sha256").to_string(),
            include: get("include") == "yes",
            user: get("user") == "yes",
            user_keys_sha256: get("user_keys_sha256").to_string(),
            user_owner: get("user_owner").to_string(),
            unit: get("unit").to_string(),
            cachix_env: get("cachix_env") == "yes",
            features: get("features")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            config_text: fields.get("config_b64").and_then(|b| decode_b64(b)),
            keys_text: fields.get("keys_b64").and_then(|b| decode_b64(b)),
        })
    }
}

fn decode_b64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_parse() {
        let text = "system=x86_64-linux\ncpus=2\nnix_version=2.8.0\nnixos=no\nconfig_sha256=abc\ninclude=yes\nuser=yes\nuser_keys_sha256=def\nunit=active\nfeatures=benchmark big-parallel\n";
        let f = Facts::parse(text).unwrap();
        assert!(f.include && f.user && !f.probe.nixos);
        assert_eq!(f.unit, "active");
        assert_eq!(f.features, vec!["benchmark", "big-parallel"]);
    }
}
