//! The managed Nix config both ways: what `nixbuild_builder`'s arguments
//! and blocks (`gc`'s sizes, `push`'s hook, the credentials file) write into
//! `/etc/nix/nixbuild.conf`, and an import reading the arguments back from it.
//! Above [`config`](super::config) (the arguments), beside the blocks it reads.

use tf_provider::value::Value;

use super::build_keys::{self, Protocol};
use super::config::{
    known_strings, str_list, BuildUserBlock, BuilderState, CachixBlock, NixBlock,
    DEFAULT_BUILD_USER,
};
use crate::nix::conf::ManagedConf;

impl BuilderState {
    /// The managed Nix config, given the Cachix substituter and key (if any).
    /// `None` while an argument is unknown.
    pub fn managed_conf(&self, cachix: Option<(&str, &str)>) -> Option<ManagedConf> {
        self.managed_conf_with(cachix, None)
    }

    /// [`managed_conf`](Self::managed_conf); `include_credentials`, when
    /// given, says whether the credentials file is included (for a prior
    /// state whose credentials came from write-only arguments it does not
    /// hold), else the arguments say.
    pub fn managed_conf_with(
        &self,
        cachix: Option<(&str, &str)>,
        include_credentials: Option<bool>,
    ) -> Option<ManagedConf> {
        if self.nix.is_unknown() || self.build_user.is_unknown() || self.push.is_unknown() {
            return None;
        }
        let nix = self.nix_block();
        if nix.max_jobs.is_unknown() || nix.cores.is_unknown() || nix.extra_config.is_unknown() {
            return None;
        }
        let include_credentials = match include_credentials {
            Some(include) => include,
            None => super::nix_credentials::wanted(&nix)?.any(),
        };
        let (min_free, max_free) = super::gc::sizes(&self.gc)?;
        let mut trusted_users = vec![self.build_user_name()?];
        trusted_users.extend(known_strings(&nix.trusted_users)?);
        let mut substituters = known_strings(&nix.substituters)?;
        let mut keys = known_strings(&nix.trusted_public_keys)?;
        if let Some((uri, key)) = cachix {
            substituters.push(uri.to_string());
            keys.push(key.to_string());
        }
        Some(ManagedConf {
            max_jobs: nix.max_jobs.as_option(),
            cores: nix.cores.as_option(),
            min_free,
            max_free,
            system_features: match &nix.system_features {
                Value::Null => None,
                list => Some(known_strings(list)?),
            },
            extra_platforms: known_strings(&nix.extra_platforms)?,
            trusted_users,
            substituters,
            trusted_public_keys: keys,
            extra_config: nix.extra_config.as_option(),
            cachix_cache: match cachix {
                Some(_) => self
                    .cachix
                    .as_ref_option()
                    .and_then(|c| c.cache.as_ref_option().cloned()),
                None => None,
            },
            post_build_hook: self
                .push
                .as_ref_option()
                .map(|_| super::push_hook::HOOK_PATH.to_string()),
            include_credentials,
        })
    }

    /// Import: take the arguments from what is on the host (the managed config
    /// and the build user's keys). Arguments that describe *how* to converge
    /// (install method, restart command, secrets, on_destroy, timeouts) cannot
    /// be read back; they stay null.
    /// `adopted_account`: the host records the build user as adopted.
    pub fn adopt(
        &mut self,
        config_text: &str,
        keys_text: Option<&str>,
        watch_store: bool,
        adopted_account: bool,
    ) {
        let (conf, user) = ManagedConf::parse(config_text);
        let list = |items: &[String]| {
            if items.is_empty() {
                Value::Null
            } else {
                str_list(items)
            }
        };
        let cachix_entries = usize::from(conf.cachix_cache.is_some());
        let without_cachix =
            |items: &[String]| list(&items[..items.len().saturating_sub(cachix_entries)]);
        self.nix = Value::Value(NixBlock {
            max_jobs: conf.max_jobs.into(),
            cores: conf.cores.into(),
            system_features: conf
                .system_features
                .as_deref()
                .map(str_list)
                .unwrap_or_default(),
            extra_platforms: list(&conf.extra_platforms),
            trusted_users: list(&conf.trusted_users),
            substituters: without_cachix(&conf.substituters),
            trusted_public_keys: without_cachix(&conf.trusted_public_keys),
            extra_config: conf.extra_config.clone().into(),
            ..Default::default()
        });
        let lines: Vec<(String, Option<Protocol>)> = keys_text
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(build_keys::parse_line)
            .collect();
        let keys: Vec<String> = lines.iter().map(|(k, _)| k.clone()).collect();
        // Any plain line means the keys were given a shell.
        let shell = lines.iter().any(|(_, p)| p.is_none());
        let protocol = lines.iter().find_map(|(_, p)| *p);
        self.build_user = Value::Value(BuildUserBlock {
            name: user.filter(|u| u != DEFAULT_BUILD_USER).into(),
            authorized_keys: list(&keys),
            adopt_existing: if adopted_account {
                Value::Value(true)
            } else {
                Value::Null
            },
            allow_shell: if shell {
                Value::Value(true)
            } else {
                Value::Null
            },
            protocol: match protocol {
                Some(Protocol::Ssh) => Value::Value("ssh".into()),
                _ => Value::Null,
            },
        });
        self.gc = super::gc::from_conf(conf.min_free, conf.max_free);
        self.cachix = match conf.cachix_cache {
            Some(cache) => Value::Value(CachixBlock {
                cache: Value::Value(cache),
                watch_store: if watch_store {
                    Value::Value(true)
                } else {
                    Value::Null
                },
                ..Default::default()
            }),
            None => Value::Null,
        };
    }
}
