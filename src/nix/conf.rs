//! The managed Nix configuration of a builder: a file of its own
//! (`/etc/nix/nixbuild.conf`) included from `nix.conf`, so the user's own
//! `nix.conf` lines are never rewritten. List settings use Nix's `extra-`
//! prefix, so they add to what `nix.conf` says instead of replacing it.

use sha2::{Digest, Sha256};

/// Where the managed file lives, and the line that includes it.
pub const MANAGED_CONF_PATH: &str = "/etc/nix/nixbuild.conf";
pub const NIX_CONF_PATH: &str = "/etc/nix/nix.conf";
/// `!include` ignores a missing file, so removing ours never breaks Nix.
pub const INCLUDE_LINE: &str = "!include nixbuild.conf";

/// The lines of managed config text that can change the features Nix
/// reports (`system-features`, `experimental-features` and their `extra-`
/// forms): every line naming features, as `nix_fingerprint.sh` counts them.
pub fn feature_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("features")).collect()
}

/// Settings that end up in the managed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedConf {
    pub max_jobs: Option<i64>,
    pub cores: Option<i64>,
    /// `min-free` / `max-free` in bytes (the builder's `gc` block).
    pub min_free: Option<u64>,
    pub max_free: Option<u64>,
    pub system_features: Option<Vec<String>>,
    pub extra_platforms: Vec<String>,
    pub trusted_users: Vec<String>,
    pub substituters: Vec<String>,
    pub trusted_public_keys: Vec<String>,
    pub extra_config: Option<String>,
    /// The Cachix cache whose substituter and key are the last entries of
    /// `substituters` / `trusted_public_keys` (recorded so import can tell
    /// them apart from the user's own).
    pub cachix_cache: Option<String>,
    /// `post-build-hook`: the `push` block's hook, when configured.
    pub post_build_hook: Option<String>,
    /// Include the root-only credentials file (`nix.access_tokens`, `nix.netrc`).
    pub include_credentials: bool,
}

impl ManagedConf {
    /// The exact file content. Deterministic: the same settings always give the
    /// same bytes, so its hash can be compared with the file found on the host.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Managed by terraform-provider-nixbuild (nixbuild_builder). Edits are\n\
             # reported as drift and overwritten on the next apply; put your own\n\
             # settings in nix.conf.\n",
        );
        if let Some(cache) = &self.cachix_cache {
            out.push_str(&format!("# cachix-cache: {cache}\n"));
        }
        let mut line = |key: &str, value: String| {
            out.push_str(key);
            out.push_str(" = ");
            out.push_str(&value);
            out.push('\n');
        };
        line("extra-experimental-features", "nix-command flakes".into());
        match self.max_jobs {
            Some(n) => line("max-jobs", n.to_string()),
            None => line("max-jobs", "auto".into()),
        }
        if let Some(cores) = self.cores {
            line("cores", cores.to_string());
        }
        if let Some(bytes) = self.min_free {
            line("min-free", bytes.to_string());
        }
        if let Some(bytes) = self.max_free {
            line("max-free", bytes.to_string());
        }
        if let Some(features) = &self.system_features {
            line("system-features", features.join(" "));
        }
        if !self.extra_platforms.is_empty() {
            line("extra-platforms", self.extra_platforms.join(" "));
        }
        if !self.trusted_users.is_empty() {
            line("extra-trusted-users", self.trusted_users.join(" "));
        }
        if !self.substituters.is_empty() {
            line("extra-substituters", self.substituters.join(" "));
        }
        if !self.trusted_public_keys.is_empty() {
            line(
                "extra-trusted-public-keys",
                self.trusted_public_keys.join(" "),
            );
        }
        if let Some(hook) = &self.post_build_hook {
            line("post-build-hook", hook.clone());
        }
        if self.include_credentials {
            out.push_str(super::credentials::CREDENTIALS_INCLUDE_LINE);
            out.push('\n');
        }
        if let Some(extra) = self
            .extra_config
            .as_deref()
            .filter(|e| !e.trim().is_empty())
        {
            out.push_str("# extra_config\n");
            out.push_str(extra.trim_end_matches('\n'));
            out.push('\n');
        }
        out
    }

    pub fn hash(&self) -> String {
        sha256_hex(self.render().as_bytes())
    }

    /// Read back a file written by [`render`](Self::render) (for import).
    /// The build user is the first `extra-trusted-users` entry.
    pub fn parse(text: &str) -> (Self, Option<String>) {
        let mut conf = Self::default();
        let mut build_user = None;
        let mut extra: Option<String> = None;
        let words = |v: &str| v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        // Lines with their ends: `extra_config` is kept byte for byte (a
        // `\r\n` in it is the user's, and `lines()` would drop the `\r`).
        for raw in text.split_inclusive('\n') {
            if let Some(extra) = extra.as_mut() {
                extra.push_str(raw);
                if !raw.ends_with('\n') {
                    extra.push('\n');
                }
                continue;
            }
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line == "# extra_config" {
                extra = Some(String::new());
                continue;
            }
            if line == super::credentials::CREDENTIALS_INCLUDE_LINE {
                conf.include_credentials = true;
                continue;
            }
            if let Some(cache) = line.strip_prefix("# cachix-cache: ") {
                conf.cachix_cache = Some(cache.trim().to_string());
                continue;
            }
            let Some((key, value)) = line.split_once(" = ") else {
                continue;
            };
            match key.trim() {
                "max-jobs" => conf.max_jobs = value.trim().parse().ok(),
                "cores" => conf.cores = value.trim().parse().ok(),
                "min-free" => conf.min_free = value.trim().parse().ok(),
                "max-free" => conf.max_free = value.trim().parse().ok(),
                "system-features" => conf.system_features = Some(words(value)),
                "extra-platforms" => conf.extra_platforms = words(value),
                "extra-trusted-users" => {
                    let mut users = words(value);
                    if !users.is_empty() {
                        build_user = Some(users.remove(0));
                    }
                    conf.trusted_users = users;
                }
                "extra-substituters" => conf.substituters = words(value),
                "extra-trusted-public-keys" => conf.trusted_public_keys = words(value),
                _ => {}
            }
        }
        // render() ends extra_config with exactly one newline; hand it back as
        // users usually write it, without.
        conf.extra_config = extra.map(|e| e.trim_end_matches('\n').to_string());
        (conf, build_user)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Nix signing public key: `name:base64(32 bytes)`.
pub fn check_public_key(key: &str) -> Result<(), String> {
    use base64::Engine;
    let Some((name, data)) = key.split_once(':') else {
        return Err(format!(
            "`{key}` is not `name:base64key` (e.g. `cache.nixos.org-1:6NCH…=`)"
        ));
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(format!("`{key}` has an empty or spaced key name"));
    }
    match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(format!(
            "`{key}`: the part after `:` must be base64 of a 32-byte ed25519 key"
        )),
    }
}

/// A Nix system name: `arch-os`, e.g. `x86_64-linux`, `aarch64-darwin`.
pub fn check_system(system: &str) -> Result<(), String> {
    let valid = system.split_once('-').is_some_and(|(arch, os)| {
        !arch.is_empty()
            && !os.is_empty()
            && system
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{system}` is not a Nix system name like `x86_64-linux`"
        ))
    }
}

/// A system feature: a non-empty word without spaces or commas.
pub fn check_feature(feature: &str) -> Result<(), String> {
    if feature.is_empty()
        || feature
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c.is_control())
    {
        Err(format!(
            "`{feature}` is not a feature name (no spaces or commas)"
        ))
    } else {
        Ok(())
    }
}

/// A substituter URL Nix understands.
pub fn check_substituter(url: &str) -> Result<(), String> {
    const SCHEMES: &[&str] = &[
        "https://",
        "http://",
        "s3://",
        "file://",
        "ssh://",
        "ssh-ng://",
        "daemon",
        "local",
    ];
    if url.chars().any(|c| c.is_whitespace()) || !SCHEMES.iter().any(|s| url.starts_with(s)) {
        Err(format!(
            "`{url}` is not a substituter URL (https://…, s3://…, file://…, ssh-ng://…)"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    /// The lines the fingerprint counts: any naming features, nothing else.
    #[test]
    fn feature_lines_are_the_ones_naming_features() {
        let text = "max-jobs = 3\nextra-system-features = kvm\nsubstituters = x\nexperimental-features = ca-derivations\n";
        assert_eq!(
            feature_lines(text),
            vec![
                "extra-system-features = kvm",
                "experimental-features = ca-derivations"
            ]
        );
    }

    use super::*;

    #[test]
    fn renders_deterministically_with_extra_prefixes() {
        let conf = ManagedConf {
            max_jobs: Some(4),
            cores: Some(2),
            min_free: Some(1 << 30),
            max_free: None,
            system_features: Some(vec!["big-parallel".into(), "kvm".into()]),
            extra_platforms: vec!["i686-linux".into()],
            trusted_users: vec!["nixbuild".into()],
            substituters: vec!["https://mycache.cachix.org".into()],
            trusted_public_keys: vec!["mycache.cachix.org-1:AAAA".into()],
            extra_config: Some("keep-outputs = true\n".into()),
            cachix_cache: None,
            post_build_hook: None,
            include_credentials: false,
        };
        let text = conf.render();
        assert_eq!(text, conf.render());
        for want in [
            "max-jobs = 4\n",
            "min-free = 1073741824\n",
            "cores = 2\n",
            "system-features = big-parallel kvm\n",
            "extra-platforms = i686-linux\n",
            "extra-trusted-users = nixbuild\n",
            "extra-substituters = https://mycache.cachix.org\n",
            "extra-trusted-public-keys = mycache.cachix.org-1:AAAA\n",
            "keep-outputs = true\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(
            !text.contains("\ntrusted-users"),
            "must not replace the user's trusted-users"
        );
        assert_eq!(
            ManagedConf::default()
                .render()
                .matches("max-jobs = auto")
                .count(),
            1
        );
        assert_ne!(conf.hash(), ManagedConf::default().hash());
        assert_eq!(conf.hash().len(), 64);
    }

    #[test]
    fn parse_reads_back_render() {
        let conf = ManagedConf {
            max_jobs: Some(3),
            cores: None,
            min_free: Some(10 << 30),
            max_free: Some(20 << 30),
            system_features: Some(vec!["kvm".into()]),
            extra_platforms: vec![],
            trusted_users: vec!["nixbuild".into(), "alice".into()],
            substituters: vec!["https://a".into(), "https://c.cachix.org".into()],
            trusted_public_keys: vec!["a-1:K".into(), "c-1:K".into()],
            extra_config: Some("keep-outputs = true\nkeep-derivations = true".into()),
            cachix_cache: Some("c".into()),
            post_build_hook: None,
            include_credentials: true,
        };
        let (back, user) = ManagedConf::parse(&conf.render());
        assert_eq!(user.as_deref(), Some("nixbuild"));
        let mut expected = conf.clone();
        expected.trusted_users = vec!["alice".into()];
        assert_eq!(back, expected);
    }

    /// Found by the nix_conf fuzz target: `extra_config` with Windows line
    /// ends lost its `\r`s on import, so the imported file rendered (and
    /// hashed) differently from the one on the host.
    #[test]
    fn parse_keeps_crlf_in_extra_config() {
        let conf = ManagedConf {
            extra_config: Some("keep-outputs = true\r\nkeep-derivations = true\r".into()),
            ..Default::default()
        };
        let (back, _) = ManagedConf::parse(&conf.render());
        assert_eq!(back.extra_config, conf.extra_config);
        assert_eq!(back.render(), conf.render());
        let text = "max-jobs = 2\r\n# extra_config\r\nx = 1\r\n";
        let (back, _) = ManagedConf::parse(text);
        assert_eq!(back.max_jobs, Some(2));
        assert_eq!(back.extra_config.as_deref(), Some("x = 1\r"));
    }

    #[test]
    fn validators() {
        assert!(
            check_public_key("cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=")
                .is_ok()
        );
        for bad in ["nope", ":AAAA", "name:notbase64!", "name:AAAA"] {
            assert!(check_public_key(bad).is_err(), "{bad}");
        }
        assert!(check_system("x86_64-linux").is_ok());
        assert!(check_system("aarch64-darwin").is_ok());
        for bad in ["x86_64", "-linux", "x86 64-linux", "linux-"] {
            assert!(check_system(bad).is_err(), "{bad}");
        }
        assert!(check_feature("big-parallel").is_ok());
        for bad in ["", "a b", "a,b"] {
            assert!(check_feature(bad).is_err(), "{bad:?}");
        }
        assert!(check_substituter("https://cache.nixos.org").is_ok());
        assert!(check_substituter("ftp://x").is_err());
        assert!(check_substituter("https://a b").is_err());
    }
}
