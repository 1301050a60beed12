//! `nixbuild_builder` arguments and attributes: the state shape, every
//! block's schema type (whose descriptions are the docs), and the plan-time
//! validation of the core arguments with attribute paths. The bottom of this
//! directory: it imports no block file (the blocks' own checks run from
//! `mod.rs`, the managed config is assembled in `nix_conf.rs`).

use crate::context::settings::validate_host_and_ssh;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::build_keys::{self, Protocol, PROTOCOLS};
use crate::cache::cachix::valid_cache_name;
use crate::context::credentials::{validate_secret, validate_signing_key};
use crate::context::SshBlock;
use crate::nix::conf::{check_feature, check_public_key, check_substituter, check_system};
use crate::resources::timeouts::{self, Defaults, Operation, Timeouts};
use crate::secrets::Secret;
use crate::ssh::settings::check_user;
use crate::ssh::HostKey;
use crate::tfschema::{schema_of, Block, Computed, Optional, Required};
use crate::write_only::Pair;

/// A list of strings whose elements may each be unknown at plan time.
pub type StrList = Value<Vec<Value<String>>>;

/// All elements known: the list (empty when null). `None` when anything is unknown.
pub fn known_strings(list: &StrList) -> Option<Vec<String>> {
    match list {
        Value::Null => Some(vec![]),
        Value::Unknown => None,
        Value::Value(items) => items
            .iter()
            .map(|v| v.as_ref_option().cloned().filter(|_| !v.is_unknown()))
            .collect(),
    }
}

/// Host name → access token (`nix.access_tokens`).
pub type TokenMap = Value<BTreeMap<String, Value<Secret>>>;

pub fn str_list(items: &[String]) -> StrList {
    Value::Value(items.iter().cloned().map(Value::Value).collect())
}

pub const INSTALL_METHODS: &[&str] = &["auto", "official", "determinate", "distro", "none"];
pub const DEFAULT_OFFICIAL_INSTALLER: &str = "https://nixos.org/nix/install";
pub const DEFAULT_DETERMINATE_INSTALLER: &str = "https://install.determinate.systems/nix";
pub const DEFAULT_BUILD_USER: &str = "nixbuild";
pub const TIMEOUTS: Defaults = Defaults {
    create: std::time::Duration::from_secs(30 * 60),
    update: std::time::Duration::from_secs(30 * 60),
    delete: std::time::Duration::from_secs(10 * 60),
};
pub const WATCH_STORE_UNIT: &str = "nixbuild-cachix-watch-store.service";
pub const CACHIX_ENV_FILE: &str = "/etc/nixbuild/cachix.env";
/// Where the host records which accounts nixbuild_builder created or adopted.
pub const ACCOUNT_RECORDS: &str = "/etc/nixbuild/users";
/// The host's owner claim: which builder resource owns the managed objects.
pub const OWNER_FILE: &str = "/etc/nixbuild/owner";

/// How Nix is installed and configured. The managed settings live in `/etc/nix/nixbuild.conf`, included from `nix.conf`; your own `nix.conf` lines are kept.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct NixBlock {
    /// How to get Nix when it is missing: `auto` (default: keep an existing Nix, else the official installer), `official`, `determinate`, `distro` (the OS package manager, e.g. `apt-get install nix-bin`) or `none` (Nix must already be installed). An existing Nix is never reinstalled.
    #[schemars(with = "Optional<String>")]
    pub install: Value<String>,
    /// Installer script for `official` / `determinate` (and `auto`), an `https://` URL (it runs as root: plain `http://` is refused). Default: the upstream installer URL of the method.
    #[schemars(with = "Optional<String>")]
    pub installer_url: Value<String>,
    /// Multi-user Nix with `nix-daemon` (default `true`). Remote builds as a non-root build user need the daemon.
    #[schemars(with = "Optional<bool>")]
    pub daemon: Value<bool>,
    /// `max-jobs`: builds run in parallel (≥ 1). Default: `auto` (one per CPU).
    #[schemars(with = "Optional<i64>")]
    pub max_jobs: Value<i64>,
    /// `cores`: CPUs each build may use (0 = all).
    #[schemars(with = "Optional<i64>")]
    pub cores: Value<i64>,
    /// `system-features` of the builder, e.g. `["big-parallel", "kvm"]`. Default: Nix's own detection.
    #[schemars(with = "Optional<Vec<String>>")]
    pub system_features: StrList,
    /// `extra-platforms`: further systems this builder can build for, e.g. `["i686-linux"]`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub extra_platforms: StrList,
    /// Users added to `trusted-users` (the build user always is).
    #[schemars(with = "Optional<Vec<String>>")]
    pub trusted_users: StrList,
    /// Substituter URLs added to `substituters`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub substituters: StrList,
    /// Signing keys (`name:base64`) added to `trusted-public-keys`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub trusted_public_keys: StrList,
    /// Raw `nix.conf` lines appended to the managed config.
    #[schemars(with = "Optional<String>")]
    pub extra_config: Value<String>,
    /// Shell command (run as root) that restarts the Nix daemon after a config change. When set, it is always used; when unset, `systemctl restart nix-daemon` is used on hosts with systemd, and nothing on others. Required for a multi-user install on a host without systemd: no installer starts `nix-daemon` there, so this command must start it when it is not running (e.g. `sv restart nix-daemon`); without it the install step fails before installing anything. After a restart (by this command or systemd) of a multi-user Nix, the apply waits up to 30 s until the daemon answers `nix store ping`, so a client building right after the apply finds it up; the command may return before the new daemon listens.
    #[schemars(with = "Optional<String>")]
    pub daemon_restart_command: Value<String>,
    /// Access tokens Nix sends when it fetches `github:`, `gitlab:` and `sourcehut:` flakes and inputs of private repositories, by host name: the input's host, `github.com` unless its `host=` says otherwise (e.g. `{ "github.com" = var.github_token }`). They are written over the SSH channel's stdin as `extra-access-tokens` (your own `nix.conf` tokens stay) into the root-only (0600) file `/etc/nix/nixbuild-credentials.conf`, which the managed config includes; they are never on a command line or in a log. Only root's Nix reads them: a `nixbuild_cache_push` logging in as root (the default `ssh.user`) fetches with them, the build user does not see them. Changing a token updates the file in place; removing the map, or `on_destroy = "clean"`, deletes it. Terraform keeps every argument in the state, so the tokens are there as a sensitive value (pass them from a sensitive variable); the private state keeps only a salted fingerprint of what was written. To keep them out of the state and the plan, use `access_tokens_wo` instead (Terraform ≥ 1.11). Tokens are single words without `#`, checked at plan time.
    #[schemars(with = "Optional<BTreeMap<String, Secret>>")]
    pub access_tokens: TokenMap,
    /// Content of a netrc file (`machine HOST login USER password SECRET` entries) for HTTP basic auth, which Nix's downloader uses for every URL: private flakes and inputs fetched as `http(s)://…` tarballs, and private substituters (binary caches) the daemon downloads from. It is written over stdin into the root-only (0600) file `/etc/nix/nixbuild.netrc`, and `netrc-file` points there. Nix reads one netrc file, so this one replaces the default `/etc/nix/netrc` (and a `netrc-file` of your own `nix.conf`): put every entry here. Changing it updates the file in place; removing it, or `on_destroy = "clean"`, deletes it. Sensitive and in the state like `access_tokens`; `netrc_wo` keeps it out of both.
    #[schemars(with = "Optional<Secret>")]
    pub netrc: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): the same tokens as `access_tokens`, written to the same root-only file, but never stored in the state or the plan (feed it from an ephemeral variable or resource). A write-only argument is a single value, so the tokens are written as Nix's `access-tokens` setting writes them: `HOST=TOKEN` pairs separated by spaces, e.g. `"github.com=${var.github_token} gitlab.example.com=${var.gitlab_token}"`. A refresh still notices a changed or removed file, through a keyed fingerprint of its SHA-256 in the private state. Adding or removing it plans an update; a new value alone does not (it may differ on every run, e.g. from an ephemeral resource): bump `access_tokens_wo_version` to write it. Conflicts with `access_tokens`.
    #[schemars(with = "Optional<Secret>")]
    pub access_tokens_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `access_tokens_wo` to the host. Only with `access_tokens_wo`.
    #[schemars(with = "Optional<i64>")]
    pub access_tokens_wo_version: Value<i64>,
    /// Write-only (Terraform ≥ 1.11): the same netrc content as `netrc`, written to the same root-only file, but never stored in the state or the plan. A refresh still notices a changed or removed file, through a keyed fingerprint of its SHA-256 in the private state. Adding or removing it plans an update; a new value alone does not: bump `netrc_wo_version` to write it. Conflicts with `netrc`.
    #[schemars(with = "Optional<Secret>")]
    pub netrc_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `netrc_wo` to the host. Only with `netrc_wo`.
    #[schemars(with = "Optional<i64>")]
    pub netrc_wo_version: Value<i64>,
}

/// The SSH user that Nix clients log in as to build (`ssh-ng://<name>@host`). It is created and added to `trusted-users`; the host keeps a record (under `/etc/nixbuild/users/`) that this provider created it. An account of that name that this provider did not create is an error naming it, and is left untouched, unless `adopt_existing = true`. It can never be the administrative login user (`ssh.user`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct BuildUserBlock {
    /// User name. Default: `nixbuild`. Renaming it removes the old account if this provider created it (an adopted one is given back).
    #[schemars(with = "Optional<String>")]
    pub name: Value<String>,
    /// OpenSSH public keys of the clients allowed to build on this host, one key per entry (no newlines or control characters). They are the whole content of the build user's `~/.ssh/authorized_keys`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub authorized_keys: StrList,
    /// Take an account of this name that already exists (and that this provider did not create) as the build user (default `false`). The provider then manages its `~/.ssh/authorized_keys` (saving the account's own file once) and its `nix-users` membership, and adds it to `trusted-users`. An adopted account is never deleted: `on_destroy = "clean"` and a rename give it back its own `authorized_keys` and groups, and keep the account, its home and its data.
    #[schemars(with = "Optional<bool>")]
    pub adopt_existing: Value<bool>,
    /// The store protocol clients build through: `ssh-ng` (default: `nix-daemon --stdio`, `store_uri` is `ssh-ng://…`) or `ssh` (`nix-store --serve --write`, `store_uri` is `ssh://…`). Restricted keys may run this protocol's program only.
    #[schemars(with = "Optional<String>")]
    pub protocol: Value<String>,
    /// Give the client keys a shell (default `false`). By default every key line is `restrict,command="… exec <protocol program>" <key>`: the key can build (no pty, no port, agent or X11 forwarding, no other command). `true` writes plain key lines, for users who also log in interactively.
    #[schemars(with = "Optional<bool>")]
    pub allow_shell: Value<bool>,
}

/// Disk policy: Nix's own garbage collection during builds (`min_free` / `max_free`, written as `min-free` / `max-free` into the managed config) and, on systemd hosts, an optional periodic collection (`schedule`): the timer `nixbuild-gc.timer` runs `nix-collect-garbage` (with `--delete-older-than` when `delete_older_than` is set) at low CPU and I/O priority. Changing a value updates the builder in place. A changed, stopped or removed timer shows as drift. Removing the block (or `on_destroy = "clean"`) removes the settings and the units.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct GcBlock {
    /// When free space on the store's file system drops below this during a build, Nix collects garbage until `max_free` is free. A size in bytes with an optional binary suffix `K`, `M`, `G` or `T` (e.g. `"10G"` = 10 × 1024³ bytes); written to the managed config in bytes.
    #[schemars(with = "Optional<String>")]
    pub min_free: Value<String>,
    /// How much free space a collection triggered by `min_free` stops at (same size format, larger than `min_free`; needs `min_free`). Default: Nix's own (collect all garbage).
    #[schemars(with = "Optional<String>")]
    pub max_free: Value<String>,
    /// When to collect garbage periodically, as a systemd `OnCalendar=` expression such as `"daily"`, `"weekly"` or `"Sun *-*-* 03:00:00"` (checked with `systemd-analyze calendar` on the host at plan time when the host is reachable). Needs systemd on the host: a host without systemd is a plan-time error. Missed runs (host off) are caught up at boot. Omit for no periodic collection.
    #[schemars(with = "Optional<String>")]
    pub schedule: Value<String>,
    /// With `schedule`: first delete profile generations older than this many days (`"30d"`), as `nix-collect-garbage --delete-older-than`, so that their closures can be collected too. Default: keep every generation and collect only what no generation uses.
    #[schemars(with = "Optional<String>")]
    pub delete_older_than: Value<String>,
}

/// Prometheus monitoring (systemd hosts): the distribution's `prometheus-node-exporter` (installed when missing; its own service stays disabled) runs as `nixbuild-node-exporter`, and the timer `nixbuild-nix-metrics` writes Nix facts for its textfile collector every minute: `nix_store_size_bytes`, `nix_store_filesystem_free_bytes`, `nix_store_filesystem_size_bytes`, `nix_builds_running`, `nix_daemon_up`, `nix_metrics_last_run_timestamp_seconds`. A stopped service shows as drift. Removing the block (or `on_destroy = "clean"`) removes the units; the package stays.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MonitoringBlock {
    /// Address and port the exporter listens on (`ADDRESS:PORT`, `[IPv6]:PORT` or `PORT`). Default: `"0.0.0.0:9100"`. Open it only to the Prometheus server.
    #[schemars(with = "Optional<String>")]
    pub listen: Value<String>,
}

/// Push every build to a binary cache or any store `nix copy --to` writes (the generic form of `cachix.watch_store`). Installs a Nix `post-build-hook` (`/etc/nixbuild/push/hook`, named in the managed `nixbuild.conf`) that the daemon runs as root after every build, also the builds it runs for remote clients through a machines file. The hook only queues the built paths and returns: a worker signs each path (with its closure) with `secret_key` and copies it with `nix copy --to`, one queue entry after another, so a slow or unreachable store never holds up or fails a build. On systemd hosts the worker is `nixbuild-push.service`, started by `nixbuild-push.path` when builds are queued, and logs to its journal; elsewhere the hook starts it in the background and it logs to `/var/log/nixbuild-push.log`. A failed push is logged and retried by the next run (after the next build) for a day. A changed or removed file, or (systemd) a stopped `nixbuild-push.path`, shows as drift. Destroying the builder, with either `on_destroy`, first runs the worker until nothing is queued, within `timeouts.delete` (builds still running then are not waited for: destroy builders after their builds); paths still queued after that (the store is down) fail the destroy with their count, and the builder stays in the state, so a later destroy uploads them. With `on_destroy = "keep"` a builder that cannot be reached (a short connect, as a refresh makes) is destroyed with a warning: its queue goes with it. Removing the block (or `on_destroy = "clean"`, after that upload) removes the hook line, the files, the queue and the units; removing the block by an apply discards what is still queued.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct PushBlock {
    /// Destination store, as `nix copy --to` takes it: `https://…`/`http://…` (HTTP PUT), `s3://bucket?…`, `file:///dir`, `ssh-ng://user@host`, `ssh://…`, `gs://…`. The worker runs as root on the builder, with root's Nix configuration (credentials such as `netrc-file` or AWS profiles come from there). No `secret-key=` parameter: use `secret_key`.
    #[schemars(with = "Required<String>")]
    pub store_uri: Value<String>,
    /// Binary-cache secret key (`name:base64`, as `nix-store --generate-binary-cache-key` writes it) the worker signs every pushed path with. It travels over the SSH channel's stdin into a root-only 0600 file on the builder (`/etc/nixbuild/push/secret-key`), never on a command line; a refresh compares the file's SHA-256 with this value's, so a changed file shows as drift. It is kept in the state (marked sensitive); `secret_key_wo` keeps it out. One of the two is required.
    #[schemars(with = "Optional<Secret>")]
    pub secret_key: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): the signing key, like `secret_key`, written to the same root-only file, but never stored in the state or the plan. A refresh still notices a changed or removed key file, through a keyed fingerprint of its SHA-256 in the private state. A new value alone plans no update (it may differ on every run, e.g. from an ephemeral resource): bump `secret_key_wo_version` to write it. Conflicts with `secret_key`.
    #[schemars(with = "Optional<Secret>")]
    pub secret_key_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `secret_key_wo` to the builder. Only with `secret_key_wo`.
    #[schemars(with = "Optional<i64>")]
    pub secret_key_wo_version: Value<i64>,
    /// Regular expressions matched against the name of each built path, the part after `<hash>-` (`hello-2.12`, `hello-2.12-doc`), anywhere in the name unless anchored with `^…$`; a matching out path is not pushed (it still is when a pushed path references it: a binary cache must hold every reference of a path it holds). They are matched on the builder with `grep -E`, so only the syntax both `grep -E` and `nixbuild_cache_push`'s `exclude` read is accepted: no `\d`-style escape classes, `(?…)` groups or lazy quantifiers (write `[0-9]`, plain groups).
    #[schemars(with = "Optional<Vec<String>>")]
    pub exclude: StrList,
}

/// A Cachix binary cache this builder substitutes from and, optionally, pushes to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct CachixBlock {
    /// Cache name. Its substituter and public key are added to the Nix config; the key is fetched from the Cachix API unless `public_key` is given. The API's answer is checked like `public_key`; while the API is down, a plan uses the URI and key of the last plan or apply, with a warning.
    #[schemars(with = "Required<String>")]
    pub cache: Value<String>,
    /// The cache's public signing key (`name:base64`), to avoid the API call.
    #[schemars(with = "Optional<String>")]
    pub public_key: Value<String>,
    /// Install the cachix CLI when it is missing (default `false`).
    #[schemars(with = "Optional<bool>")]
    pub install: Value<bool>,
    /// Run `cachix watch-store` as the systemd service `nixbuild-cachix-watch-store`, pushing every new store path (default `false`). Its token and signing key live in a root-only 0600 file. Setting it to `false`, or removing the `cachix` block, stops and removes the service and deletes the token file; a service or token file left on the host shows as drift. Destroy stops the service first, with either `on_destroy`, and waits within `timeouts.delete` until it exits: on SIGTERM, `cachix watch-store` stops watching and uploads every path it has already queued before it exits (the unit gives it `timeouts.delete` as `TimeoutStopSec` and signals only its main process). When it exits without uploading them (e.g. the cache is down) or the timeout passes, the destroy fails, says how many paths were still queued (as watch-store last reported) and keeps the builder. What is still building when the destroy starts is not queued yet: destroy after the builds end. With `on_destroy = "keep"` the service is started again afterwards; a host that cannot be reached gets a warning.
    #[schemars(with = "Optional<bool>")]
    pub watch_store: Value<bool>,
    /// Cachix auth token for this builder. Default: the provider's `cachix.auth_token` (recommended: then the token stays out of the state).
    #[schemars(with = "Optional<Secret>")]
    pub auth_token: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): a Cachix auth token for this builder, like `auth_token`, but never stored in the state or the plan. It is written over stdin into the watch-store service's root-only 0600 token file. Adding or removing it plans an update; a new value alone does not (it may differ on every run, e.g. from an ephemeral resource): bump `auth_token_wo_version` to write it. Conflicts with `auth_token`.
    #[schemars(with = "Optional<Secret>")]
    pub auth_token_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `auth_token_wo` to the host. Only with `auth_token_wo`.
    #[schemars(with = "Optional<i64>")]
    pub auth_token_wo_version: Value<i64>,
    /// Cachix signing key for caches whose paths the client signs: the base64 secret key `cachix generate-keypair` prints (64 bytes; checked at plan time). With `watch_store`, it is written over stdin into the service's root-only 0600 environment file as `CACHIX_SIGNING_KEY`, which `cachix watch-store` signs with; it is never on a command line, in the unit file or in a log. Default: the provider's `cachix.signing_key` (or `CACHIX_SIGNING_KEY`; recommended: then the key stays out of the state). A changed provider-level key plans an update.
    #[schemars(with = "Optional<Secret>")]
    pub signing_key: Value<Secret>,
    /// Write-only (Terraform ≥ 1.11): a Cachix signing key for this builder, like `signing_key`, but never stored in the state or the plan. Adding or removing it plans an update; a new value alone does not (it may differ on every run, e.g. from an ephemeral resource): bump `signing_key_wo_version` to write it. Conflicts with `signing_key`.
    #[schemars(with = "Optional<Secret>")]
    pub signing_key_wo: Value<Secret>,
    /// Any number, stored in the state: changing it plans an update that writes the current `signing_key_wo` to the host. Only with `signing_key_wo`.
    #[schemars(with = "Optional<i64>")]
    pub signing_key_wo_version: Value<i64>,
}

impl CachixBlock {
    /// The secret arguments with their write-only twins: the auth token and
    /// the signing key, in the order of the watch-store secrets.
    pub fn secret_pairs(&self) -> [Pair<'_, Secret>; 2] {
        [
            Pair {
                name: "auth_token",
                plain: &self.auth_token,
                write_only: &self.auth_token_wo,
                version: &self.auth_token_wo_version,
            },
            Pair {
                name: "signing_key",
                plain: &self.signing_key,
                write_only: &self.signing_key_wo,
                version: &self.signing_key_wo_version,
            },
        ]
    }
}

/// Bootstraps a host into a Nix remote builder over SSH and keeps it converged: installs Nix, writes the managed Nix config, creates the SSH build user, trusts the cache's keys and optionally runs `cachix watch-store`. Every step checks before it acts, so a re-apply after a failure resumes. Drift (an edited config, a removed build user, a stopped service) shows as a planned update.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct BuilderState {
    /// Host name or IP address. Changing it replaces the builder.
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<NixBlock>")]
    pub nix: Value<NixBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<BuildUserBlock>")]
    pub build_user: Value<BuildUserBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<CachixBlock>")]
    pub cachix: Value<CachixBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<MonitoringBlock>")]
    pub monitoring: Value<MonitoringBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<PushBlock>")]
    pub push: Value<PushBlock>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<GcBlock>")]
    pub gc: Value<GcBlock>,
    /// What destroy does: `keep` (default: nothing on the host, and no connection unless there is a `push` block, whose queue destroy uploads first; the host is usually destroyed with it) or `clean` (remove only what this resource created: the build user if this provider created it, the managed config, the watch-store service and its token file, the monitoring and gc units, the push hook with its key, queue and units, the Nix credential files).
    #[schemars(with = "Optional<String>")]
    pub on_destroy: Value<String>,
    /// Take over the objects another `nixbuild_builder` resource owns on this host: that resource's owner id, as the error refusing this one names it. Every builder resource has its own owner id; the host keeps which one owns its managed objects (`/etc/nixbuild/owner`), and each build-user record under `/etc/nixbuild/users/` names its owner. An apply, a refresh and `on_destroy = "clean"` touch only their own resource's objects: another resource's on the same host (in another state, or in this one) are an error naming it, and nothing is changed. With `adopt_owner` set to that id, the apply makes them this resource's (the host's claim and the build user's record); the other resource then no longer owns anything there, and its `clean` destroy leaves the host alone. Only the named owner is taken over: a host owned by another id is still refused.
    #[schemars(with = "Optional<String>")]
    pub adopt_owner: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<Timeouts>")]
    pub timeouts: Value<Timeouts>,

    /// `user@host:port` of the administrative connection.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// This resource's owner id: random, made when it is created (a state from an earlier release gets one at its first refresh). The host's claim (`/etc/nixbuild/owner`) and the build user's record name it; an apply, a refresh and `on_destroy = "clean"` touch only objects that carry it. Another resource names it in `adopt_owner` to take this one's objects over.
    #[schemars(with = "Computed<String>")]
    pub owner_id: Value<String>,
    /// The host's public key line, pinned on create: every later connection must present it.
    #[schemars(with = "Computed<String>")]
    pub host_key: Value<String>,
    /// Base64 of `host_key`, for column 8 of Nix's machines file.
    #[schemars(with = "Computed<String>")]
    pub host_key_base64: Value<String>,
    /// Public host key of the bastion (`ssh.bastion_host`, or the provider's), pinned on the first connection through it (or `ssh.bastion_host_key`): later connections through that bastion must present it. Null without a bastion.
    #[schemars(with = "Computed<String>")]
    pub bastion_host_key: Value<String>,
    /// The builder's Nix system, e.g. `x86_64-linux`.
    #[schemars(with = "Computed<String>")]
    pub system: Value<String>,
    /// `system` followed by `nix.extra_platforms`: what the builder can build for.
    #[schemars(with = "Computed<Vec<String>>")]
    pub systems: StrList,
    /// Nix version on the builder, e.g. `2.8.0`.
    #[schemars(with = "Computed<String>")]
    pub nix_version: Value<String>,
    /// Online CPUs of the builder.
    #[schemars(with = "Computed<i64>")]
    pub cpus: Value<i64>,
    /// `nix.max_jobs`, or the CPU count when it is `auto`.
    #[schemars(with = "Computed<i64>")]
    pub max_jobs_effective: Value<i64>,
    /// System features the builder supports (`nix.system_features`, or what Nix detected).
    #[schemars(with = "Computed<Vec<String>>")]
    pub supported_features: StrList,
    /// `ssh-ng://<build user>@host` (`ssh://` with `build_user.protocol = "ssh"`), the store URI clients build through.
    #[schemars(with = "Computed<String>")]
    pub store_uri: Value<String>,
    /// SHA-256 of the managed Nix config as found on the host; a hand edit shows up here as drift.
    #[schemars(with = "Computed<String>")]
    pub config_hash: Value<String>,
    /// What the last refresh found out of line on the host (empty when converged). Non-empty drift plans an update that re-converges the host.
    #[schemars(with = "Computed<Vec<String>>")]
    pub drift: StrList,
    /// The `Host` alias clients reach this builder under, `nixbuild-<host>-<port>`: machine lines that use it (set `ssh_config` on a `nixbuild_machines_file` machine) reach the right port with strict host-key checking.
    #[schemars(with = "Computed<String>")]
    pub ssh_host_alias: Value<String>,
    /// The client's `ssh_config` stanza for this builder: `Host <ssh_host_alias>` with `HostName`, `Port` (the SSH port of this resource's connection), `User` (the build user), `HostKeyAlias`, `StrictHostKeyChecking yes` and keepalives. `nixbuild_machines_file` adds `IdentityFile` and `UserKnownHostsFile` and writes it next to the machines file; see the remote-builders guide for including it.
    #[schemars(with = "Computed<String>")]
    pub ssh_config: Value<String>,
    /// The client's `known_hosts` line for this builder: `[host]:port` (just `host` on port 22) and `ssh_host_alias`, then the pinned `host_key`.
    #[schemars(with = "Computed<String>")]
    pub known_hosts: Value<String>,
}

/// Secrets are not kept in state: only a salted fingerprint of the Cachix
/// token, to notice a rotation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct BuilderPrivate {
    pub token_salt: String,
    pub token_fingerprint: String,
    /// The same of the Cachix signing key the last apply wrote into the
    /// watch-store environment (empty: none; also in a state from before
    /// the key existed).
    pub signing_key_fingerprint: String,
    /// Set by import: the next Read takes the arguments from the host.
    pub imported: bool,
    /// The build user the last Read found on the host as an account this
    /// provider neither created nor adopted (empty: none), so the plan can
    /// refuse it before any apply.
    pub foreign_user: String,
    /// The pinned key is the first one an import saw (the ID carried none):
    /// a configured `ssh.host_key` that differs is an error, not a re-key.
    /// Cleared by the first apply.
    pub pin_from_import: bool,
    /// Nix's version and features from the last full check, with the
    /// fingerprint that lets the next Read reuse them without starting `nix`.
    pub nix_snapshot: crate::host::NixSnapshot,
    /// Set by every build that keeps ownership records on the host. Missing
    /// (false) in a state release 0.1.0 wrote: see `legacy`.
    pub records_ownership: bool,
    /// Salted fingerprint (`token_salt`) of the Nix credential files the
    /// last apply wrote (`nix.access_tokens`, `nix.netrc`); empty: none.
    pub credentials_fingerprint: String,
    /// The secret arguments (`cachix.auth_token`, `nix.access_tokens`,
    /// `nix.netrc`, `push.secret_key`) whose value the last apply took from
    /// their write-only twin: the state does not hold them, so a refresh
    /// checks their files by the fingerprints below, and a plan that adds or
    /// removes a twin plans an update.
    pub write_only: Vec<String>,
    /// Keyed fingerprints (`token_salt`) of the SHA-256 of the credential
    /// files the last apply wrote (see [`crate::write_only::file_fingerprint`];
    /// empty: no such file).
    pub credentials_conf_digest: String,
    pub credentials_netrc_digest: String,
    /// The same of the push hook's signing key file (empty: no `push` block).
    pub push_key_digest: String,
    /// The Cachix cache the last plan or apply looked up, and the URI and
    /// signing key the API gave for it (checked like user input): a plan
    /// while the API is down uses them, with a warning. Empty: none.
    pub cachix_cache: String,
    pub cachix_uri: String,
    pub cachix_key: String,
    /// The owner id of another resource that the last Read found owning this
    /// host (empty: none), so the plan can refuse before any apply.
    pub other_owner: String,
    /// The owner id the object this create replaces left on the host (empty:
    /// none): the create takes its claim over. Only during the create.
    #[serde(skip)]
    pub predecessor_owner: String,
}

/// The resource's schema: [`BuilderState`] and its timeouts' defaults.
pub fn schema() -> Result<Schema, String> {
    let mut schema = schema_of::<BuilderState>()?;
    timeouts::describe(&mut schema, TIMEOUTS, ["", "", ""]);
    Ok(schema)
}

fn check_list(
    list: &StrList,
    path: AttributePath,
    summary: &'static str,
    check: impl Fn(&str) -> Result<(), String>,
    diags: &mut Diagnostics,
) {
    if let Value::Value(items) = list {
        for (i, item) in items.iter().enumerate() {
            if let Value::Value(item) = item {
                if let Err(e) = check(item) {
                    diags.error(summary, e, path.clone().index(i as i64));
                }
            }
        }
    }
}

/// An installer URL: the script runs as root, so only `https://`.
fn check_installer_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") {
        Err(format!("`{url}` is plain http: the installer runs as root on the host, so anyone on the way could replace it; use an https:// URL"))
    } else if url.starts_with("https://")
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Ok(())
    } else {
        Err(format!("`{url}` is not an https:// URL"))
    }
}

/// One `authorized_keys` entry: a single OpenSSH public key line. A newline
/// would smuggle further, unchecked lines (with options such as `command=`)
/// into the file.
fn check_authorized_key(key: &str) -> Result<(), String> {
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the entry contains the control character {c:?}: give one key per entry, without newlines"
        ));
    }
    HostKey::parse(key).map(|_| ()).map_err(|e| {
        format!("{e}; expected an OpenSSH public key line such as `ssh-ed25519 AAAA… comment`")
    })
}

/// An owner id as the provider makes them (lowercase hex): it goes into a
/// remote command's arguments and the host's records.
pub fn check_owner_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(format!(
            "`{id}` is not an owner id (lowercase hex, as the error naming the other owner shows it)"
        ));
    }
    Ok(())
}

/// Plan-time checks of every argument. Unknown values are skipped.
pub fn validate(config: &BuilderState, diags: &mut Diagnostics) {
    validate_host_and_ssh(&config.host, &config.ssh, diags);
    if let Value::Value(on_destroy) = &config.on_destroy {
        if !["keep", "clean"].contains(&on_destroy.as_str()) {
            diags.error(
                "Invalid on_destroy",
                format!("`{on_destroy}` is not `keep` or `clean`"),
                AttributePath::new("on_destroy"),
            );
        }
    }
    if let Value::Value(owner) = &config.adopt_owner {
        if let Err(e) = check_owner_id(owner) {
            diags.error("Invalid adopt_owner", e, AttributePath::new("adopt_owner"));
        }
    }
    if let Value::Value(nix) = &config.nix {
        let at = |name: &'static str| AttributePath::new("nix").index(0).attribute(name);
        if let Value::Value(method) = &nix.install {
            if !INSTALL_METHODS.contains(&method.as_str()) {
                diags.error(
                    "Invalid install method",
                    format!("`{method}` is not one of {}", INSTALL_METHODS.join(", ")),
                    at("install"),
                );
            }
            if method == "none" && nix.installer_url.is_value() {
                diags.error(
                    "installer_url without an installer",
                    "`install = \"none\"` never runs an installer",
                    at("installer_url"),
                );
            }
            if method == "determinate" && nix.daemon == Value::Value(false) {
                diags.error(
                    "Determinate Nix is always multi-user",
                    "set `daemon = true` (or omit it) with `install = \"determinate\"`",
                    at("daemon"),
                );
            }
        }
        if let Value::Value(url) = &nix.installer_url {
            if let Err(e) = check_installer_url(url) {
                diags.error("Invalid installer_url", e, at("installer_url"));
            }
        }
        if let Value::Value(n) = nix.max_jobs {
            if n < 1 {
                diags.error(
                    "Invalid max_jobs",
                    format!("{n}: use a number ≥ 1, or omit it for `auto`"),
                    at("max_jobs"),
                );
            }
        }
        if let Value::Value(n) = nix.cores {
            if n < 0 {
                diags.error(
                    "Invalid cores",
                    format!("{n}: use 0 (all CPUs) or more"),
                    at("cores"),
                );
            }
        }
        check_list(
            &nix.system_features,
            at("system_features"),
            "Invalid system feature",
            check_feature,
            diags,
        );
        check_list(
            &nix.extra_platforms,
            at("extra_platforms"),
            "Invalid system",
            check_system,
            diags,
        );
        check_list(
            &nix.trusted_users,
            at("trusted_users"),
            "Invalid trusted user",
            |u| {
                // `@group` entries are allowed by Nix.
                check_user(u.strip_prefix('@').unwrap_or(u))
            },
            diags,
        );
        check_list(
            &nix.substituters,
            at("substituters"),
            "Invalid substituter",
            check_substituter,
            diags,
        );
        check_list(
            &nix.trusted_public_keys,
            at("trusted_public_keys"),
            "Invalid public key",
            check_public_key,
            diags,
        );
        if let Value::Value(extra) = &nix.extra_config {
            for line in extra.lines() {
                let line = line.trim();
                if !(line.is_empty()
                    || line.starts_with('#')
                    || line.contains('=')
                    || line.starts_with("include ")
                    || line.starts_with("!include "))
                {
                    diags.error(
                        "Invalid extra_config",
                        format!("`{line}` is not a `name = value` nix.conf line"),
                        at("extra_config"),
                    );
                }
            }
        }
        if let Value::Value(cmd) = &nix.daemon_restart_command {
            if cmd.trim().is_empty() {
                diags.error(
                    "Empty daemon_restart_command",
                    "omit it instead of setting it empty",
                    at("daemon_restart_command"),
                );
            }
        }
    }
    if let Value::Value(user) = &config.build_user {
        let at = |name: &'static str| AttributePath::new("build_user").index(0).attribute(name);
        if let Value::Value(name) = &user.name {
            if let Err(e) = check_user(name) {
                diags.error("Invalid build user name", e, at("name"));
            } else if name == "root" {
                diags.error(
                    "Invalid build user name",
                    "the build user must not be root",
                    at("name"),
                );
            }
        }
        if let Value::Value(protocol) = &user.protocol {
            if Protocol::parse(protocol).is_none() {
                diags.error(
                    "Invalid protocol",
                    format!("`{protocol}` is not one of {}", PROTOCOLS.join(", ")),
                    at("protocol"),
                );
            }
        }
        check_list(
            &user.authorized_keys,
            at("authorized_keys"),
            "Invalid public key",
            check_authorized_key,
            diags,
        );
    }
    if let Value::Value(cachix) = &config.cachix {
        let at = |name: &'static str| AttributePath::new("cachix").index(0).attribute(name);
        if let Value::Value(cache) = &cachix.cache {
            if !valid_cache_name(cache) {
                diags.error(
                    "Invalid Cachix cache name",
                    format!(
                        "`{cache}` is not a Cachix cache name (lowercase letters, digits and `-`)"
                    ),
                    at("cache"),
                );
            }
        }
        if let Value::Value(key) = &cachix.public_key {
            if let Err(e) = check_public_key(key) {
                diags.error("Invalid Cachix public key", e, at("public_key"));
            }
        }
        validate_secret(&cachix.auth_token, at("auth_token"), diags);
        validate_secret(&cachix.auth_token_wo, at("auth_token_wo"), diags);
        validate_signing_key(&cachix.signing_key, at("signing_key"), diags);
        validate_signing_key(&cachix.signing_key_wo, at("signing_key_wo"), diags);
        for pair in cachix.secret_pairs() {
            pair.validate(
                |name| AttributePath::new("cachix").index(0).attribute(name),
                diags,
            );
        }
    }
    timeouts::validate(&config.timeouts, diags);
}

/// Plan-time: the administrative login user (`ssh.user` here, else the
/// provider's, else `root`) can never be the build user: the build user's
/// `authorized_keys` would replace the administrator's, and `clean` would
/// delete the account the provider logs in with.
pub fn check_admin_user(
    config: &BuilderState,
    provider_user: Option<&str>,
    diags: &mut Diagnostics,
) {
    let resource_user = config.ssh.as_ref_option().map(|s| &s.user);
    if config.build_user.is_unknown() || matches!(resource_user, Some(Value::Unknown)) {
        return;
    }
    let Some(build_user) = config.build_user_name() else {
        return;
    };
    let admin = match resource_user {
        Some(Value::Value(user)) => user.as_str(),
        _ => provider_user.unwrap_or("root"),
    };
    if admin != build_user {
        return;
    }
    let path = if config.user_block().name.is_value() {
        AttributePath::new("build_user").index(0).attribute("name")
    } else if matches!(resource_user, Some(Value::Value(_))) {
        AttributePath::new("ssh").index(0).attribute("user")
    } else {
        AttributePath::new("build_user")
    };
    diags.error(
        "The build user cannot be the login user",
        format!("`{build_user}` is the user the provider logs in as (ssh.user): as the build user its authorized_keys would be replaced and `on_destroy = \"clean\"` would delete it. Choose another build_user.name"),
        path,
    );
}

impl BuilderState {
    pub fn nix_block(&self) -> NixBlock {
        self.nix.as_ref_option().cloned().unwrap_or_default()
    }
    pub fn user_block(&self) -> BuildUserBlock {
        self.build_user.as_ref_option().cloned().unwrap_or_default()
    }
    pub fn build_user_name(&self) -> Option<String> {
        if self.build_user.is_unknown() {
            return None;
        }
        match self.build_user.as_ref_option().map(|u| &u.name) {
            Some(Value::Unknown) => None,
            Some(Value::Value(name)) => Some(name.clone()),
            _ => Some(DEFAULT_BUILD_USER.into()),
        }
    }
    pub fn on_destroy_clean(&self) -> bool {
        self.on_destroy
            .as_ref_option()
            .is_some_and(|v| v == "clean")
    }
    pub fn install_method(&self) -> String {
        self.nix_block()
            .install
            .as_option()
            .unwrap_or_else(|| "auto".into())
    }
    pub fn daemon(&self) -> bool {
        self.nix_block().daemon.as_option().unwrap_or(true)
    }
    pub fn installer_url(&self) -> String {
        let nix = self.nix_block();
        nix.installer_url
            .as_option()
            .unwrap_or_else(|| match self.install_method().as_str() {
                "determinate" => DEFAULT_DETERMINATE_INSTALLER.into(),
                _ => DEFAULT_OFFICIAL_INSTALLER.into(),
            })
    }
    /// The store protocol (`build_user.protocol`, default `ssh-ng`).
    pub fn protocol(&self) -> Protocol {
        self.user_block()
            .protocol
            .as_ref_option()
            .and_then(|p| Protocol::parse(p))
            .unwrap_or(Protocol::SshNg)
    }
    /// The owner id whose objects this resource takes over (empty: none).
    pub fn adopt_owner(&self) -> String {
        self.adopt_owner
            .as_ref_option()
            .cloned()
            .unwrap_or_default()
    }
    pub fn adopt_existing(&self) -> bool {
        self.user_block().adopt_existing.as_option() == Some(true)
    }
    pub fn watch_store(&self) -> bool {
        self.cachix
            .as_ref_option()
            .is_some_and(|c| c.watch_store.as_ref_option() == Some(&true))
    }
    pub fn cachix_install(&self) -> bool {
        self.cachix
            .as_ref_option()
            .is_some_and(|c| c.install.as_ref_option() == Some(&true))
    }
    pub fn timeout(&self, op: Operation) -> std::time::Duration {
        timeouts::get(&self.timeouts, op, TIMEOUTS)
    }

    /// The authorized_keys file content, or `None` while a key is unknown.
    pub fn authorized_keys_file(&self) -> Option<String> {
        if self.build_user.is_unknown() {
            return None;
        }
        let user = self.user_block();
        if user.allow_shell.is_unknown() || user.protocol.is_unknown() {
            return None;
        }
        let restricted_to = match user.allow_shell.as_option() {
            Some(true) => None,
            _ => Some(self.protocol()),
        };
        let keys = known_strings(&user.authorized_keys)?;
        Some(
            keys.iter()
                .map(|k| build_keys::line(k, restricted_to))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl client";

    /// Signing keys are checked at plan time, at their attribute path, in
    /// both forms; both forms at once, or a version alone, are refused.
    #[test]
    fn cachix_signing_keys_are_checked_at_their_paths() {
        use base64::Engine;
        let good = base64::engine::general_purpose::STANDARD.encode([1u8; 64]);
        let errors = |cachix: CachixBlock| {
            let mut diags = Diagnostics::default();
            validate(
                &BuilderState {
                    cachix: Value::Value(cachix),
                    ..Default::default()
                },
                &mut diags,
            );
            diags
                .errors
                .iter()
                .map(|d| format!("{}: {} @ {}", d.summary, d.detail, d.attribute))
                .collect::<Vec<_>>()
        };
        let secret = |s: &str| Value::Value(Secret::new(s));
        let block = |key: Value<Secret>, wo: Value<Secret>, version: Value<i64>| CachixBlock {
            cache: Value::Value("c".into()),
            signing_key: key,
            signing_key_wo: wo,
            signing_key_wo_version: version,
            ..Default::default()
        };
        assert!(errors(block(secret(&good), Value::Null, Value::Null)).is_empty());
        assert!(errors(block(Value::Null, secret(&good), Value::Value(1))).is_empty());
        let bad = errors(block(
            secret(&format!("c-1:{good}")),
            Value::Null,
            Value::Null,
        ));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].starts_with("Invalid Cachix signing key") && bad[0].contains("NAME:BASE64"),
            "{bad:?}"
        );
        assert!(bad[0].contains("signing_key"), "{bad:?}");
        assert!(!bad[0].contains(&good), "the key in the message: {bad:?}");
        let short = errors(block(Value::Null, secret("AAAA"), Value::Value(1)));
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(short[0].contains("decodes to 3 bytes") && short[0].contains("signing_key_wo"));
        let both = errors(block(secret(&good), secret(&good), Value::Null));
        assert!(
            both.iter()
                .any(|e| e.contains("Both `signing_key` and `signing_key_wo`")),
            "{both:?}"
        );
        let version = errors(block(Value::Null, Value::Null, Value::Value(2)));
        assert!(
            version.iter().any(|e| e.contains("signing_key_wo_version")),
            "{version:?}"
        );
    }

    #[test]
    fn authorized_keys_are_single_lines() {
        assert!(check_authorized_key(KEY).is_ok());
        for bad in [
            format!("{KEY}\ncommand=\"sh\" {KEY}"),
            format!("{KEY}\n"),
            format!("{KEY}\r"),
            format!("ssh-ed25519\tAAAA {KEY}"),
            format!("{KEY}\u{1b}[2J"),
        ] {
            let e = check_authorized_key(&bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        assert!(check_authorized_key("ssh-ed25519 nope").is_err());
    }

    #[test]
    fn installer_urls_are_https() {
        assert!(check_installer_url("https://nixos.org/nix/install").is_ok());
        assert!(check_installer_url("http://nixos.org/nix/install")
            .unwrap_err()
            .contains("plain http"));
        for bad in [
            "ftp://x/i",
            "https://",
            "https://a b",
            "nixos.org",
            "HTTP://x",
        ] {
            assert!(check_installer_url(bad).is_err(), "{bad}");
        }
    }

    fn with_users(ssh_user: Option<&str>, build_user: Option<&str>) -> BuilderState {
        BuilderState {
            ssh: match ssh_user {
                Some(u) => Value::Value(SshBlock {
                    user: Value::Value(u.into()),
                    ..Default::default()
                }),
                None => Value::Null,
            },
            build_user: Value::Value(BuildUserBlock {
                name: build_user.map(str::to_string).into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn admin_error(state: &BuilderState, provider_user: Option<&str>) -> Option<AttributePath> {
        let mut diags = Diagnostics::default();
        check_admin_user(state, provider_user, &mut diags);
        diags.errors.first().map(|d| d.attribute.clone())
    }

    #[test]
    fn the_login_user_is_never_the_build_user() {
        // Resource-level ssh.user, provider-level, and the default build user.
        let at_name = AttributePath::new("build_user").index(0).attribute("name");
        assert_eq!(
            admin_error(&with_users(Some("deploy"), Some("deploy")), None),
            Some(at_name.clone())
        );
        assert_eq!(
            admin_error(&with_users(None, Some("deploy")), Some("deploy")),
            Some(at_name)
        );
        assert_eq!(
            admin_error(&with_users(None, None), Some(DEFAULT_BUILD_USER)),
            Some(AttributePath::new("build_user"))
        );
        assert_eq!(
            admin_error(&with_users(Some("nixbuild"), None), None),
            Some(AttributePath::new("ssh").index(0).attribute("user"))
        );
        // The resource's ssh.user wins over the provider's.
        assert!(admin_error(&with_users(Some("root"), Some("deploy")), Some("deploy")).is_none());
        assert!(admin_error(&with_users(None, Some("builder")), Some("deploy")).is_none());
        // Unknown at plan time: no verdict yet.
        let mut unknown = with_users(None, Some("deploy"));
        unknown.ssh = Value::Value(SshBlock {
            user: Value::Unknown,
            ..Default::default()
        });
        assert!(admin_error(&unknown, Some("deploy")).is_none());
    }
}
