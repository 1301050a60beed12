//! Writing, reading and removing the file and its companions, locally or on
//! a remote `target` over SSH (guarded create, atomic replace, destroy only
//! while unchanged), and pinning the target's host keys.

use std::path::Path;

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::companions::ssh_files;
use super::local::{self, CreateRefused, Found};
use super::location::Location;
use super::render::{file_mode, sha256_hex};
use super::schema::*;
use super::validate::check_file_permission;
use crate::context::{
    Context, Outcome, PlannedPins, Prior, Purpose, Route, SeenKeys, Shared, SshBlock, Target,
};
use crate::ssh::SshError;

/// What destroy found.
pub(super) enum Removal {
    Removed,
    Missing,
    Changed,
}

/// The connection target of a remote file: `target[0].host` and
/// `target[0].ssh`, with the key pinned in `target_host_key`.
pub(super) fn target<'a>(host: &'a str, ssh: &'a Value<SshBlock>, pins: Pins<'a>) -> Target<'a> {
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
pub(super) type Pins<'a> = (Option<&'a str>, Option<&'a str>);

pub(super) fn pins_of(state: &MachinesFileState) -> Pins<'_> {
    (
        state.target_host_key.as_ref_option().map(String::as_str),
        state
            .target_bastion_host_key
            .as_ref_option()
            .map(String::as_str),
    )
}

/// Record the keys a write's connection verified (null without a target).
pub(super) fn record_keys(state: &mut MachinesFileState, keys: Option<SeenKeys>) {
    let (host_key, bastion_host_key) = match keys {
        Some(keys) => (Value::Value(keys.host_key), keys.bastion_host_key.into()),
        None => (Value::Null, Value::Null),
    };
    state.target_host_key = host_key;
    state.target_bastion_host_key = bastion_host_key;
}

pub(super) fn ssh_error(diags: &mut Diagnostics, what: &str, location: &Location, e: SshError) {
    if e.is_interrupted() {
        return crate::context::interrupted(diags, &e, location.attribute());
    }
    diags.error(
        format!("{what} {} failed", location.describe()),
        e.to_string(),
        location.attribute(),
    );
}

/// The file operations of one resource call, with the provider's settings
/// (the SSH connections they open).
pub(super) struct Files<'a> {
    pub(super) shared: &'a Shared,
}

impl Files<'_> {
    /// The pins the plan promises (see [`Context::plan_pins`]): `prior` on an
    /// update, with whether the plan replaces the file and whether its pin
    /// is only what a keyless import saw.
    pub(super) fn planned_pins(
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
    pub(super) async fn write(
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
    pub(super) async fn write_file(
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
    pub(super) async fn read_file(
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
    pub(super) async fn remove_written(
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
    pub(super) async fn remove_written_content(
        &self,
        diags: &mut Diagnostics,
        location: &Location,
        content: &str,
        pins: Pins<'_>,
    ) -> Option<()> {
        self.remove_written(diags, location, &sha256_hex(content.as_bytes()), pins)
            .await
    }

    pub(super) async fn remove_if_unchanged(
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
