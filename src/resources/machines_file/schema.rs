//! The resource's Terraform schema: the state type (its doc comments are the
//! attribute descriptions), the `machine` and `target` blocks, and the defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tf_provider::value::Value;

use crate::context::SshBlock;
use crate::tfschema::{Block, BlockList, Computed, Optional, Required};

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
