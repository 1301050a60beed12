//! `terraform providers schema -json` of this build against the saved output
//! of release 0.1.0 (`tests/golden/providers-schema-0.1.0.json`, from commit
//! 96309d9). Users upgrading must see no schema change except the ones
//! listed in [`CHANGES_SINCE_0_1_0`], each with its reason; a listed change
//! that no longer happens fails too, so the list stays true. Runs on every
//! Terraform version of the world (no hosts needed).

mod common;

use std::collections::BTreeSet;

use common::{terraform_versions, Tf, SOURCE};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Added,
    Removed,
    Changed,
}
use Change::*;

const BUILDER: &str = "resource_schemas.nixbuild_builder.block";
const CACHE_PUSH: &str = "resource_schemas.nixbuild_cache_push.block";
const MACHINES_FILE: &str = "resource_schemas.nixbuild_machines_file.block";
const RESOURCES: &str = "resource_schemas";
const DATA_SOURCES: &str = "data_source_schemas";

/// Every difference from 0.1.0, relative to the provider's entry, and why
/// (docs/decisions.md, "Schema changes since 0.1.0", says the same).
const CHANGES_SINCE_0_1_0: &[(&str, &str, Change, &str)] = &[
    // Ownership per resource, issue 28 hole 5: each builder resource has an
    // owner id, and takes another's objects over only when told to.
    (BUILDER, "attributes.owner_id", Added,
     "new computed attribute: the resource's owner id, named in the host's claim and records"),
    (BUILDER, "attributes.adopt_owner", Added,
     "new argument: take over the objects another builder resource owns on the host"),
    // Ownership of accounts (2b88ef7): the builder never takes or deletes an
    // account it did not create; inputs refused at plan time.
    (BUILDER, "block_types.build_user.block.attributes.adopt_existing", Added,
     "new argument: take an existing account as the build user"),
    (BUILDER, "block_types.build_user.block.description", Changed,
     "says the host records which accounts the provider created"),
    (BUILDER, "block_types.build_user.block.attributes.name.description", Changed,
     "a rename removes only an account this provider created"),
    (BUILDER, "block_types.build_user.block.attributes.authorized_keys.description", Changed,
     "one key per entry, no control characters (checked at plan time)"),
    (BUILDER, "attributes.on_destroy.description", Changed,
     "`clean` removes only what this resource created, and the token file"),
    (BUILDER, "block_types.cachix.block.attributes.watch_store.description", Changed,
     "turning it off removes the service and its token file; leftovers show as drift; destroy stops it and waits for its queue (issue 26)"),
    (BUILDER, "block_types.nix.block.attributes.installer_url.description", Changed,
     "plain http:// installer URLs are refused (the script runs as root)"),
    (MACHINES_FILE, "attributes.file_permission.description", Changed,
     "world-writable and setuid/setgid/sticky modes are refused"),
    // Stand-ins that refuse what the real installers refuse (0f01700, 863b298).
    (BUILDER, "block_types.nix.block.attributes.daemon_restart_command.description", Changed,
     "required for a multi-user install on a host without systemd"),
    // Uploaded source trees, issue 17 (5a7c16b).
    (CACHE_PUSH, "attributes.source_keep", Added,
     "new argument: how many uploaded source trees a builder keeps"),
    (CACHE_PUSH, "attributes.source.description", Changed,
     "says what is uploaded (git-tracked files, never .terraform/ or state) and that it is checked on the builder"),
    (CACHE_PUSH, "attributes.source_hash.description", Changed,
     "the hash is the NAR hash Nix records as narHash"),
    // Client outputs of the workflow, issue 14 (7428ca5).
    (MACHINES_FILE, "attributes.nix_build_command", Added,
     "new computed attribute: a nix build command line using these machines"),
    (MACHINES_FILE, "attributes.nix_build_machines", Added,
     "new computed attribute: nix.buildMachines for NixOS/nix-darwin clients"),
    // Bastion pins kept in state, issue 9 (a7fca9c).
    (BUILDER, "attributes.bastion_host_key", Added,
     "new computed attribute: the bastion's pinned host key"),
    (CACHE_PUSH, "attributes.bastion_host_key", Added,
     "new computed attribute: the bastion's pinned host key"),
    (MACHINES_FILE, "attributes.target_bastion_host_key", Added,
     "new computed attribute: the pinned host key of the target's bastion"),
    // Builders on any SSH port, build keys that only build, issue 11 (fa4007b).
    (BUILDER, "attributes.ssh_host_alias", Added,
     "new computed attribute: the client's Host alias for this builder"),
    (BUILDER, "attributes.ssh_config", Added,
     "new computed attribute: the client's ssh_config stanza (any SSH port)"),
    (BUILDER, "attributes.known_hosts", Added,
     "new computed attribute: the client's known_hosts line"),
    (BUILDER, "attributes.store_uri.description", Changed,
     "ssh:// with build_user.protocol = \"ssh\""),
    (BUILDER, "block_types.build_user.block.attributes.protocol", Added,
     "new argument: ssh-ng or ssh store protocol (restricted keys run only its program)"),
    (BUILDER, "block_types.build_user.block.attributes.allow_shell", Added,
     "new argument: give the client keys a shell (default: restricted keys)"),
    (MACHINES_FILE, "block_types.machine.block.attributes.ssh_config", Added,
     "new argument: the builder's stanza; the line names its alias"),
    (MACHINES_FILE, "block_types.machine.block.attributes.known_hosts", Added,
     "new argument: the builder's known_hosts line"),
    (MACHINES_FILE, "block_types.machine.block.attributes.uri.description", Changed,
     "a port goes through ssh_config, not the URI"),
    (MACHINES_FILE, "attributes.ssh_config", Added,
     "new computed attribute: the client ssh_config file"),
    (MACHINES_FILE, "attributes.known_hosts", Added,
     "new computed attribute: the client known_hosts file"),
    (MACHINES_FILE, "attributes.ssh_config_path", Added,
     "new computed attribute: where the ssh_config file is written"),
    (MACHINES_FILE, "attributes.known_hosts_path", Added,
     "new computed attribute: where the known_hosts file is written"),
    // Caching proxy and builder monitoring, issue 16 (286fb3a, 02f8e92).
    // Its `bastion_host_key` (issue 9's rule, added later) is part of the new
    // resource, not a difference of its own.
    (RESOURCES, "nixbuild_cache_proxy", Added,
     "new resource: a caching nginx proxy for binary caches"),
    (BUILDER, "block_types.monitoring", Added,
     "new block: Prometheus node exporter with Nix metrics"),
    // Several destinations and closure-complete refresh, issue 12 (e09b8d9).
    (CACHE_PUSH, "block_types.store.max_items", Changed,
     "store is repeatable (0.1.0 states with one block decode unchanged)"),
    (CACHE_PUSH, "block_types.store.block.description", Changed,
     "says the block repeats and combines with cachix"),
    (CACHE_PUSH, "block_types.store.block.attributes.uri.description", Changed,
     "each store block names a different URI, the key of the per-destination counts"),
    (CACHE_PUSH, "description", Changed,
     "several destinations, filters, closure-complete refresh"),
    (CACHE_PUSH, "attributes.exclude", Added,
     "new argument: closure paths not uploaded unless a kept path references them"),
    (CACHE_PUSH, "attributes.skip_upstream", Added,
     "new argument: upstream caches whose paths are not uploaded"),
    (CACHE_PUSH, "attributes.pushed_paths.description", Changed,
     "summed over destinations"),
    (CACHE_PUSH, "attributes.missing_paths.description", Changed,
     "counts closure paths (not only out paths), summed over destinations"),
    (CACHE_PUSH, "attributes.pushed_paths_by_destination", Added,
     "new computed attribute: pushed_paths per destination"),
    (CACHE_PUSH, "attributes.missing_paths_by_destination", Added,
     "new computed attribute: missing_paths per destination"),
    (CACHE_PUSH, "attributes.cache_url.description", Changed,
     "the first destination's URL"),
    // Every build lands in the cache: the push hook, issue 11 item 4.
    (BUILDER, "block_types.push", Added,
     "new block: a post-build-hook that queues builds and pushes them signed to any store"),
    // Private flakes and caches on builders, issue 14 item 4.
    (BUILDER, "block_types.nix.block.attributes.access_tokens", Added,
     "new argument: access tokens for private github:/gitlab: flakes (sensitive map, root-only file)"),
    (BUILDER, "block_types.nix.block.attributes.netrc", Added,
     "new argument: netrc for private tarball flakes and substituters (sensitive, root-only file)"),
    // Disk policy and health checks, issue 11 items 3 and 5.
    (BUILDER, "block_types.gc", Added,
     "new block: min_free / max_free and a periodic collection (systemd timer)"),
    (DATA_SOURCES, "nixbuild_builder_status", Added,
     "new data source: builder health for check blocks"),
    // Cachix API answers checked like user input, and plans through an API
    // outage (issue 28, holes 3 and 4).
    ("provider.block", "block_types.cachix.block.attributes.api_url.description", Changed,
     "https only (plain http:// to loopback only: the token would travel in clear)"),
    (BUILDER, "block_types.cachix.block.attributes.cache.description", Changed,
     "the API's answer is checked, and the last applied one is used when the API is down"),
    // Schema versions that work (the plugin layer of our own, issue 25).
    (RESOURCES, "nixbuild_cache_push.version", Changed,
     "state version 2: a version step forgets 0.1.0's source_hash, a hash of another kind"),
    // Write-only twins of the resource-level secrets (issue 25 item 6). The
    // push block, nix.access_tokens / nix.netrc and nixbuild_cache_proxy are
    // new since 0.1.0: their twins are no difference of their own.
    (BUILDER, "block_types.cachix.block.attributes.auth_token_wo", Added,
     "new write-only argument: the Cachix token kept out of state and plan (Terraform >= 1.11)"),
    (BUILDER, "block_types.cachix.block.attributes.auth_token_wo_version", Added,
     "new argument: a new version writes the current auth_token_wo"),
    // The watch-store signs with the ADR's key; destroy lets it upload its
    // queue first (issue 26 item 3).
    (BUILDER, "block_types.cachix.block.attributes.signing_key", Added,
     "new argument: the Cachix signing key watch-store signs with (sensitive)"),
    (BUILDER, "block_types.cachix.block.attributes.signing_key_wo", Added,
     "new write-only argument: the signing key kept out of state and plan (Terraform >= 1.11)"),
    (BUILDER, "block_types.cachix.block.attributes.signing_key_wo_version", Added,
     "new argument: a new version writes the current signing_key_wo"),
    (BUILDER, "block_types.nix.block.attributes.access_tokens_wo", Added,
     "new write-only argument: access tokens kept out of state and plan"),
    (BUILDER, "block_types.nix.block.attributes.access_tokens_wo_version", Added,
     "new argument: a new version writes the current access_tokens_wo"),
    (BUILDER, "block_types.nix.block.attributes.netrc_wo", Added,
     "new write-only argument: the netrc kept out of state and plan"),
    (BUILDER, "block_types.nix.block.attributes.netrc_wo_version", Added,
     "new argument: a new version writes the current netrc_wo"),
    (CACHE_PUSH, "block_types.store.block.attributes.secret_key_wo", Added,
     "new write-only argument: the signing key kept out of state and plan"),
    (CACHE_PUSH, "block_types.store.block.attributes.secret_key_wo_version", Added,
     "new argument: a new version pushes with the current secret_key_wo"),
    (CACHE_PUSH, "block_types.store.block.attributes.secret_key.description", Changed,
     "names its write-only twin"),
    // Installables as users write them, issue 26.
    (CACHE_PUSH, "attributes.installables.description", Changed,
     "quoted names (homeConfigurations.\"user@host\".activationPackage) with Nix's escapes, and what is refused"),
    // Evaluation at plan time, issue 27.
    (CACHE_PUSH, "attributes.evaluate_at_plan", Added,
     "new argument: turns the plan's evaluation of the installables off"),
    (CACHE_PUSH, "attributes.out_paths_missing_by_destination", Added,
     "new computed attribute: the out paths each destination lacked when the plan evaluated them"),
    (DATA_SOURCES, "nixbuild_flake_outputs", Added,
     "new data source: a flake's out paths, evaluated on a builder, and which caches hold them"),
];

/// The nixbuild provider's entry of `providers schema -json` output.
fn provider_entry(output: &Value) -> &Value {
    let key = format!("registry.terraform.io/{SOURCE}");
    let entry = &output["provider_schemas"][&key];
    assert!(entry.is_object(), "no {key} in the schema output: {output}");
    entry
}

fn differences(at: &str, old: &Value, new: &Value, out: &mut BTreeSet<(String, Change)>) {
    let path = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                match new.get(key) {
                    Some(n) => differences(&path(key), value, n, out),
                    None => {
                        out.insert((path(key), Removed));
                    }
                }
            }
            for key in new.keys().filter(|k| !old.contains_key(*k)) {
                out.insert((path(key), Added));
            }
        }
        (old, new) if old != new => {
            out.insert((at.to_string(), Changed));
        }
        _ => {}
    }
}

fn live_schema(version: &str) -> Value {
    let tf = Tf::new(version);
    tf.write(&format!(
        "terraform {{\n  required_providers {{\n    nixbuild = {{ source = \"{SOURCE}\" }}\n  }}\n}}\n"
    ));
    serde_json::from_str(&tf.ok(&["providers", "schema", "-json"])).expect("schema output parses")
}

#[test]
fn schema_matches_0_1_0_except_the_listed_changes() {
    let golden_text = std::fs::read_to_string(
        common::repo_root().join("tests/golden/providers-schema-0.1.0.json"),
    )
    .unwrap();
    let golden: Value = serde_json::from_str(&golden_text).unwrap();
    let expected: BTreeSet<(String, Change)> = CHANGES_SINCE_0_1_0
        .iter()
        .map(|(block, path, change, _why)| (format!("{block}.{path}"), *change))
        .collect();
    assert_eq!(
        expected.len(),
        CHANGES_SINCE_0_1_0.len(),
        "a change is listed twice"
    );
    for version in terraform_versions() {
        let live = live_schema(&version);
        let mut found = BTreeSet::new();
        differences(
            "",
            provider_entry(&golden),
            provider_entry(&live),
            &mut found,
        );
        let unexplained: Vec<_> = found.difference(&expected).collect();
        let stale: Vec<_> = expected.difference(&found).collect();
        assert!(
            unexplained.is_empty() && stale.is_empty(),
            "Terraform {version}: schema differences from 0.1.0 that CHANGES_SINCE_0_1_0 does not list: {unexplained:#?}\nlisted changes that did not happen: {stale:#?}"
        );
    }
}

#[test]
fn the_comparison_sees_every_kind_of_difference() {
    let old: Value = serde_json::json!({"a": {"b": 1, "c": "x"}, "d": 1});
    let new: Value = serde_json::json!({"a": {"b": 2, "e": true}, "d": 1});
    let mut found = BTreeSet::new();
    differences("", &old, &new, &mut found);
    let found: Vec<_> = found.into_iter().collect();
    assert_eq!(
        found,
        [
            ("a.b".to_string(), Changed),
            ("a.c".to_string(), Removed),
            ("a.e".to_string(), Added),
        ]
    );
}
