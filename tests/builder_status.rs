//! Acceptance test of the `nixbuild_builder_status` data source on every
//! supported Terraform version, inside Terraform `check {}` blocks the way the
//! example uses it: a healthy fleet (the namespace host h1 and the systemd
//! host sd, each bootstrapped with a restricted client key) gives no check
//! warning; with sd's nix-daemon stopped, the plan's check warning names sd
//! and the daemon, while h1's check stays quiet; an unreachable host is a
//! result (`healthy = false`), not an error.

mod common;
use common::daemon_restart_command;

use common::{exclusive, hcl, keypair, provider_config, terraform_versions, world, Tf};

const CHECK_FAILED: &str = "Check block assertion failed";

fn config(client_key: &str, client_pub: &str, dead_port: u16) -> String {
    let (h1, sd) = (world().host("h1"), world().host("sd"));
    let check = |name: &str| {
        format!(
            r#"
check "{name}_healthy" {{
  data "nixbuild_builder_status" "{name}" {{
    host = nixbuild_builder.{name}.host
    ssh {{
      host_key = nixbuild_builder.{name}.host_key
    }}
    build_user {{
      private_key_file = {key}
    }}
  }}
  assert {{
    condition     = data.nixbuild_builder_status.{name}.healthy
    error_message = "builder {name} (${{data.nixbuild_builder_status.{name}.host}}) is unhealthy: ${{join("; ", data.nixbuild_builder_status.{name}.problems)}}"
  }}
}}
"#,
            key = hcl(client_key)
        )
    };
    format!(
        r#"{provider}
resource "nixbuild_builder" "h1" {{
  host       = {h1}
  on_destroy = "clean"
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  build_user {{
    authorized_keys = [{client_pub}]
  }}
}}

resource "nixbuild_builder" "sd" {{
  host       = {sd}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  build_user {{
    authorized_keys = [{client_pub}]
  }}
}}
{check_h1}
{check_sd}
# Outside a check block too, to look at every attribute.
data "nixbuild_builder_status" "sd_attributes" {{
  host = nixbuild_builder.sd.host
  ssh {{
    host_key = nixbuild_builder.sd.host_key
  }}
  build_user {{
    private_key_file = {key}
  }}
  min_store_free = "1K"
}}

data "nixbuild_builder_status" "dead" {{
  host = "127.0.0.1"
  ssh {{
    port            = {dead_port}
    connect_timeout = "2s"
  }}
}}

# The status without its (sensitive) ssh block.
output "sd" {{
  value = {{
    healthy = data.nixbuild_builder_status.sd_attributes.healthy
    reachable = data.nixbuild_builder_status.sd_attributes.reachable
    daemon_ok = data.nixbuild_builder_status.sd_attributes.daemon_ok
    build_user_can_login = data.nixbuild_builder_status.sd_attributes.build_user_can_login
    has_free_bytes = data.nixbuild_builder_status.sd_attributes.store_free_bytes > 0
    nix_version = data.nixbuild_builder_status.sd_attributes.nix_version
    builds_running = data.nixbuild_builder_status.sd_attributes.builds_running
    problems = data.nixbuild_builder_status.sd_attributes.problems
  }}
}}

# The status without its (sensitive) ssh block.
output "dead" {{
  value = {{
    healthy = data.nixbuild_builder_status.dead.healthy
    reachable = data.nixbuild_builder_status.dead.reachable
    daemon_ok = data.nixbuild_builder_status.dead.daemon_ok
    build_user_can_login = data.nixbuild_builder_status.dead.build_user_can_login
    store_free_bytes = data.nixbuild_builder_status.dead.store_free_bytes
    nix_version = data.nixbuild_builder_status.dead.nix_version
    builds_running = data.nixbuild_builder_status.dead.builds_running
    problems = data.nixbuild_builder_status.dead.problems
  }}
}}
"#,
        provider = provider_config(""),
        h1 = hcl(&h1.address()),
        sd = hcl(&sd.address()),
        restart = hcl(&daemon_restart_command(&h1)),
        client_pub = hcl(client_pub),
        key = hcl(client_key),
        check_h1 = check("h1"),
        check_sd = check("sd"),
    )
}

/// The plan/apply contract with check blocks: Terraform plans every data
/// source nested in a check block to be read again during apply (seen with
/// a plain `nixbuild_host` in a check block too), and `-detailed-exitcode`
/// counts that read as a change (exit code 2). So: no resource and no output
/// changes, and nothing planned but those reads.
fn assert_nothing_but_check_reads(tf: &Tf) -> String {
    let (code, plan) = tf.plan_exit_code();
    assert!(code == 0 || code == 2, "{plan}");
    assert!(
        plan.contains("Plan: 0 to add, 0 to change, 0 to destroy.") || plan.contains("No changes."),
        "{plan}"
    );
    assert!(!plan.contains("Changes to Outputs"), "{plan}");
    let planned: Vec<&str> = plan
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("# ") && !l.starts_with("# (") && l.contains(" will be "))
        .collect();
    for line in &planned {
        assert!(
            line.contains("data.nixbuild_builder_status.")
                && line.ends_with("will be read during apply"),
            "{line}\n{plan}"
        );
    }
    assert!(
        plan.contains("(config will be reloaded to verify a check block)") || planned.is_empty(),
        "{plan}"
    );
    plan
}

/// A local port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn check_blocks_warn_about_an_unhealthy_builder() {
    let _h1 = exclusive("h1");
    let _sd = exclusive("sd");
    let sd = world().host("sd");
    for version in terraform_versions() {
        sd.reset();
        let tf = Tf::new(&version);
        let (client_key, client_pub) = keypair(tf.dir.path(), "client");
        tf.write(&config(&client_key, &client_pub, dead_port()));
        let applied = tf.apply();
        assert!(!applied.contains(CHECK_FAILED), "{applied}");
        let plan = assert_nothing_but_check_reads(&tf);
        assert!(!plan.contains(CHECK_FAILED), "{plan}");

        let status = tf.output("sd");
        assert_eq!(status["healthy"], true, "{status}");
        assert_eq!(status["reachable"], true, "{status}");
        assert_eq!(status["daemon_ok"], true, "{status}");
        assert_eq!(status["build_user_can_login"], true, "{status}");
        assert_eq!(status["problems"], serde_json::json!([]), "{status}");
        assert_eq!(
            status["nix_version"].as_str().unwrap(),
            sd.exec("nix --version | sed 's/.* //'")
        );
        // Free space changes from one read to the next: not an output (that
        // would be a change in every plan), but in the state.
        assert_eq!(status["has_free_bytes"], true, "{status}");
        let state: serde_json::Value = serde_json::from_str(&tf.state_text()).unwrap();
        let free = state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "sd_attributes")
            .expect("the status in the state")["instances"][0]["attributes"]["store_free_bytes"]
            .as_i64()
            .unwrap();
        let df: i64 = sd
            .exec("df -P -B1 /nix/store | awk 'NR==2 {print $4}'")
            .parse()
            .unwrap();
        assert!(
            free > 0 && (free - df).abs() < df / 10 + (1 << 30),
            "free {free}, df {df} (the disk is shared: other writers move it)"
        );
        assert_eq!(status["builds_running"], 0, "{status}");
        // The restricted key still gives no shell: the login check went
        // through the store protocol.
        assert!(sd
            .exec("cat ~nixbuild/.ssh/authorized_keys")
            .starts_with("restrict,command="));

        // An unreachable host is a result, not an error.
        let dead = tf.output("dead");
        assert_eq!(dead["healthy"], false, "{dead}");
        assert_eq!(dead["reachable"], false, "{dead}");
        assert!(
            dead["problems"][0]
                .as_str()
                .unwrap()
                .starts_with("unreachable:"),
            "{dead}"
        );
        assert!(dead["store_free_bytes"].is_null(), "{dead}");

        // sd's daemon goes down: its check warns, naming it; h1's does not.
        sd.exec(
            "systemctl stop nix-daemon.socket nix-daemon 2>/dev/null || systemctl stop nix-daemon",
        );
        // (The outputs change with it: no empty-plan check here.)
        let (code, plan) = tf.plan_exit_code();
        assert_ne!(code, 1, "{plan}");
        assert_eq!(plan.matches(CHECK_FAILED).count(), 1, "{plan}");
        assert!(
            plan.contains(&format!("builder sd ({}) is unhealthy", sd.address())),
            "{plan}"
        );
        assert!(
            plan.contains("nix daemon (as build user `nixbuild`)"),
            "{plan}"
        );
        assert!(!plan.contains("builder h1"), "{plan}");
        // What the data source reports then (a refresh-only apply stores it).
        tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
        let down = tf.output("sd");
        assert_eq!(down["healthy"], false, "{down}");
        assert_eq!(down["reachable"], true, "{down}");
        assert_eq!(down["daemon_ok"], false, "{down}");
        assert_eq!(down["build_user_can_login"], false, "{down}");

        // Back up: no warning.
        sd.exec("systemctl start nix-daemon");
        tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
        let plan = assert_nothing_but_check_reads(&tf);
        assert!(!plan.contains(CHECK_FAILED), "{plan}");
        assert_eq!(tf.output("sd")["healthy"], true);
        // Right after the build user's logins (destroy's refresh reads the
        // statuses again): `clean` still removes the build user.
        tf.destroy();
        assert!(!sd.try_exec("id nixbuild").0, "the build user is left");
    }
}

/// Bad input fails at plan time with the attribute's location, and no host
/// is contacted.
#[test]
fn bad_status_input_fails_at_plan_time() {
    let proxy = common::Proxy::start(&format!("{}:22", world().host("bare").address()));
    let cases: &[(&str, &str)] = &[
        ("min_store_free = \"10 GB\"", "is not a size"),
        (
            "build_user {\n    protocol = \"https\"\n  }",
            "protocol = \"https\"",
        ),
        ("build_user {\n    name = \"a;b\"\n  }", "name = \"a;b\""),
        (
            "build_user {\n    private_key      = \"x\"\n    private_key_file = \"/k\"\n  }",
            "not both",
        ),
    ];
    for version in terraform_versions() {
        for (body, message) in cases {
            let tf = Tf::new(&version);
            tf.write(&format!(
                "{}\ndata \"nixbuild_builder_status\" \"x\" {{\n  host = \"127.0.0.1\"\n  {body}\n}}\n",
                provider_config("").replacen("ssh {", &format!("ssh {{\n    port = {}", proxy.port), 1)
            ));
            let before = proxy.connection_count();
            let text = tf.fails(&["plan", "-no-color"]);
            assert!(text.contains("Error:"), "{body}: {text}");
            assert!(text.contains(message), "{body} ({version}): {text}");
            assert_eq!(
                proxy.connection_count(),
                before,
                "{body}: a connection was made"
            );
        }
    }
}
