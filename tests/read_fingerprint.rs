//! Acceptance test of the builder Read's Nix fingerprint: a routine Read
//! reuses Nix's version and features from the last full check (no `nix`
//! process), and any change to Nix's configuration or binary falls back to
//! the full check, so `supported_features` follows the host exactly.

mod common;
use common::daemon_restart_command;

use common::{exclusive, hcl, provider_config, terraform_versions, world, Tf};

const HOST: &str = "h3";
const EXTRA_LINE: &str = "system-features = benchmark fingerprint-test";

fn config() -> String {
    let host = world().host(HOST);
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  ssh {{
    host_key = {host_key}
  }}
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
}}

output "b" {{
  value = {{ features = nixbuild_builder.b.supported_features, nix_version = nixbuild_builder.b.nix_version }}
}}
"#,
        provider = provider_config(""),
        address = hcl(&host.address()),
        host_key = hcl(&host.host_key()),
        restart = hcl(&daemon_restart_command(&host)),
    )
}

/// `terraform apply -refresh-only` with the provider's debug log; returns
/// whether the Read took Nix's facts from the fingerprinted snapshot.
fn refresh(tf: &mut Tf, name: &str) -> bool {
    let log = tf.dir.path().join(format!("{name}.log"));
    tf.env("TF_LOG", "debug");
    tf.env("TF_LOG_PATH", log.to_str().unwrap());
    tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let checked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("builder checked"))
        .collect();
    assert_eq!(checked.len(), 1, "one Read expected in {name}: {checked:?}");
    checked[0].contains("nix_from_snapshot=true")
}

fn features(tf: &Tf) -> Vec<String> {
    serde_json::from_value(tf.output("b")["features"].clone()).unwrap()
}

#[test]
fn read_reuses_nix_facts_until_the_config_changes() {
    let _host = exclusive(HOST);
    let host = world().host(HOST);
    for version in terraform_versions() {
        let mut tf = Tf::new(&version);
        tf.write(&config());
        tf.apply();
        tf.assert_no_changes();
        let initial = features(&tf);
        let nix_version = tf.output("b")["nix_version"].clone();

        // Nothing changed since the apply's check: no nix started.
        assert!(refresh(&mut tf, "unchanged"), "{version}: full check");
        assert_eq!(features(&tf), initial, "{version}");
        assert_eq!(tf.output("b")["nix_version"], nix_version, "{version}");

        // A nix.conf edit changes Nix's features: the fingerprint no longer
        // matches, the Read runs nix and sees the new feature.
        host.exec(&format!("echo '{EXTRA_LINE}' >> /etc/nix/nix.conf"));
        let edited = refresh(&mut tf, "edited");
        let after_edit = features(&tf);
        host.exec(&format!("sed -i '/^{EXTRA_LINE}$/d' /etc/nix/nix.conf"));
        assert!(!edited, "{version}: the edited nix.conf was not noticed");
        assert!(
            after_edit.iter().any(|f| f == "fingerprint-test"),
            "{version}: {after_edit:?}"
        );
        assert_eq!(tf.output("b")["nix_version"], nix_version, "{version}");

        // Removed again: full check once more, back to the first features;
        // then the snapshot holds again.
        assert!(!refresh(&mut tf, "restored"), "{version}");
        assert_eq!(features(&tf), initial, "{version}");
        assert!(refresh(&mut tf, "again"), "{version}");
        tf.assert_no_changes();
        tf.destroy();
    }
}
