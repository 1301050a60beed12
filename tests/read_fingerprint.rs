//! Acceptance test of the builder Read's Nix fingerprint: a routine Read
//! reuses Nix's version and features from the last full check (no `nix`
//! process), and any change to Nix's configuration or binary falls back to
//! the full check, so `supported_features` follows the host exactly. Of the
//! provider's own config only the lines naming features count: an apply that
//! changes `max_jobs` keeps the snapshot, one that adds a feature does not.

mod common;
use common::daemon_restart_command;

use common::{exclusive, hcl, provider_config, terraform_versions, world, Tf};

const HOST: &str = "h3";
const EXTRA_LINE: &str = "system-features = benchmark fingerprint-test";

fn config(max_jobs: u32, extra_config: &str) -> String {
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
    max_jobs               = {max_jobs}
    extra_config           = {extra}
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
        extra = hcl(extra_config),
    )
}

/// `terraform apply -refresh-only` with the provider's debug log; returns
/// whether the Read took Nix's facts from the fingerprinted snapshot.
fn refresh(tf: &mut Tf, name: &str) -> bool {
    let checked = checks_logged(tf, name, &["-refresh-only"]);
    assert_eq!(checked.len(), 1, "one Read expected in {name}: {checked:?}");
    checked[0]
}

/// `terraform apply` (after its own refresh) with the provider's debug log;
/// returns whether the apply's check took Nix's facts from the snapshot.
fn apply(tf: &mut Tf, name: &str) -> bool {
    let checked = checks_logged(tf, name, &[]);
    assert_eq!(
        checked.len(),
        2,
        "a Read and an apply expected in {name}: {checked:?}"
    );
    checked[1]
}

/// Run `terraform apply ARGS` with a debug log: for each builder check in
/// it, whether Nix's facts came from the snapshot.
fn checks_logged(tf: &mut Tf, name: &str, args: &[&str]) -> Vec<bool> {
    let log = tf.dir.path().join(format!("{name}.log"));
    tf.env("TF_LOG", "debug");
    tf.env("TF_LOG_PATH", log.to_str().unwrap());
    let mut all = vec!["apply"];
    all.extend_from_slice(args);
    all.extend(["-auto-approve", "-no-color"]);
    tf.ok(&all);
    let text = std::fs::read_to_string(&log).unwrap();
    text.lines()
        .filter(|l| l.contains("builder checked"))
        .map(|l| l.contains("nix_from_snapshot=true"))
        .collect()
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
        tf.write(&config(2, ""));
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

        // `max_jobs` rewrites the provider's config but changes no feature:
        // the apply's check keeps the snapshot.
        tf.write(&config(3, ""));
        assert!(
            apply(&mut tf, "max_jobs"),
            "{version}: nix ran for max-jobs"
        );
        assert!(host
            .exec("cat /etc/nix/nixbuild.conf")
            .contains("max-jobs = 3"));
        assert_eq!(features(&tf), initial, "{version}");
        tf.assert_no_changes();

        // A feature line in that config: the apply's check runs nix and
        // reports the new feature.
        tf.write(&config(3, "extra-system-features = fingerprint-test"));
        assert!(
            !apply(&mut tf, "feature"),
            "{version}: the new feature line was not noticed"
        );
        let with_feature = features(&tf);
        assert!(
            with_feature.iter().any(|f| f == "fingerprint-test"),
            "{version}: {with_feature:?}"
        );
        tf.assert_no_changes();

        // A hand edit of that config adding a feature: the Read reports it
        // (drift, and the feature), and the repair takes both back.
        host.exec("echo 'extra-system-features = drift-test' >> /etc/nix/nixbuild.conf");
        tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
        assert!(features(&tf).iter().any(|f| f == "drift-test"), "{version}");
        tf.apply();
        assert!(
            !features(&tf).iter().any(|f| f == "drift-test"),
            "{version}"
        );
        assert!(
            features(&tf).iter().any(|f| f == "fingerprint-test"),
            "{version}"
        );
        tf.assert_no_changes();
        tf.destroy();
    }
}
