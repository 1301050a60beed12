//! The companion files written beside the machines file: an `ssh_config`
//! with the machines' stanzas and a `known_hosts` with their host keys.

use tf_provider::value::Value;

use super::location::Location;
use super::schema::*;
use crate::nix::ssh_config;

/// Suffixes of the files written next to the machines file.
pub const SSH_CONFIG_SUFFIX: &str = ".ssh_config";
pub const KNOWN_HOSTS_SUFFIX: &str = ".known_hosts";

/// `ssh_config` / `known_hosts` (and their paths, next to the machines file)
/// from the machines that carry a stanza or a known_hosts line; all null
/// when none does.
pub(super) fn compute_ssh_files(state: &mut MachinesFileState) {
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
pub(super) fn ssh_files(
    state: &MachinesFileState,
    location: &Location,
) -> Vec<(Location, Option<String>)> {
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
