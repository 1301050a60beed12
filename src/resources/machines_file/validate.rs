//! Plan-time checks of the configuration: file permission, file path, every
//! `machine` block (each error at its attribute path) and the `target`.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::schema::*;
use crate::context::settings::validate_block;
use crate::nix::machines::{self};
use crate::nix::ssh_config;
use crate::ssh::settings::check_host;

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
pub(super) type StringListCheck<'a> = (
    &'static str,
    &'static str,
    &'a Value<Vec<Value<String>>>,
    fn(&str) -> Result<(), String>,
);

/// Plan-time checks of the `machine` blocks, each error at its attribute path
/// (e.g. `machine[2].max_jobs`). Unknown values are skipped; Terraform
/// validates again once they are known.
pub(super) fn validate_machines(blocks: &[MachineBlock], diags: &mut Diagnostics) {
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

pub(super) fn validate_state(config: &MachinesFileState, diags: &mut Diagnostics) {
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
