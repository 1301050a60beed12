//! Resource `nixbuild_machines_file`: the fleet as Nix's remote-builders file.
//!
//! It renders `machine` blocks into the 8-column format (see
//! [`crate::nix::machines`]) at plan time, and writes the file to a local
//! `path`, to a remote `target` over SSH, or nowhere (render only). Safety
//! rules, because a workstation's hand-written `/etc/nix/machines` must never
//! be lost:
//! - create with `overwrite = false` refuses to replace an existing file with
//!   other content, and leaves it byte for byte as it was;
//! - destroy removes the file only if its SHA-256 is still `id` (the hash of
//!   what this resource last wrote); otherwise it warns and keeps it;
//! - every write goes to a temporary file that is renamed into place.
//!
//! Read reports drift: a deleted file drops the resource from state (the next
//! plan creates it), a changed file shows up as a `content` change (the next
//! apply rewrites it).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::context::settings::validate_block;
use crate::context::{
    Context, Outcome, PlannedPins, Prior, Purpose, Route, SeenKeys, Shared, SshBlock, Target,
};
use crate::nix::machines::{self, Machine};
use crate::nix::ssh_config;
use crate::ssh::settings::check_host;
use crate::ssh::{HostKey, SshError};
use crate::tfschema::{schema_or_diag, Block, BlockList, Computed, Optional, Required};

/// Where a `target` block writes when it has no `path`: Nix's default.
pub const DEFAULT_TARGET_PATH: &str = "/etc/nix/machines";
/// Default `file_permission`: the Nix daemon (root) and users can read it.
pub const DEFAULT_FILE_PERMISSION: &str = "0644";

/// One remote builder: one line of the file, in block order. Works with `dynamic "machine"` over a list of builders.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MachineBlock {
    /// Store URI of the builder: `ssh-ng://[user@]host` (recommended) or `ssh://[user@]host`, optionally with `?key=value` store settings. A port cannot go here (Nix hands the host to ssh as a name): for a builder on another port set `ssh_config` (the line then names its alias).
    #[schemars(with = "Required<String>")]
    pub uri: Value<String>,
    /// Nix systems the builder builds for, e.g. `["x86_64-linux"]`. Default: the client's own system.
    #[schemars(with = "Optional<Vec<String>>")]
    pub systems: Value<Vec<Value<String>>>,
    /// Absolute path, on the client, of the SSH identity file Nix uses to log in. Default: ssh's own default keys.
    #[schemars(with = "Optional<String>")]
    pub ssh_key: Value<String>,
    /// How many builds the builder runs at once, 1 or more. Default (`-` in the file): 1.
    // Numbers arrive as f64 so that `1.5` is a clear plan-time error rather
    // than a decoding failure.
    #[schemars(with = "Optional<f64>")]
    pub max_jobs: Value<f64>,
    /// Relative speed; Nix prefers faster builders. 1 or more. Default: 1.
    #[schemars(with = "Optional<f64>")]
    pub speed_factor: Value<f64>,
    /// System features the builder supports, e.g. `["kvm", "big-parallel"]`.
    #[schemars(with = "Optional<Vec<String>>")]
    pub supported_features: Value<Vec<Value<String>>>,
    /// Features a derivation must require to be built on this builder.
    #[schemars(with = "Optional<Vec<String>>")]
    pub mandatory_features: Value<Vec<Value<String>>>,
    /// Base64 of the builder's public host key line (`host_key_base64` of `nixbuild_host` or `nixbuild_builder`). Nix then trusts exactly this key, with no `known_hosts` entry.
    #[schemars(with = "Optional<String>")]
    pub public_host_key: Value<String>,
    /// The builder's `ssh_config` stanza (`ssh_config` of `nixbuild_builder`). The machine line then names its `Host` alias instead of the host in `uri` (keeping the user), and the stanza goes into the `ssh_config` file written next to the machines file, with `IdentityFile` from `ssh_key` and `UserKnownHostsFile` pointing at the written `known_hosts`. This is how a builder on a port other than 22 is reached.
    #[schemars(with = "Optional<String>")]
    pub ssh_config: Value<String>,
    /// The builder's `known_hosts` line (`known_hosts` of `nixbuild_builder`), written to the `known_hosts` file next to the machines file.
    #[schemars(with = "Optional<String>")]
    pub known_hosts: Value<String>,
}

/// Write the file on a remote host over SSH instead (as root, or through `sudo -n`). Changing `host` or `path` replaces the resource.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct TargetBlock {
    /// Host name or IP address of the host to write the file on.
    #[schemars(with = "Required<String>")]
    pub host: Value<String>,
    /// Absolute path of the file on that host. Default: `/etc/nix/machines`.
    #[schemars(with = "Optional<String>")]
    pub path: Value<String>,
    /// How to reach the target host over SSH. Unset arguments fall back to the provider's `ssh` block. Without `host_key`, the key seen on create is pinned in `target_host_key`.
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<SshBlock>")]
    pub ssh: Value<SshBlock>,
}

/// Renders Nix's remote-builders file (`/etc/nix/machines` format) from `machine` blocks, and writes it to a local `path`, to a remote `target`, or nowhere (render only: use `content` or `builders`). A file this resource did not write is never replaced unless `overwrite = true`, and destroy removes the file only if it still holds what was written.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(default)]
pub struct MachinesFileState {
    #[schemars(with = "BlockList<MachineBlock>")]
    pub machine: Value<Vec<MachineBlock>>,
    /// Absolute path of the file to write on the machine running Terraform, e.g. `/etc/nix/machines`. Changing it replaces the resource. Conflicts with `target`.
    #[schemars(with = "Optional<String>")]
    pub path: Value<String>,
    #[serde(with = "crate::schema::optional_block")]
    #[schemars(with = "Block<TargetBlock>")]
    pub target: Value<TargetBlock>,
    /// Replace an existing file on create. Default: `false`: an existing file with other content is an error and is left untouched.
    #[schemars(with = "Optional<bool>")]
    pub overwrite: Value<bool>,
    /// Mode of the written file, as octal digits. Default: `"0644"`. World-writable modes and the setuid, setgid and sticky bits are refused.
    #[schemars(with = "Optional<String>")]
    pub file_permission: Value<String>,
    /// SHA-256 (hex) of `content`: what this resource last wrote. Destroy removes the file only if it still has this hash.
    #[schemars(with = "Computed<String>")]
    pub id: Value<String>,
    /// The file: one 8-column line per `machine`, `-` for defaults. Known at plan time when every `machine` value is. After a change outside Terraform, the file as found.
    #[schemars(with = "Computed<String>")]
    pub content: Value<String>,
    /// The same machines as one line joined with `; `, for `--builders` or `--option builders`.
    #[schemars(with = "Computed<String>")]
    pub builders: Value<String>,
    /// nix.conf lines that use this file: `builders = @<path>` and `builders-use-substitutes = true` (with the machines inline when no file is written).
    #[schemars(with = "Computed<String>")]
    pub nix_conf: Value<String>,
    /// A `nix build` command line that builds only on these machines, with nothing to set up on the client: `nix build --max-jobs 0 --option builders '<builders>' --option builders-use-substitutes true`; append the installable. `--option builders` is honoured for root and trusted users only (otherwise the daemon ignores it with a warning and builds locally).
    #[schemars(with = "Computed<String>")]
    pub nix_build_command: Value<String>,
    /// The same machines as a Nix expression for NixOS and nix-darwin clients, `nix.buildMachines = <this>;` (with `nix.distributedBuilds = true;`): a list of attribute sets with `hostName`, `protocol`, `sshUser`, `sshKey`, `systems`, `maxJobs`, `speedFactor`, `supportedFeatures`, `mandatoryFeatures`, `publicHostKey`.
    #[schemars(with = "Computed<String>")]
    pub nix_build_machines: Value<String>,
    /// Host key of the `target` host, pinned on create (or `target.ssh.host_key`): every later connection must present it. Null without a target.
    #[schemars(with = "Computed<String>")]
    pub target_host_key: Value<String>,
    /// Host key of the bastion the `target` is reached through (`target.ssh.bastion_host` or the provider's), pinned on the first write through it (or `bastion_host_key`): later connections through that bastion must present it. Null without a bastion.
    #[schemars(with = "Computed<String>")]
    pub target_bastion_host_key: Value<String>,
    /// The client `ssh_config` file: the stanzas of the machines that set `ssh_config`. Written to `ssh_config_path`. Null when no machine sets `ssh_config` or `known_hosts`.
    #[schemars(with = "Computed<String>")]
    pub ssh_config: Value<String>,
    /// The client `known_hosts` file: the `known_hosts` lines of the machines. Written to `known_hosts_path`.
    #[schemars(with = "Computed<String>")]
    pub known_hosts: Value<String>,
    /// Where `ssh_config` is written: the machines file's path with `.ssh_config` appended (on the same host). Null when nothing is written. Point the client at it with `NIX_SSHOPTS="-F <path>"` or an `Include <path>` in root's `~/.ssh/config`.
    #[schemars(with = "Computed<String>")]
    pub ssh_config_path: Value<String>,
    /// Where `known_hosts` is written: the machines file's path with `.known_hosts` appended; the written `ssh_config` names it in `UserKnownHostsFile`.
    #[schemars(with = "Computed<String>")]
    pub known_hosts_path: Value<String>,
}

/// Where the file goes, once every input is known.
#[derive(Clone, Debug, PartialEq)]
enum Location {
    Nowhere,
    Local(String),
    Remote {
        host: String,
        path: String,
        ssh: Box<Value<SshBlock>>,
    },
}

impl Location {
    /// `None` while a deciding value is unknown.
    fn of(state: &MachinesFileState) -> Option<Self> {
        match (&state.path, &state.target) {
            (Value::Unknown, _) | (_, Value::Unknown) => None,
            (Value::Value(path), _) => Some(Self::Local(path.clone())),
            (Value::Null, Value::Null) => Some(Self::Nowhere),
            (Value::Null, Value::Value(target)) => {
                let path = match &target.path {
                    Value::Value(p) => p.clone(),
                    Value::Null => DEFAULT_TARGET_PATH.to_string(),
                    Value::Unknown => return None,
                };
                Some(Self::Remote {
                    host: target.host.as_ref_option()?.clone(),
                    path,
                    ssh: Box::new(target.ssh.clone()),
                })
            }
        }
    }

    /// The attribute a diagnostic about the file points at.
    fn attribute(&self) -> AttributePath {
        match self {
            Self::Remote { .. } => AttributePath::new("target").index(0).attribute("path"),
            _ => AttributePath::new("path"),
        }
    }

    /// The file beside this one with `suffix` appended to its name.
    fn companion(&self, suffix: &str) -> Self {
        match self {
            Self::Nowhere => Self::Nowhere,
            Self::Local(path) => Self::Local(format!("{path}{suffix}")),
            Self::Remote { host, path, ssh } => Self::Remote {
                host: host.clone(),
                path: format!("{path}{suffix}"),
                ssh: ssh.clone(),
            },
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            Self::Nowhere => None,
            Self::Local(path) | Self::Remote { path, .. } => Some(path),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Nowhere => "nowhere".into(),
            Self::Local(path) => path.clone(),
            Self::Remote { host, path, .. } => format!("{path} on {host}"),
        }
    }
}

fn known_list(list: &Value<Vec<Value<String>>>) -> Option<Vec<String>> {
    match list {
        Value::Null => Some(Vec::new()),
        Value::Unknown => None,
        Value::Value(items) => items.iter().map(|v| v.as_ref_option().cloned()).collect(),
    }
}

fn known_opt<T: Clone>(v: &Value<T>) -> Option<Option<T>> {
    match v {
        Value::Value(x) => Some(Some(x.clone())),
        Value::Null => Some(None),
        Value::Unknown => None,
    }
}

fn known_count(v: &Value<f64>) -> Option<Option<u64>> {
    known_opt(v).map(|n| n.and_then(|n| machines::check_count(n).ok()))
}

impl MachineBlock {
    /// The machine, or `None` while any of its values is unknown.
    fn to_machine(&self) -> Option<Machine> {
        let uri = self.uri.as_ref_option()?.clone();
        // With a stanza, the line names its alias (which carries the port).
        let uri = match known_opt(&self.ssh_config)? {
            Some(stanza) => match ssh_config::check_stanza(&stanza) {
                Ok(alias) => ssh_config::uri_with_alias(&uri, &alias),
                Err(_) => uri,
            },
            None => uri,
        };
        Some(Machine {
            uri,
            systems: known_list(&self.systems)?,
            ssh_key: known_opt(&self.ssh_key)?,
            max_jobs: known_count(&self.max_jobs)?,
            speed_factor: known_count(&self.speed_factor)?,
            supported_features: known_list(&self.supported_features)?,
            mandatory_features: known_list(&self.mandatory_features)?,
            public_host_key: known_opt(&self.public_host_key)?,
        })
    }
}

fn known_machines(state: &MachinesFileState) -> Option<Vec<Machine>> {
    match &state.machine {
        Value::Null => Some(Vec::new()),
        Value::Unknown => None,
        Value::Value(blocks) => blocks.iter().map(MachineBlock::to_machine).collect(),
    }
}

impl MachineBlock {
    /// The block that renders `machine` again (defaults as null), for import.
    fn from_machine(machine: Machine) -> Self {
        let list = |items: Vec<String>| match items.is_empty() {
            true => Value::Null,
            false => Value::Value(items.into_iter().map(Value::Value).collect()),
        };
        let count = |n: Option<u64>| n.map(|n| n as f64).into();
        Self {
            uri: Value::Value(machine.uri),
            systems: list(machine.systems),
            ssh_key: machine.ssh_key.into(),
            max_jobs: count(machine.max_jobs),
            speed_factor: count(machine.speed_factor),
            supported_features: list(machine.supported_features),
            mandatory_features: list(machine.mandatory_features),
            public_host_key: machine.public_host_key.into(),
            ssh_config: Value::Null,
            known_hosts: Value::Null,
        }
    }
}

/// The state an import starts from. The ID is the file: an absolute local
/// path, or `user@host[:port]:/path` on a `target`, optionally followed by
/// the target's expected host key line. Read then fills in the machines.
fn import_state(id: &str) -> Result<MachinesFileState, String> {
    let id = id.trim();
    if id.starts_with('/') {
        check_file_path(id)?;
        return Ok(MachinesFileState {
            path: Value::Value(id.to_string()),
            ..Default::default()
        });
    }
    let (file, key) = match id.split_once(char::is_whitespace) {
        Some((file, key)) => {
            let key = HostKey::parse(key.trim())
                .map_err(|e| format!("the host key after the file: {e}"))?;
            (file, Some(key))
        }
        None => (id, None),
    };
    let (login, path) = file
        .split_once(":/")
        .map(|(login, rest)| (login, format!("/{rest}")))
        .ok_or("expected an absolute path, or `user@host[:port]:/path [host key line]`")?;
    let (user, host, port) = crate::ssh::settings::parse_login(login)?;
    check_file_path(&path)?;
    let path = match path == DEFAULT_TARGET_PATH {
        true => Value::Null,
        false => Value::Value(path),
    };
    Ok(MachinesFileState {
        target: Value::Value(TargetBlock {
            host: Value::Value(host),
            path,
            ssh: SshBlock::for_login(&user, port),
        }),
        target_host_key: key.map(|k| k.openssh_line()).into(),
        ..Default::default()
    })
}

/// Private state: whether the target's pin is only the first key an import
/// without a key in its ID saw (cleared by the first apply). While it is, a
/// refresh does not log in with it: the plan compares it with a configured
/// `target.ssh.host_key` first (issue 28: the refresh logged in before).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MachinesFilePrivate {
    pub pin_from_import: bool,
}

/// An imported state takes the file as found: its machines, its content and
/// its hash (so destroy may remove it while it stays unchanged).
fn adopt_found(state: &mut MachinesFileState, found: String) -> Result<(), String> {
    let machines = machines::parse(&found).map_err(|e| e.to_string())?;
    state.machine = Value::Value(
        machines
            .into_iter()
            .map(MachineBlock::from_machine)
            .collect(),
    );
    compute(state);
    state.id = Value::Value(sha256_hex(found.as_bytes()));
    state.content = Value::Value(found);
    Ok(())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fill the computed attributes that follow from the configuration: known
/// when every input is known (so the plan shows the file), unknown otherwise.
fn compute(state: &mut MachinesFileState) {
    if state.machine.is_null() {
        state.machine = Value::Value(Vec::new());
    }
    let machines = known_machines(state);
    match &machines {
        Some(list) => {
            let content = machines::render(list);
            state.id = Value::Value(sha256_hex(content.as_bytes()));
            state.builders = Value::Value(machines::builders_line(list));
            state.content = Value::Value(content);
        }
        None => {
            state.id = Value::Unknown;
            state.builders = Value::Unknown;
            state.content = Value::Unknown;
        }
    }
    compute_client_outputs(state, machines.as_deref());
    compute_ssh_files(state);
    state.nix_conf = match (Location::of(state), &machines) {
        (Some(Location::Local(path) | Location::Remote { path, .. }), _) => {
            Value::Value(machines::nix_conf_for_file(&path))
        }
        (Some(Location::Nowhere), Some(list)) => Value::Value(machines::nix_conf_inline(list)),
        _ => Value::Unknown,
    };
}

/// Suffixes of the files written next to the machines file.
pub const SSH_CONFIG_SUFFIX: &str = ".ssh_config";
pub const KNOWN_HOSTS_SUFFIX: &str = ".known_hosts";

/// `ssh_config` / `known_hosts` (and their paths, next to the machines file)
/// from the machines that carry a stanza or a known_hosts line; all null
/// when none does.
fn compute_ssh_files(state: &mut MachinesFileState) {
    let blocks = match &state.machine {
        Value::Value(blocks) => blocks.clone(),
        Value::Null => Vec::new(),
        Value::Unknown => {
            state.ssh_config = Value::Unknown;
            state.known_hosts = Value::Unknown;
            state.ssh_config_path = Value::Unknown;
            state.known_hosts_path = Value::Unknown;
            return;
        }
    };
    let any_unknown = blocks
        .iter()
        .any(|m| m.ssh_config.is_unknown() || m.known_hosts.is_unknown() || m.ssh_key.is_unknown());
    let wanted = blocks
        .iter()
        .any(|m| m.ssh_config.is_value() || m.known_hosts.is_value());
    let location = Location::of(state);
    if !any_unknown && !wanted {
        state.ssh_config = Value::Null;
        state.known_hosts = Value::Null;
        state.ssh_config_path = Value::Null;
        state.known_hosts_path = Value::Null;
        return;
    }
    let path_of = |suffix: &str| match &location {
        Some(l) => l
            .companion(suffix)
            .path()
            .map(str::to_string)
            .map(Value::Value)
            .unwrap_or(Value::Null),
        None => Value::Unknown,
    };
    state.ssh_config_path = path_of(SSH_CONFIG_SUFFIX);
    state.known_hosts_path = path_of(KNOWN_HOSTS_SUFFIX);
    if any_unknown || location.is_none() {
        state.ssh_config = Value::Unknown;
        state.known_hosts = Value::Unknown;
        return;
    }
    let known_hosts_file = state.known_hosts_path.as_ref_option().cloned();
    let mut config = String::from(ssh_config::FILE_HEADER);
    let mut known = String::new();
    for m in &blocks {
        if let Value::Value(stanza) = &m.ssh_config {
            config.push('\n');
            config.push_str(&ssh_config::with_client_paths(
                stanza,
                m.ssh_key.as_ref_option().map(String::as_str),
                known_hosts_file.as_deref(),
            ));
        }
        if let Value::Value(line) = &m.known_hosts {
            known.push_str(line.trim_end_matches('\n'));
            known.push('\n');
        }
    }
    state.ssh_config = Value::Value(config);
    state.known_hosts = Value::Value(known);
}

/// The ssh files beside the machines file at `location`, with the content
/// the state holds for each (`None`: not written).
fn ssh_files(state: &MachinesFileState, location: &Location) -> Vec<(Location, Option<String>)> {
    if matches!(location, Location::Nowhere) {
        return Vec::new();
    }
    vec![
        (
            location.companion(SSH_CONFIG_SUFFIX),
            state.ssh_config.as_ref_option().cloned(),
        ),
        (
            location.companion(KNOWN_HOSTS_SUFFIX),
            state.known_hosts.as_ref_option().cloned(),
        ),
    ]
}

/// The outputs clients paste (the `nix build` command line and the
/// `nix.buildMachines` expression), from the machines when they are known.
fn compute_client_outputs(state: &mut MachinesFileState, machines: Option<&[Machine]>) {
    (state.nix_build_command, state.nix_build_machines) = match machines {
        Some(list) => (
            Value::Value(machines::nix_build_command(list)),
            Value::Value(machines::build_machines_nix(list)),
        ),
        None => (Value::Unknown, Value::Unknown),
    };
}

/// The host key a remote target will be pinned to, as far as the plan knows:
/// an explicit `ssh.host_key` (normalised), else unknown until the first
/// connection; null without a target.
fn file_mode(state: &MachinesFileState) -> String {
    state
        .file_permission
        .as_ref_option()
        .cloned()
        .unwrap_or_else(|| DEFAULT_FILE_PERMISSION.to_string())
}

/// `0644`-style permissions: 3 or 4 octal digits; never world-writable (any
/// local user could redirect the builds) and never setuid, setgid or sticky
/// (meaningless for a config file, and a setuid bit is a hole).
pub fn check_file_permission(mode: &str) -> Result<u32, String> {
    if !((3..=4).contains(&mode.len()) && mode.chars().all(|c| ('0'..='7').contains(&c))) {
        return Err(format!(
            "`{mode}` is not an octal file mode such as \"0644\" or \"0600\""
        ));
    }
    let bits = u32::from_str_radix(mode, 8).expect("octal digits");
    if bits & 0o7000 != 0 {
        Err(format!("`{mode}` sets the setuid, setgid or sticky bit; a machines file needs none (e.g. \"0644\")"))
    } else if bits & 0o002 != 0 {
        Err(format!("`{mode}` makes the file world-writable: any local user could point the builds at their own machine (e.g. \"0644\")"))
    } else {
        Ok(bits)
    }
}

/// A file path Nix can be pointed at with `builders = @path`: absolute, and
/// free of the characters that split a `builders` value.
pub fn check_file_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not an absolute path; Nix needs one in `builders = @…` (use `abspath(…)` for a path relative to the module)"
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_control() || matches!(c, ';' | '#'))
    {
        return Err(format!(
            "`{path}` contains {c:?}, which Nix's `builders` setting would cut the path at"
        ));
    }
    if path.ends_with('/') {
        return Err(format!("`{path}` names a directory, not a file"));
    }
    Ok(())
}

/// A list attribute of a `machine`: name, error summary, value, check of one item.
type StringListCheck<'a> = (
    &'static str,
    &'static str,
    &'a Value<Vec<Value<String>>>,
    fn(&str) -> Result<(), String>,
);

/// Plan-time checks of the `machine` blocks, each error at its attribute path
/// (e.g. `machine[2].max_jobs`). Unknown values are skipped; Terraform
/// validates again once they are known.
fn validate_machines(blocks: &[MachineBlock], diags: &mut Diagnostics) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, m) in blocks.iter().enumerate() {
        let Value::Value(uri) = &m.uri else { continue };
        if let Some((_, first)) = seen.iter().find(|(u, _)| *u == uri.as_str()) {
            diags.warning(
                "Duplicate builder",
                format!(
                    "machine {} has the same URI as machine {}; Nix counts it as another builder with its own job slots",
                    i + 1,
                    first + 1
                ),
                AttributePath::new("machine").index(i as i64).attribute("uri"),
            );
        } else {
            seen.push((uri.as_str(), i));
        }
    }
    for (i, m) in blocks.iter().enumerate() {
        let at = |name: &'static str| {
            AttributePath::new("machine")
                .index(i as i64)
                .attribute(name)
        };
        let mut report = |name: &'static str, summary: &'static str, result: Result<(), String>| {
            if let Err(e) = result {
                diags.error(summary, format!("machine {}: {e}", i + 1), at(name));
            }
        };
        if let Value::Value(uri) = &m.uri {
            report("uri", "Invalid builder URI", machines::check_uri(uri));
        }
        let lists: [StringListCheck; 3] = [
            (
                "systems",
                "Invalid system name",
                &m.systems,
                machines::check_system,
            ),
            (
                "supported_features",
                "Invalid feature",
                &m.supported_features,
                machines::check_feature,
            ),
            (
                "mandatory_features",
                "Invalid feature",
                &m.mandatory_features,
                machines::check_feature,
            ),
        ];
        for (name, summary, list, check) in lists {
            if let Value::Value(items) = list {
                for item in items.iter().filter_map(Value::as_ref_option) {
                    report(name, summary, check(item));
                }
            }
        }
        if let Value::Value(key) = &m.ssh_key {
            report("ssh_key", "Invalid ssh_key", machines::check_ssh_key(key));
        }
        for (name, n) in [("max_jobs", &m.max_jobs), ("speed_factor", &m.speed_factor)] {
            if let Value::Value(n) = n {
                report(
                    name,
                    "Invalid number",
                    machines::check_count(*n).map(|_| ()),
                );
            }
        }
        if let Value::Value(key) = &m.public_host_key {
            report(
                "public_host_key",
                "Invalid public_host_key",
                machines::check_public_host_key(key).map(|_| ()),
            );
        }
        if let Value::Value(stanza) = &m.ssh_config {
            report(
                "ssh_config",
                "Invalid ssh_config",
                ssh_config::check_stanza(stanza).map(|_| ()),
            );
        }
        if let Value::Value(line) = &m.known_hosts {
            report(
                "known_hosts",
                "Invalid known_hosts",
                ssh_config::check_known_hosts_line(line),
            );
        }
    }
}

fn validate_state(config: &MachinesFileState, diags: &mut Diagnostics) {
    if let Value::Value(blocks) = &config.machine {
        validate_machines(blocks, diags);
    }
    if let Value::Value(path) = &config.path {
        if let Err(e) = check_file_path(path) {
            diags.error("Invalid path", e, AttributePath::new("path"));
        }
    }
    if let Value::Value(mode) = &config.file_permission {
        if let Err(e) = check_file_permission(mode) {
            diags.error(
                "Invalid file_permission",
                e,
                AttributePath::new("file_permission"),
            );
        }
    }
    if let Value::Value(target) = &config.target {
        let at = AttributePath::new("target").index(0);
        if !config.path.is_null() {
            diags.error(
                "Conflicting destinations",
                "set either `path` (a file on the machine running Terraform) or a `target` block (a file on a remote host), not both",
                at.clone(),
            );
        }
        if let Value::Value(host) = &target.host {
            if let Err(e) = check_host(host) {
                diags.error("Invalid host", e, at.clone().attribute("host"));
            }
        }
        if let Value::Value(path) = &target.path {
            if let Err(e) = check_file_path(path) {
                diags.error("Invalid path", e, at.clone().attribute("path"));
            }
        }
        if let Value::Value(ssh) = &target.ssh {
            validate_block(ssh, &at.attribute("ssh").index(0), true, diags);
        }
    }
}

/// Why a guarded create did not write.
enum CreateRefused {
    /// The path holds another file; it was left untouched.
    Exists,
    Failed(String),
}

/// What a managed path holds.
enum Found {
    /// A regular file's bytes.
    File(Vec<u8>),
    Missing,
    /// A symbolic link, or something else than a regular file: never followed
    /// or read, since whoever can write its directory could point it at a
    /// secret (the read runs as root on a remote target). The reason names
    /// the path; the content never shows anywhere.
    Refused(String),
}

impl Found {
    /// What the state records for a refused path: a line that is not the
    /// written content, so the plan shows a change (the apply replaces the
    /// link with the file), and holds nothing from behind the link.
    fn placeholder(reason: &str) -> String {
        format!("# nixbuild: {reason}\n")
    }
}

/// Local files: written next to the target and renamed into place.
mod local {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    fn temp_path(path: &Path) -> std::path::PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(
            ".{name}.nixbuild-{}-{n}-{nanos}",
            std::process::id()
        ))
    }

    /// Write `content` with `mode` to a fresh temporary file beside `path`.
    fn stage(path: &Path, content: &[u8], mode: u32) -> std::io::Result<std::path::PathBuf> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = temp_path(path);
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(content)?;
            file.sync_all()?;
            // Explicit, so the umask does not change the requested mode.
            file.set_permissions(std::fs::Permissions::from_mode(mode))
        })();
        match result {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Replace `path` with `content`, atomically.
    pub fn write(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
        let tmp = stage(path, content, mode)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Create `path` unless another file is there. A file already holding
    /// exactly `content` is taken over: nothing is lost.
    pub fn create(path: &Path, content: &[u8], mode: u32) -> Result<(), CreateRefused> {
        let failed = |e: std::io::Error| CreateRefused::Failed(e.to_string());
        let tmp = stage(path, content, mode).map_err(failed)?;
        // A hard link refuses an existing target in one step, so a file that
        // appears between a check and the write is never clobbered.
        let result = match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(_) if std::fs::symlink_metadata(path).is_ok() => {
                let same = std::fs::symlink_metadata(path)
                    .map(|m| m.file_type().is_file())
                    .unwrap_or(false)
                    && std::fs::read(path).map(|c| c == content).unwrap_or(false);
                if same {
                    std::fs::rename(&tmp, path).map_err(failed)
                } else {
                    Err(CreateRefused::Exists)
                }
            }
            // No hard links on this file system: rename after the check.
            Err(_) => std::fs::rename(&tmp, path).map_err(failed),
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// The file's bytes, never through a symbolic link (`O_NOFOLLOW`, so a
    /// link swapped in after the check is refused too) and never from
    /// anything but a regular file.
    pub fn read(path: &Path) -> std::io::Result<Found> {
        use std::io::Read;
        let link = || {
            Found::Refused(format!(
                "{} is a symbolic link; it was not followed",
                path.display()
            ))
        };
        let not_file = || {
            Found::Refused(format!(
                "{} is not a regular file; it was not read",
                path.display()
            ))
        };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) => return Err(e),
            Ok(meta) if meta.file_type().is_symlink() => return Ok(link()),
            Ok(meta) if !meta.is_file() => return Ok(not_file()),
            Ok(_) => {}
        }
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(link()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) => return Err(e),
        };
        if !file.metadata()?.is_file() {
            return Ok(not_file());
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Found::File(bytes))
    }
}

/// What destroy found.
enum Removal {
    Removed,
    Missing,
    Changed,
}

pub struct MachinesFileResource {
    shared: Arc<Shared>,
}

/// A managed path that is a symbolic link (or not a regular file): a
/// warning and an INFO line naming it, never what it points at.
fn refused_drift(diags: &mut Diagnostics, location: &Location, reason: &str) {
    tracing::info!(
        file = %location.describe(),
        "{reason}; the next apply replaces it with the file"
    );
    diags.warning(
        "Managed file replaced by a link",
        format!(
            "{reason}. Someone who can write its directory may have pointed it elsewhere; the next apply replaces the link with the file (the link's target is left alone)."
        ),
        location.attribute(),
    );
}

impl MachinesFileResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The connection target of a remote file: `target[0].host` and
/// `target[0].ssh`, with the key pinned in `target_host_key`.
fn target<'a>(host: &'a str, ssh: &'a Value<SshBlock>, pins: Pins<'a>) -> Target<'a> {
    Target::new(host, ssh)
        .pinned(pins.0)
        .pinned_bastion(pins.1)
        .nested(
            AttributePath::new("target").index(0),
            "target_host_key",
            "target_bastion_host_key",
        )
}

/// The keys pinned in state: the target's and its bastion's.
type Pins<'a> = (Option<&'a str>, Option<&'a str>);

fn pins_of(state: &MachinesFileState) -> Pins<'_> {
    (
        state.target_host_key.as_ref_option().map(String::as_str),
        state
            .target_bastion_host_key
            .as_ref_option()
            .map(String::as_str),
    )
}

/// Record the keys a write's connection verified (null without a target).
fn record_keys(state: &mut MachinesFileState, keys: Option<SeenKeys>) {
    let (host_key, bastion_host_key) = match keys {
        Some(keys) => (Value::Value(keys.host_key), keys.bastion_host_key.into()),
        None => (Value::Null, Value::Null),
    };
    state.target_host_key = host_key;
    state.target_bastion_host_key = bastion_host_key;
}

fn ssh_error(diags: &mut Diagnostics, what: &str, location: &Location, e: SshError) {
    if e.is_interrupted() {
        return crate::context::interrupted(diags, &e, location.attribute());
    }
    diags.error(
        format!("{what} {} failed", location.describe()),
        e.to_string(),
        location.attribute(),
    );
}

/// Log, from the parsed files, how the file on disk differs from what this
/// resource wrote: the plan shows the raw text, this says what it means.
fn log_drift(location: &Location, written: &str, found: &str) {
    let uris = |text: &str| -> Result<Vec<String>, String> {
        machines::parse(text)
            .map(|ms| ms.into_iter().map(|m| m.uri).collect())
            .map_err(|e| e.to_string())
    };
    match (uris(written), uris(found)) {
        (Ok(before), Ok(after)) => {
            let added: Vec<&String> = after.iter().filter(|u| !before.contains(u)).collect();
            let removed: Vec<&String> = before.iter().filter(|u| !after.contains(u)).collect();
            tracing::info!(
                file = %location.describe(),
                ?added,
                ?removed,
                "machines file changed outside Terraform; the next apply rewrites it"
            );
        }
        (_, Err(e)) => tracing::info!(
            file = %location.describe(),
            "machines file changed outside Terraform and no longer parses ({e}); the next apply rewrites it"
        ),
        _ => {}
    }
}

impl MachinesFileResource {
    /// The pins the plan promises (see [`Context::plan_pins`]): `prior` on an
    /// update, with whether the plan replaces the file.
    fn planned_pins(
        &self,
        diags: &mut Diagnostics,
        state: &MachinesFileState,
        prior: Option<(&MachinesFileState, bool, bool)>,
    ) -> Option<PlannedPins> {
        let here = match &state.target {
            Value::Value(here) => here,
            Value::Null => return Some(PlannedPins::NONE),
            Value::Unknown => return Some(PlannedPins::UNKNOWN),
        };
        let configured = self.shared.get(diags)?;
        let prior = prior.and_then(|(p, replaced, pin_from_import)| {
            let there = p.target.as_ref_option()?;
            let prior = Prior::new(
                &there.host,
                &there.ssh,
                &p.target_host_key,
                &p.target_bastion_host_key,
            )
            .pinned_at_import(pin_from_import);
            Some(if replaced { prior.replacing() } else { prior })
        });
        let now = Route::new(&here.host, &here.ssh).nested(AttributePath::new("target").index(0));
        configured.plan_pins(&now, prior.as_ref(), diags)
    }

    /// Write the planned machines file and the ssh files beside it: guarded
    /// (`create`) or replacing (`update`). Returns the keys verified on a
    /// remote target, or `None` after an error.
    async fn write(
        &self,
        diags: &mut Diagnostics,
        state: &MachinesFileState,
        guarded: bool,
        pins: Pins<'_>,
    ) -> Option<Option<SeenKeys>> {
        let location = Location::of(state)?;
        let content = state.content.as_ref_option()?;
        let mode = file_mode(state);
        let mut keys = self
            .write_file(diags, &location, content.as_bytes(), &mode, guarded, pins)
            .await?;
        for (location, content) in ssh_files(state, &location) {
            if let Some(content) = content {
                // The next file's connection expects the keys the first one verified.
                let seen = keys.clone();
                let pins = match &seen {
                    Some(k) => (Some(k.host_key.as_str()), k.bastion_host_key.as_deref()),
                    None => pins,
                };
                match self
                    .write_file(diags, &location, content.as_bytes(), &mode, guarded, pins)
                    .await
                {
                    Some(written) => keys = written.or(seen),
                    // The machines file is written (and maybe a companion):
                    // the error is in `diags`, and the caller keeps the state
                    // with the keys seen, so that what was written is this
                    // resource's to remove (a create: tainted).
                    None => return Some(seen),
                }
            }
        }
        Some(keys)
    }

    /// Write one file at `location`.
    async fn write_file(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        content: &[u8],
        mode: &str,
        guarded: bool,
        pins: Pins<'_>,
    ) -> Option<Option<SeenKeys>> {
        let mode = mode.to_string();
        let refused = |diags: &mut Diagnostics| {
            diags.error(
                "The machines file already exists",
                format!(
                    "{} exists and holds something this resource did not write; it was left untouched. \
                     Set `overwrite = true` to replace it, or move it away first.",
                    location.describe()
                ),
                location.attribute(),
            )
        };
        match location {
            Location::Nowhere => Some(None),
            Location::Local(path) => {
                let path = Path::new(path);
                let mode_bits = check_file_permission(&mode).ok()?;
                let result = if guarded {
                    local::create(path, content, mode_bits)
                } else {
                    local::write(path, content, mode_bits)
                        .map_err(|e| CreateRefused::Failed(e.to_string()))
                };
                match result {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "wrote machines file");
                        Some(None)
                    }
                    Err(CreateRefused::Exists) => {
                        refused(diags);
                        None
                    }
                    Err(CreateRefused::Failed(e)) => {
                        diags.error(
                            format!("Writing {} failed", path.display()),
                            e,
                            location.attribute(),
                        );
                        None
                    }
                }
            }
            Location::Remote { host, path, ssh } => {
                let configured = self.shared.get(diags)?;
                let purpose = if guarded {
                    Purpose::Create
                } else {
                    Purpose::Update
                };
                let remote = configured
                    .connect_or_fail(&target(host, ssh, pins), purpose, diags)
                    .await?;
                let result = if guarded {
                    remote
                        .run_script(
                            "create machines file",
                            crate::scripts::FILE_CREATE,
                            &[path, &mode],
                            Some(content),
                            true,
                        )
                        .await
                        .map(|_| ())
                } else {
                    remote
                        .upload("write machines file", path, &mode, content, true)
                        .await
                };
                match result {
                    Ok(()) => {
                        tracing::info!(host = %remote.endpoint(), path, "wrote machines file");
                        Some(Some(SeenKeys::of(&remote)))
                    }
                    Err(SshError::CommandFailed { exit: Some(3), .. }) => {
                        refused(diags);
                        None
                    }
                    Err(e) => {
                        ssh_error(diags, "Writing", location, e);
                        None
                    }
                }
            }
        }
    }

    /// What the path holds now (never read through a symbolic link),
    /// `Err(true)` if it could not be checked but the state should be kept
    /// (unreachable host).
    async fn read_file(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        pins: Pins<'_>,
        seen: &mut Option<SeenKeys>,
    ) -> Result<Found, bool> {
        match location {
            Location::Nowhere => Err(true),
            Location::Local(path) => local::read(Path::new(path)).map_err(|e| {
                diags.error(
                    format!("Reading {path} failed"),
                    e.to_string(),
                    location.attribute(),
                );
                false
            }),
            Location::Remote { host, path, ssh } => {
                let configured = self.shared.get(diags).ok_or(false)?;
                let remote = match configured
                    .connect(&target(host, ssh, pins), Purpose::Read, diags)
                    .await
                {
                    Outcome::Connected(remote) => remote,
                    Outcome::KeepState | Outcome::Interrupted => return Err(true),
                    Outcome::Failed => return Err(false),
                };
                *seen = Some(SeenKeys::of(&remote));
                let read = Context::within_read_budget(
                    &remote,
                    "read machines file",
                    remote.run_script(
                        "read machines file",
                        crate::scripts::FILE_READ,
                        &[path],
                        None,
                        true,
                    ),
                )
                .await;
                match read {
                    Ok(out) => Ok(Found::File(out.stdout)),
                    Err(SshError::CommandFailed { exit: Some(3), .. }) => Ok(Found::Missing),
                    Err(SshError::CommandFailed { exit: Some(5), .. }) => Ok(Found::Refused(
                        format!("{path} on {host} is a symbolic link or not a regular file; it was not followed"),
                    )),
                    Err(e) => {
                        ssh_error(diags, "Reading", location, e);
                        Err(false)
                    }
                }
            }
        }
    }

    /// Remove a file this resource wrote unless it changed since (then warn).
    async fn remove_written(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        written_sha256: &str,
        pins: Pins<'_>,
    ) -> Option<()> {
        match self
            .remove_if_unchanged(diags, location, written_sha256, pins)
            .await?
        {
            Removal::Removed => {
                tracing::info!(file = %location.describe(), "removed file");
            }
            Removal::Missing => {}
            Removal::Changed => diags.warning(
                "Machines file kept",
                format!(
                    "{} was changed after Terraform wrote it, so it was not removed. Delete it yourself if the changes are not needed.",
                    location.describe()
                ),
                location.attribute(),
            ),
        }
        Some(())
    }

    /// [`remove_written`](Self::remove_written) of a file that held `content`.
    async fn remove_written_content(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        content: &str,
        pins: Pins<'_>,
    ) -> Option<()> {
        self.remove_written(diags, location, &sha256_hex(content.as_bytes()), pins)
            .await
    }

    async fn remove_if_unchanged(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        written_sha256: &str,
        pins: Pins<'_>,
    ) -> Option<Removal> {
        match location {
            Location::Nowhere => Some(Removal::Missing),
            Location::Local(path) => {
                let found = match local::read(Path::new(path)) {
                    Ok(found) => found,
                    Err(e) => {
                        diags.error(
                            format!("Reading {path} failed"),
                            e.to_string(),
                            location.attribute(),
                        );
                        return None;
                    }
                };
                match found {
                    Found::Missing => Some(Removal::Missing),
                    Found::Refused(_) => Some(Removal::Changed),
                    Found::File(bytes) if sha256_hex(&bytes) != written_sha256 => {
                        Some(Removal::Changed)
                    }
                    Found::File(_) => match std::fs::remove_file(path) {
                        Ok(()) => Some(Removal::Removed),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some(Removal::Missing)
                        }
                        Err(e) => {
                            diags.error(
                                format!("Removing {path} failed"),
                                e.to_string(),
                                location.attribute(),
                            );
                            None
                        }
                    },
                }
            }
            Location::Remote { host, path, ssh } => {
                let configured = self.shared.get(diags)?;
                let remote = configured
                    .connect_or_fail(&target(host, ssh, pins), Purpose::Delete, diags)
                    .await?;
                match remote
                    .run_script(
                        "remove machines file",
                        crate::scripts::FILE_REMOVE,
                        &[path, written_sha256],
                        None,
                        true,
                    )
                    .await
                {
                    Ok(out) => match out.stdout_text().trim() {
                        "removed" => Some(Removal::Removed),
                        "missing" => Some(Removal::Missing),
                        _ => Some(Removal::Changed),
                    },
                    Err(e) => {
                        ssh_error(diags, "Removing", location, e);
                        None
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Resource for MachinesFileResource {
    type State<'a> = MachinesFileState;
    type PrivateState<'a> = Value<MachinesFilePrivate>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        schema_or_diag::<MachinesFileState>(diags)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        validate_state(&config, diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = state;
        if state.nix_build_command.is_null() {
            // State written before these attributes existed: fill them, so an
            // upgrade plans no change.
            let machines = known_machines(&state);
            compute_client_outputs(&mut state, machines.as_deref());
        }
        let Some(location) = Location::of(&state) else {
            return Some((state, private_state));
        };
        let from_import = private_state
            .as_ref_option()
            .is_some_and(|p| p.pin_from_import);
        if from_import && state.id.is_value() {
            // Imported without a key: the pin is only what the import saw.
            // The configuration (which a refresh cannot see) may name
            // another key, so no login with it: the plan compares it, and
            // the apply it plans rewrites the file with the pin confirmed.
            diags.warning(
                format!("{} is not read until an apply confirms its host key", location.describe()),
                "The import ID named no host key, so the target's key is only the first one the import saw. This refresh did not log in with it: the plan checks it against `target.ssh.host_key` (if set) and plans an update whose apply writes the file with that key.",
                location.attribute(),
            );
            state.content = Value::Value(String::new());
            return Some((state, private_state));
        }
        let mut seen = None;
        let read = (self.read_file(diags, &location, pins_of(&state), &mut seen)).await;
        if let Some(keys) = seen {
            // An import without a key in its ID pins the first key seen.
            if state.target_host_key.is_null() {
                state.target_host_key = Value::Value(keys.host_key.clone());
            }
            // State from before bastion pins were kept learns its bastion's key.
            state.target_bastion_host_key = keys.bastion_host_key.into();
        }
        let found = match read {
            Err(_) => return Some((state, private_state)),
            Ok(Found::Missing) => {
                tracing::info!(
                    file = %location.describe(),
                    "machines file was deleted outside Terraform; planning to create it again"
                );
                return None;
            }
            Ok(found) => found,
        };
        if state.id.is_null() {
            // Just imported: nothing was written yet, take the file as found.
            let found = match found {
                Found::File(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Found::Refused(reason) => {
                    diags.error(
                        format!("{} cannot be imported", location.describe()),
                        reason,
                        location.attribute(),
                    );
                    return None;
                }
                Found::Missing => unreachable!("handled above"),
            };
            return match adopt_found(&mut state, found) {
                Ok(()) => Some((state, private_state)),
                Err(e) => {
                    diags.error(
                        format!("{} is not a machines file", location.describe()),
                        format!("it cannot be imported: {e}"),
                        location.attribute(),
                    );
                    None
                }
            };
        }
        let written = state.content.as_ref_option().cloned().unwrap_or_default();
        match found {
            Found::File(bytes) if bytes != written.as_bytes() => {
                let found = String::from_utf8_lossy(&bytes).into_owned();
                log_drift(&location, &written, &found);
                state.content = Value::Value(found);
            }
            Found::Refused(reason) => {
                refused_drift(diags, &location, &reason);
                state.content = Value::Value(Found::placeholder(&reason));
            }
            _ => {}
        }
        // A changed, deleted or linked ssh file shows as a change of its content.
        let files = ssh_files(&state, &location);
        for (i, (file, written)) in files.into_iter().enumerate() {
            let Some(written) = written else { continue };
            let found = match self
                .read_file(diags, &file, pins_of(&state), &mut None)
                .await
            {
                Ok(Found::File(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(Found::Missing) => String::new(),
                Ok(Found::Refused(reason)) => {
                    refused_drift(diags, &file, &reason);
                    Found::placeholder(&reason)
                }
                Err(_) => continue,
            };
            if found != written {
                tracing::info!(file = %file.describe(), "changed or deleted outside Terraform; the next apply rewrites it");
                let field = if i == 0 {
                    &mut state.ssh_config
                } else {
                    &mut state.known_hosts
                };
                *field = Value::Value(found);
            }
        }
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = proposed_state;
        compute(&mut state);
        let pins = self.planned_pins(diags, &state, None)?;
        state.target_host_key = pins.host_key;
        state.target_bastion_host_key = pins.bastion_host_key;
        Some((state, Default::default()))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let mut state = proposed_state;
        compute(&mut state);
        // Another file (or host) is another object: the old one is destroyed
        // (if unchanged) and the new one created (guarded).
        let mut replace = Vec::new();
        if state.path != prior_state.path {
            replace.push(AttributePath::new("path"));
        }
        match (&prior_state.target, &state.target) {
            (Value::Value(old), Value::Value(new)) => {
                let at = AttributePath::new("target").index(0);
                if old.host != new.host {
                    replace.push(at.clone().attribute("host"));
                }
                if old.path != new.path {
                    replace.push(at.attribute("path"));
                }
            }
            (old, new) if old != new => replace.push(AttributePath::new("target")),
            _ => {}
        }
        // The same file on the same host keeps its pin unless the
        // configuration names another key (the re-key of a re-installed host).
        let from_import = prior_private_state
            .as_ref_option()
            .is_some_and(|p| p.pin_from_import);
        let pins = self.planned_pins(
            diags,
            &state,
            Some((&prior_state, !replace.is_empty(), from_import)),
        )?;
        state.target_host_key = pins.host_key;
        state.target_bastion_host_key = pins.bastion_host_key;
        Some((state, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = planned_state;
        // Every configuration value is known now; unknown computed values are not.
        compute(&mut state);
        let guarded = !state.overwrite.as_ref_option().copied().unwrap_or(false);
        let keys = self.write(diags, &state, guarded, pins_of(&state)).await?;
        record_keys(&mut state, keys);
        Some((state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = planned_state;
        compute(&mut state);
        // The file is this resource's: a changed one (drift) is rewritten.
        // The target's pin from state; the bastion's as planned (kept, or
        // configured, or unknown for a new bastion).
        let pins = (pins_of(&prior_state).0, pins_of(&state).1);
        let keys = self.write(diags, &state, false, pins).await?;
        if !diags.errors.is_empty() {
            // A companion failed after the file was written: keep what is true.
            record_keys(&mut state, keys);
            return Some((state, planned_private_state));
        }
        // ssh files no machine needs any more go (if unchanged).
        if let Some(location) = Location::of(&state) {
            let now = ssh_files(&state, &location);
            for (i, (file, before)) in ssh_files(&prior_state, &location).into_iter().enumerate() {
                if let (Some(before), None) = (before, &now[i].1) {
                    self.remove_written_content(diags, &file, &before, pins)
                        .await?;
                }
            }
        }
        record_keys(&mut state, keys);
        // The pin is confirmed: the plan compared it, the apply used it.
        Some((state, Value::Value(MachinesFilePrivate::default())))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let Some(location) = Location::of(&prior_state) else {
            return Some(());
        };
        let Some(written) = prior_state.id.as_ref_option() else {
            return Some(());
        };
        let pins = pins_of(&prior_state);
        self.remove_written(diags, &location, written, pins).await?;
        for (file, content) in ssh_files(&prior_state, &location) {
            if let Some(content) = content {
                self.remove_written_content(diags, &file, &content, pins)
                    .await?;
            }
        }
        Some(())
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        match import_state(&id) {
            Ok(state) => {
                let private = MachinesFilePrivate {
                    pin_from_import: state.target.is_value() && state.target_host_key.is_null(),
                };
                Some((state, Value::Value(private)))
            }
            Err(e) => {
                diags.root_error("Invalid import ID", format!("`{id}`: {e}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids() {
        let local = import_state("/etc/nix/machines").unwrap();
        assert_eq!(local.path, Value::Value("/etc/nix/machines".into()));
        assert!(local.target.is_null());
        let remote = import_state("deploy@[2001:db8::1]:2222:/etc/nix/machines").unwrap();
        let target = remote.target.as_ref_option().unwrap();
        assert_eq!(target.host, Value::Value("2001:db8::1".into()));
        assert!(target.path.is_null(), "the default path stays unset");
        let ssh = target.ssh.as_ref_option().unwrap();
        assert_eq!(
            (&ssh.user, &ssh.port),
            (&Value::Value("deploy".into()), &Value::Value(2222))
        );
        const KEY: &str =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";
        let pinned = import_state(&format!("root@h.example:/srv/machines {KEY}")).unwrap();
        assert_eq!(pinned.target_host_key, Value::Value(KEY.into()));
        assert!(pinned.target.as_ref_option().unwrap().ssh.is_null());
        for bad in [
            "machines",
            "root@h.example",
            "h.example:/etc/nix/machines",
            "/etc/nix/",
            "root@h:/m not-a-key",
        ] {
            assert!(import_state(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_import_adopts_the_file_as_found() {
        let mut state = import_state("/etc/nix/machines").unwrap();
        let found = "ssh-ng://nixbuild@b1 x86_64-linux - 4 - big-parallel - -\n# a comment\n";
        adopt_found(&mut state, found.to_string()).unwrap();
        assert_eq!(state.content, Value::Value(found.to_string()));
        assert_eq!(state.id, Value::Value(sha256_hex(found.as_bytes())));
        let blocks = state.machine.as_ref_option().unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].max_jobs, Value::Value(4.0));
        assert!(blocks[0].ssh_key.is_null());
        // The machines render back to the file's line.
        let rendered = machines::render(&known_machines(&state).unwrap());
        assert_eq!(
            rendered,
            "ssh-ng://nixbuild@b1 x86_64-linux - 4 - big-parallel - -\n"
        );
        assert!(adopt_found(&mut state, "a b c d e f g h i\n".into()).is_err());
    }

    fn machine(uri: &str) -> MachineBlock {
        MachineBlock {
            uri: Value::Value(uri.into()),
            systems: Value::Value(vec![Value::Value("x86_64-linux".into())]),
            max_jobs: Value::Value(2.0),
            ..Default::default()
        }
    }

    #[test]
    fn computes_content_when_known_and_unknown_otherwise() {
        let mut state = MachinesFileState {
            machine: Value::Value(vec![machine("ssh-ng://a"), machine("ssh://b")]),
            path: Value::Value("/etc/nix/machines".into()),
            ..Default::default()
        };
        compute(&mut state);
        let content = "ssh-ng://a x86_64-linux - 2 - - - -\nssh://b x86_64-linux - 2 - - - -\n";
        assert_eq!(state.content, Value::Value(content.to_string()));
        assert_eq!(state.id, Value::Value(sha256_hex(content.as_bytes())));
        assert_eq!(
            state.builders,
            Value::Value(
                "ssh-ng://a x86_64-linux - 2 - - - -; ssh://b x86_64-linux - 2 - - - -".into()
            )
        );
        assert_eq!(
            state.nix_conf,
            Value::Value("builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n".into())
        );

        let mut unknown_key = machine("ssh://c");
        unknown_key.public_host_key = Value::Unknown;
        state.machine = Value::Value(vec![machine("ssh-ng://a"), unknown_key]);
        compute(&mut state);
        assert!(state.content.is_unknown() && state.id.is_unknown());
        // The path is known, so the nix.conf snippet still is.
        assert!(state.nix_conf.is_value());

        state.machine = Value::Unknown;
        state.path = Value::Null;
        compute(&mut state);
        assert!(state.content.is_unknown() && state.nix_conf.is_unknown());
    }

    #[test]
    fn remote_target_defaults_to_etc_nix_machines() {
        let mut state = MachinesFileState {
            target: Value::Value(TargetBlock {
                host: Value::Value("203.0.113.7".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        compute(&mut state);
        assert_eq!(state.content, Value::Value(String::new()));
        assert_eq!(
            state.nix_conf,
            Value::Value(machines::nix_conf_for_file(DEFAULT_TARGET_PATH))
        );
    }

    #[test]
    fn validation_points_at_the_attribute() {
        let mut bad = machine("http://x");
        bad.max_jobs = Value::Value(0.0);
        bad.systems = Value::Value(vec![Value::Value("x86_64".into()), Value::Unknown]);
        let state = MachinesFileState {
            machine: Value::Value(vec![machine("ssh://ok"), bad]),
            file_permission: Value::Value("rw-r--r--".into()),
            ..Default::default()
        };
        let mut diags = Diagnostics::default();
        validate_state(&state, &mut diags);
        let paths: Vec<String> = diags
            .errors
            .iter()
            .map(|d| format!("{:?}", d.attribute))
            .collect();
        assert_eq!(diags.errors.len(), 4, "{paths:?}");
        let expect = |path: AttributePath| {
            assert!(
                diags.errors.iter().any(|d| d.attribute == path),
                "{path:?} not in {paths:?}"
            )
        };
        expect(AttributePath::new("machine").index(1).attribute("uri"));
        expect(AttributePath::new("machine").index(1).attribute("max_jobs"));
        expect(AttributePath::new("machine").index(1).attribute("systems"));
        expect(AttributePath::new("file_permission"));
    }

    #[test]
    fn file_checks() {
        assert_eq!(check_file_permission("0644"), Ok(0o644));
        assert_eq!(check_file_permission("600"), Ok(0o600));
        for bad in [
            "",
            "0844",
            "64",
            "06444",
            "rw-r--r--",
            "0666",
            "0777",
            "0646",
            "4644",
            "2755",
            "1644",
            "7000",
        ] {
            assert!(check_file_permission(bad).is_err(), "{bad}");
        }
        assert_eq!(check_file_permission("0664"), Ok(0o664));
        assert!(check_file_path("/etc/nix/machines").is_ok());
        for bad in [
            "machines",
            "./machines",
            "/a;b",
            "/a#b",
            "/etc/nix/",
            "/a\nb",
        ] {
            assert!(check_file_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_create_never_clobbers_and_writes_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/machines");
        assert!(local::create(&path, b"one\n", 0o640).is_ok());
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        // Same content: taken over. Other content: refused, untouched.
        assert!(local::create(&path, b"one\n", 0o644).is_ok());
        assert!(matches!(
            local::create(&path, b"two\n", 0o644),
            Err(CreateRefused::Exists)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        local::write(&path, b"three\n", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three\n");
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("machines")]);
        assert!(matches!(
            local::read(&dir.path().join("none")).unwrap(),
            Found::Missing
        ));
    }

    /// A managed path that is a symbolic link (e.g. to a root-only secret)
    /// or not a regular file is refused, never read; writing replaces the
    /// link, not its target.
    #[test]
    fn local_read_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"TOKEN=hunter2\n").unwrap();
        let path = dir.path().join("machines");
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        match local::read(&path).unwrap() {
            Found::Refused(reason) => {
                assert!(reason.contains("symbolic link"), "{reason}");
                assert!(!reason.contains("hunter2"));
                assert!(!Found::placeholder(&reason).contains("hunter2"));
            }
            _ => panic!("a symlink was read"),
        }
        assert!(matches!(
            local::read(dir.path()).unwrap(),
            Found::Refused(_)
        ));
        local::write(&path, b"one\n", 0o644).unwrap();
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&secret).unwrap(), b"TOKEN=hunter2\n");
        assert!(matches!(local::read(&path).unwrap(), Found::File(b) if b == b"one\n"));
    }

    /// The remote scripts do the same as the local code, run by the local /bin/sh.
    #[test]
    fn remote_scripts_run_locally() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/machines");
        let path_s = path.to_str().unwrap();
        let run = |script: &str, args: &[&str], stdin: &[u8]| {
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(script)
                .arg("nixbuild")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(stdin).unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        use crate::scripts::{FILE_CREATE, FILE_READ, FILE_REMOVE};
        assert_eq!(run(FILE_READ, &[path_s], b"").0, Some(3));
        assert_eq!(run(FILE_CREATE, &[path_s, "0644"], b"one\n").0, Some(0));
        assert_eq!(run(FILE_READ, &[path_s], b""), (Some(0), "one\n".into()));
        assert_eq!(run(FILE_CREATE, &[path_s, "0644"], b"one\n").0, Some(0));
        assert_eq!(run(FILE_CREATE, &[path_s, "0644"], b"two\n").0, Some(3));
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        let other = sha256_hex(b"two\n");
        assert_eq!(run(FILE_REMOVE, &[path_s, &other], b"").1.trim(), "changed");
        assert!(path.exists());
        let ours = sha256_hex(b"one\n");
        assert_eq!(run(FILE_REMOVE, &[path_s, &ours], b"").1.trim(), "removed");
        assert!(!path.exists());
        assert_eq!(run(FILE_REMOVE, &[path_s, &ours], b"").1.trim(), "missing");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            0,
            "temporary files left behind"
        );
        // A symbolic link at the path is never followed: not read, not
        // hashed, not removed; the upload replaces the link, not its target.
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"TOKEN=hunter2\n").unwrap();
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        assert_eq!(run(FILE_READ, &[path_s], b""), (Some(5), String::new()));
        let theirs = sha256_hex(b"TOKEN=hunter2\n");
        assert_eq!(
            run(FILE_REMOVE, &[path_s, &theirs], b"").1.trim(),
            "changed"
        );
        assert!(std::fs::symlink_metadata(&path).is_ok());
        assert_eq!(
            run(crate::scripts::UPLOAD, &[path_s, "0644"], b"one\n").0,
            Some(0)
        );
        assert_eq!(run(FILE_READ, &[path_s], b""), (Some(0), "one\n".into()));
        assert_eq!(std::fs::read(&secret).unwrap(), b"TOKEN=hunter2\n");
        // A link to a directory: the upload does not drop the file inside it.
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(run(FILE_READ, &[path_s], b"").0, Some(5));
        assert_eq!(
            run(crate::scripts::UPLOAD, &[path_s, "0644"], b"two\n").0,
            Some(0)
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
    }
}
