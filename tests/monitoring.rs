//! Acceptance test of `nixbuild_builder`'s `monitoring` block on every
//! supported Terraform version: on the systemd host sd (the distribution's
//! Nix and node exporter, from the packages the world prefetched), the
//! exporter answers with the Nix metrics, a stopped exporter is drift that
//! the next apply repairs, and removing the block removes the units; on a
//! host without systemd the failed step's error points at the block.

mod common;

use common::{
    daemon_restart_command, exclusive, hcl, provider_config, terraform_versions, world, Tf,
};

fn config(port: u16, monitoring: bool) -> String {
    let sd = world().host("sd");
    let block = if monitoring {
        format!(
            "monitoring {{\n    listen = \"{}:{port}\"\n  }}",
            sd.address()
        )
    } else {
        String::new()
    };
    format!(
        r#"{provider}
resource "nixbuild_builder" "sd" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  {block}
}}
"#,
        provider = provider_config(""),
        host = hcl(&sd.address()),
    )
}

/// The value of a metric without labels in Prometheus text format.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in the exporter's output:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn scrape(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn node_exporter_reports_nix_metrics_and_goes_with_the_block() {
    let _sd = exclusive("sd");
    let sd = world().host("sd");
    for version in terraform_versions() {
        sd.reset();
        let port = std::net::TcpListener::bind((sd.address().as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://{}:{port}/metrics", sd.address());
        let tf = Tf::new(&version);
        tf.write(&config(port, true));
        tf.apply();
        tf.assert_no_changes();

        let text = scrape(&url).expect("the exporter answers");
        assert!(
            text.contains("node_cpu_seconds_total"),
            "not a node exporter"
        );
        let store: f64 = sd
            .exec("du -sx --block-size=1 /nix/store | cut -f1")
            .parse()
            .unwrap();
        let size = metric(&text, "nix_store_size_bytes");
        assert!(
            size > 0.0 && (size - store).abs() <= store * 0.2 + 8192.0,
            "store size {size}, du says {store}"
        );
        let free = metric(&text, "nix_store_filesystem_free_bytes");
        let total = metric(&text, "nix_store_filesystem_size_bytes");
        assert!(free > 0.0 && free <= total, "free {free} of {total}");
        assert_eq!(metric(&text, "nix_daemon_up"), 1.0);
        assert_eq!(metric(&text, "nix_builds_running"), 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - metric(&text, "nix_metrics_last_run_timestamp_seconds")).abs() < 600.0);
        // The package's own service stays off; ours is the one listening.
        assert_ne!(
            sd.exec("systemctl is-active prometheus-node-exporter || true"),
            "active"
        );

        // The daemon goes down: the next collection says so.
        sd.exec(
            "systemctl stop nix-daemon nix-daemon.socket 2>/dev/null || systemctl stop nix-daemon",
        );
        sd.exec("systemctl start nixbuild-nix-metrics.service");
        let down = scrape(&url).expect("the exporter answers");
        assert_eq!(metric(&down, "nix_daemon_up"), 0.0);
        sd.exec("systemctl start nix-daemon");
        sd.exec("systemctl start nixbuild-nix-metrics.service");

        // Drift: a stopped exporter plans an update; apply restarts it.
        sd.exec("systemctl stop nixbuild-node-exporter");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("nixbuild-node-exporter.service is `inactive`"),
            "{plan}"
        );
        tf.apply();
        tf.assert_no_changes();
        assert!(scrape(&url).is_some(), "the exporter is back");

        // Removing the block removes the units.
        tf.write(&config(port, false));
        tf.apply();
        tf.assert_no_changes();
        assert!(scrape(&url).is_none(), "the exporter still answers");
        for unit in [
            "nixbuild-node-exporter.service",
            "nixbuild-nix-metrics.timer",
        ] {
            assert_eq!(
                sd.exec(&format!(
                    "test -e /etc/systemd/system/{unit} && echo left || echo gone"
                )),
                "gone",
                "{unit}"
            );
        }
        tf.destroy();
    }
}

/// Issue 26, item 5: a failed bootstrap step points at the block it carries
/// out, not at `host`. The namespace host h3 runs no systemd, so the
/// `set up monitoring` step fails, and the error names the `monitoring` block.
#[test]
fn a_failed_step_points_at_its_block() {
    let _h3 = exclusive("h3");
    let h3 = world().host("h3");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  build_user {{
    name = "nbstepblock"
  }}
  monitoring {{
    listen = "127.0.0.1:9"
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&h3.address()),
            restart = hcl(&daemon_restart_command(&h3)),
        ));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("failed at step `set up monitoring`")
                && flat.contains("monitoring needs systemd"),
            "{version}: {text}"
        );
        // The path ends at the block (Terraform shows such a path as the
        // resource), and the detail names the block.
        assert!(
            flat.contains("This step carries out the `monitoring` block."),
            "{version}: the error does not point at the monitoring block: {text}"
        );
        // The failed create stays tainted in the state: destroy cleans up.
        tf.destroy();
        assert!(
            !h3.try_exec("id nbstepblock").0,
            "{version}: clean left the build user"
        );
    }
}
