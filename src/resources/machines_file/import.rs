//! Import: the state an import ID starts from, and adopting the file found
//! there.

use tf_provider::value::Value;

use super::render::{compute, sha256_hex};
use super::schema::*;
use super::validate::check_file_path;
use crate::context::SshBlock;
use crate::nix::machines::{self};
use crate::ssh::HostKey;

/// Private state: whether the target's pin is only the first key an import
/// without a key in its ID saw (cleared by the first apply). While it is, a
/// refresh does not log in with it: the plan compares it with a configured
/// `target.ssh.host_key` first (issue 28: the refresh logged in before).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MachinesFilePrivate {
    pub pin_from_import: bool,
}

impl MachinesFilePrivate {
    /// Whether `private` (absent in states from before it) marks the pin as
    /// only what a keyless import saw.
    pub fn pin_from_import(private: &Value<Self>) -> bool {
        private.as_ref_option().is_some_and(|p| p.pin_from_import)
    }
}

/// The state an import starts from. The ID is the file: an absolute local
/// path, or `user@host[:port]:/path` on a `target`, optionally followed by
/// the target's expected host key line. Read then fills in the machines.
pub(super) fn import_state(id: &str) -> Result<MachinesFileState, String> {
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

/// An imported state takes the file as found: its machines, its content and
/// its hash (so destroy may remove it while it stays unchanged).
pub(super) fn adopt_found(state: &mut MachinesFileState, found: String) -> Result<(), String> {
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
