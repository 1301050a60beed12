//! The file from the `machine` blocks at plan time: the 8-column lines, its
//! SHA-256 (`id`), and the outputs computed from it (`builders`, `nix_conf`,
//! the client snippets). Nothing here touches a file.

use sha2::Digest;
use tf_provider::value::Value;

use super::companions::compute_ssh_files;
use super::location::Location;
use super::schema::*;
use crate::nix::machines::{self, Machine};
use crate::nix::ssh_config;

pub(super) fn known_list(list: &Value<Vec<Value<String>>>) -> Option<Vec<String>> {
    match list {
        Value::Null => Some(Vec::new()),
        Value::Unknown => None,
        Value::Value(items) => items.iter().map(|v| v.as_ref_option().cloned()).collect(),
    }
}

pub(super) fn known_opt<T: Clone>(v: &Value<T>) -> Option<Option<T>> {
    match v {
        Value::Value(x) => Some(Some(x.clone())),
        Value::Null => Some(None),
        Value::Unknown => None,
    }
}

pub(super) fn known_count(v: &Value<f64>) -> Option<Option<u64>> {
    known_opt(v).map(|n| n.and_then(|n| machines::check_count(n).ok()))
}

impl MachineBlock {
    /// The machine, or `None` while any of its values is unknown.
    pub(super) fn to_machine(&self) -> Option<Machine> {
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

pub(super) fn known_machines(state: &MachinesFileState) -> Option<Vec<Machine>> {
    match &state.machine {
        Value::Null => Some(Vec::new()),
        Value::Unknown => None,
        Value::Value(blocks) => blocks.iter().map(MachineBlock::to_machine).collect(),
    }
}

impl MachineBlock {
    /// The block that renders `machine` again (defaults as null), for import.
    pub(super) fn from_machine(machine: Machine) -> Self {
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

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fill the computed attributes that follow from the configuration: known
/// when every input is known (so the plan shows the file), unknown otherwise.
pub(super) fn compute(state: &mut MachinesFileState) {
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

/// The outputs clients paste (the `nix build` command line and the
/// `nix.buildMachines` expression), from the machines when they are known.
pub(super) fn compute_client_outputs(state: &mut MachinesFileState, machines: Option<&[Machine]>) {
    (state.nix_build_command, state.nix_build_machines) = match machines {
        Some(list) => (
            Value::Value(machines::nix_build_command(list)),
            Value::Value(machines::build_machines_nix(list)),
        ),
        None => (Value::Unknown, Value::Unknown),
    };
}

/// The permission the file is written with: `file_permission`, else
/// [`DEFAULT_FILE_PERMISSION`].
pub(super) fn file_mode(state: &MachinesFileState) -> String {
    state
        .file_permission
        .as_ref_option()
        .cloned()
        .unwrap_or_else(|| DEFAULT_FILE_PERMISSION.to_string())
}
