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
//!
//! - [`schema`]: the state type and its blocks;
//! - [`location`]: where the file goes;
//! - [`render`]: the file and the computed outputs, at plan time;
//! - [`companions`]: the `ssh_config` and `known_hosts` beside it;
//! - [`validate`]: plan-time checks;
//! - [`import`]: the state an import ID starts from;
//! - [`local`]: local file writes and reads;
//! - [`write`]: writing, reading and removing, locally or over SSH;
//! - [`drift`]: what Read reports when the file changed.

mod companions;
mod drift;
mod import;
mod local;
mod location;
mod render;
mod schema;
mod validate;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::context::Shared;
use crate::tfschema::schema_or_diag;

pub use companions::{KNOWN_HOSTS_SUFFIX, SSH_CONFIG_SUFFIX};
pub use render::sha256_hex;
pub use schema::{
    MachineBlock, MachinesFileState, TargetBlock, DEFAULT_FILE_PERMISSION, DEFAULT_TARGET_PATH,
};
pub use validate::{check_file_path, check_file_permission};

use companions::ssh_files;
use drift::{log_drift, refused_drift};
use import::{adopt_found, import_state, MachinesFilePrivate};
use local::Found;
use location::Location;
use render::{compute, compute_client_outputs, known_machines};
use validate::validate_state;
use write::{pins_of, record_keys, Files};

pub struct MachinesFileResource {
    shared: Arc<Shared>,
}

impl MachinesFileResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn files(&self) -> Files<'_> {
        Files {
            shared: &self.shared,
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
        let from_import = MachinesFilePrivate::pin_from_import(&private_state);
        if from_import && state.id.is_value() {
            // Imported without a key: the pin is only what the import saw.
            // The configuration (which a refresh cannot see) may name
            // another key, so no login with it: the plan compares it, and
            // the apply it plans rewrites the file with the pin confirmed.
            diags.warning(
                format!(
                    "{} is not read until an apply confirms its host key",
                    location.describe()
                ),
                "The import ID named no host key, so the target's key is only the first one the import saw. This refresh did not log in with it: the plan checks it against `target.ssh.host_key` (if set) and plans an update whose apply writes the file with that key.",
                location.attribute(),
            );
            state.content = Value::Value(String::new());
            return Some((state, private_state));
        }
        let mut seen = None;
        let read = (self
            .files()
            .read_file(diags, &location, pins_of(&state), &mut seen))
        .await;
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
                .files()
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
        let pins = self.files().planned_pins(diags, &state, None)?;
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
        let from_import = MachinesFilePrivate::pin_from_import(&prior_private_state);
        let pins = self.files().planned_pins(
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
        let keys = self
            .files()
            .write(diags, &state, guarded, pins_of(&state))
            .await?;
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
        let keys = self.files().write(diags, &state, false, pins).await?;
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
                    self.files()
                        .remove_written_content(diags, &file, &before, pins)
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
        self.files()
            .remove_written(diags, &location, written, pins)
            .await?;
        for (file, content) in ssh_files(&prior_state, &location) {
            if let Some(content) = content {
                self.files()
                    .remove_written_content(diags, &file, &content, pins)
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
    use std::io::Write;

    use super::local::CreateRefused;
    use super::*;
    use crate::nix::machines;

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
