//! Acceptance tests of `nixbuild_builder`'s `gc` block (the disk policy) on
//! every supported Terraform version: `min_free` / `max_free` reach Nix on a
//! namespace host (`nix show-config`), a changed size is an in-place update,
//! removing the block removes them; on the systemd host sd the periodic
//! collection is a timer that runs a real `nix-collect-garbage`, a timer
//! removed by hand is drift, and the block's removal removes the units. Bad
//! input fails at plan time with the attribute's location and no connection;
//! a schedule on a host without systemd fails at plan time too.

mod common;
use common::daemon_restart_command;

use common::{exclusive, hcl, provider_config, terraform_versions, world, Host, Proxy, Tf};

fn restart_command(host: &Host) -> String {
    daemon_restart_command(host)
}

/// A builder on the namespace host `host` with `gc` as its gc block (or none).
fn namespace_config(host: &Host, gc: &str) -> String {
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  {gc}
}}
"#,
        provider = provider_config(""),
        address = hcl(&host.address()),
        restart = hcl(&restart_command(host)),
    )
}

/// `name = value` of `nix show-config` on the host, as root.
fn nix_setting(host: &Host, name: &str) -> String {
    let text = host.exec("PATH=$PATH:/nix/var/nix/profiles/default/bin nix --extra-experimental-features nix-command show-config");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("nix show-config has no {name}:\n{text}"))
        .trim()
        .to_string()
}

/// A plan that changes the builder in place (no replacement).
fn assert_in_place_update(tf: &Tf) {
    let (code, plan) = tf.plan_exit_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("will be updated in-place"), "{plan}");
    assert!(
        plan.contains("0 to add, 1 to change, 0 to destroy"),
        "{plan}"
    );
}

#[test]
fn sizes_reach_nix_and_go_with_the_block() {
    let _h2 = exclusive("h2");
    let h2 = world().host("h2");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&namespace_config(
            &h2,
            "gc {\n    min_free = \"1G\"\n    max_free = \"3G\"\n  }",
        ));
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(nix_setting(&h2, "min-free"), (1u64 << 30).to_string());
        assert_eq!(nix_setting(&h2, "max-free"), (3u64 << 30).to_string());

        // A changed size is an in-place update of the managed config.
        tf.write(&namespace_config(
            &h2,
            "gc {\n    min_free = \"512M\"\n    max_free = \"2G\"\n  }",
        ));
        assert_in_place_update(&tf);
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(nix_setting(&h2, "min-free"), (512u64 << 20).to_string());
        assert_eq!(nix_setting(&h2, "max-free"), (2u64 << 30).to_string());

        // A hand edit of the sizes is drift, repaired by the next apply.
        h2.exec("sed -i 's/^min-free = .*/min-free = 1/' /etc/nix/nixbuild.conf");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("nixbuild.conf was changed on the host"),
            "{plan}"
        );
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(nix_setting(&h2, "min-free"), (512u64 << 20).to_string());

        // Without the block, Nix's defaults are back.
        tf.write(&namespace_config(&h2, ""));
        assert_in_place_update(&tf);
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(nix_setting(&h2, "min-free"), "0");
        assert!(
            !h2.exec("cat /etc/nix/nixbuild.conf").contains("-free"),
            "gc settings left in the managed config"
        );
        tf.destroy();
    }
}

/// A builder on sd (systemd, the distribution's Nix) with `gc`.
fn sd_config(gc: &str) -> String {
    let sd = world().host("sd");
    format!(
        r#"{provider}
resource "nixbuild_builder" "sd" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  {gc}
}}
"#,
        provider = provider_config(""),
        host = hcl(&sd.address()),
    )
}

const UNITS: [&str; 2] = ["nixbuild-gc.timer", "nixbuild-gc.service"];

fn unit_files(sd: &Host) -> Vec<bool> {
    UNITS
        .iter()
        .map(|u| sd.try_exec(&format!("test -e /etc/systemd/system/{u}")).0)
        .collect()
}

#[test]
fn periodic_collection_is_a_systemd_timer() {
    let _sd = exclusive("sd");
    let sd = world().host("sd");
    for version in terraform_versions() {
        sd.reset();
        let tf = Tf::new(&version);
        tf.write(&sd_config(
            "gc {\n    min_free          = \"1G\"\n    schedule          = \"daily\"\n    delete_older_than = \"30d\"\n  }",
        ));
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(sd.exec("systemctl is-active nixbuild-gc.timer"), "active");
        assert_eq!(
            sd.exec("systemctl show -p TimersCalendar --value nixbuild-gc.timer | sed 's/.*OnCalendar=\\([^;]*\\);.*/\\1/' | xargs"),
            "*-*-* 00:00:00"
        );
        assert_eq!(nix_setting(&sd, "min-free"), (1u64 << 30).to_string());
        // The service is a real collection: it runs and succeeds, and a
        // garbage path it can collect is gone after it.
        let garbage = sd.exec(
            "echo gc-test-$(date +%s%N) > /tmp/g && nix --extra-experimental-features nix-command store add-file /tmp/g",
        );
        sd.exec(&format!("test -e {garbage}"));
        sd.exec("systemctl start nixbuild-gc.service");
        assert_eq!(
            sd.exec("systemctl show -p Result --value nixbuild-gc.service"),
            "success"
        );
        assert!(
            !sd.try_exec(&format!("test -e {garbage}")).0,
            "{garbage} survived the collection"
        );
        assert!(sd
            .exec("systemctl cat nixbuild-gc.service")
            .contains("nix-collect-garbage --delete-older-than 30d"));

        // Drift: the timer removed by hand plans an update; apply restores it.
        sd.exec("systemctl disable --now nixbuild-gc.timer && rm /etc/systemd/system/nixbuild-gc.timer && systemctl daemon-reload");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(plan.contains("nixbuild-gc.timer"), "{plan}");
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(sd.exec("systemctl is-active nixbuild-gc.timer"), "active");

        // A changed schedule is an in-place update of the timer.
        tf.write(&sd_config(
            "gc {\n    min_free = \"1G\"\n    schedule = \"Sun *-*-* 03:00:00\"\n  }",
        ));
        assert_in_place_update(&tf);
        tf.apply();
        tf.assert_no_changes();
        let timer = sd.exec("cat /etc/systemd/system/nixbuild-gc.timer");
        assert!(timer.contains("OnCalendar=Sun *-*-* 03:00:00"), "{timer}");
        assert!(!sd
            .exec("systemctl cat nixbuild-gc.service")
            .contains("--delete-older-than"));

        // An expression systemd refuses fails at plan time, naming it.
        tf.write(&sd_config("gc {\n    schedule = \"Sun 25:99\"\n  }"));
        let text = tf.fails(&["plan", "-no-color"]);
        assert!(text.contains("refuses `Sun 25:99`"), "{text}");
        assert!(text.contains("schedule = \"Sun 25:99\""), "{text}");

        // Removing the block removes the units.
        tf.write(&sd_config(""));
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(unit_files(&sd), [false, false]);
        tf.destroy();
    }
}

/// A schedule on a reachable host without systemd is refused at plan time
/// (its key known: a plan never trusts a host key on first use).
#[test]
fn a_schedule_needs_systemd() {
    let _h3 = exclusive("h3");
    let h3 = world().host("h3");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        // A plan looks at a new object's host only with a key it can check.
        tf.write(&namespace_config(
            &h3,
            &format!(
                "ssh {{\n    host_key = {}\n  }}\n  gc {{\n    schedule = \"daily\"\n  }}",
                hcl(&h3.host_key())
            ),
        ));
        let etc = || h3.exec("ls -la /etc/nix; cat /etc/nix/*.conf");
        let before = etc();
        let text = tf.fails(&["plan", "-no-color"]);
        assert!(text.contains("does not run systemd"), "{text}");
        assert!(text.contains("schedule = \"daily\""), "{text}");
        assert_eq!(etc(), before, "the plan changed the host");
    }
}

/// Bad input fails at plan time with the attribute's location, and no host
/// is contacted.
#[test]
fn bad_gc_input_fails_at_plan_time() {
    let proxy = Proxy::start(&format!("{}:22", world().host("bare").address()));
    let cases: &[(&str, &str)] = &[
        ("min_free = \"10GB\"", "is not a size"),
        ("min_free = \"0\"", "is zero"),
        ("min_free = \"1.5G\"", "is not a size"),
        (
            "min_free = \"20G\"\n    max_free = \"10G\"",
            "max_free must be larger than gc.min_free",
        ),
        ("max_free = \"10G\"", "max_free needs gc.min_free"),
        (
            "schedule = \"daily; reboot\"",
            "not part of a systemd calendar",
        ),
        ("schedule = \"%H:00\"", "not part of a systemd calendar"),
        (
            "schedule = \"daily\"\n    delete_older_than = \"4w\"",
            "not a number of days",
        ),
        ("delete_older_than = \"30d\"", "needs gc.schedule"),
    ];
    for version in terraform_versions() {
        for (body, message) in cases {
            let tf = Tf::new(&version);
            tf.write(&format!(
                "{}\nresource \"nixbuild_builder\" \"x\" {{\n  host = \"127.0.0.1\"\n  gc {{\n    {body}\n  }}\n}}\n",
                provider_config("").replacen("ssh {", &format!("ssh {{\n    port = {}", proxy.port), 1)
            ));
            let before = proxy.connection_count();
            let text = tf.fails(&["plan", "-no-color"]);
            assert!(text.contains(message), "{body} ({version}): {text}");
            // The error points at the attribute (its line is quoted).
            let line = body.lines().last().unwrap().trim();
            let attribute = line.split(" = ").next().unwrap();
            assert!(
                text.contains(&format!("gc[0].{attribute}")) || text.contains(line),
                "{body} ({version}): error does not point at `{line}`:\n{text}"
            );
            assert_eq!(
                proxy.connection_count(),
                before,
                "{body}: a connection was made"
            );
        }
    }
}
