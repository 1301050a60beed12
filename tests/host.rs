//! Acceptance tests of the `nixbuild_host` data source and of the provider's
//! plan-time validation, on every supported Terraform version.

mod common;

use common::{
    assert_bad_inputs_fail_at_plan, exclusive, hcl, provider_config, terraform_versions, world,
    BadInput, Tf,
};

/// What the host itself says, read inside its namespace (not through the provider).
struct Truth {
    system: String,
    nix_version: Option<String>,
    cpus: i64,
    host_key: String,
}

fn truth(name: &str) -> Truth {
    let host = world().host(name);
    let machine = host.exec("uname -m");
    let nix = host.exec("nix --version 2>/dev/null || true");
    Truth {
        system: format!("{machine}-linux"),
        nix_version: nix.split_whitespace().last().map(str::to_string),
        cpus: host.exec("nproc").parse().unwrap(),
        host_key: host.exec("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub"),
    }
}

fn host_outputs(name: &str) -> String {
    format!(
        r#"
output "{name}" {{
  value = {{
    id          = data.nixbuild_host.{name}.id
    system      = data.nixbuild_host.{name}.system
    nix_version = data.nixbuild_host.{name}.nix_version
    cpus        = data.nixbuild_host.{name}.cpus
    host_key    = data.nixbuild_host.{name}.host_key
    host_key_b64 = data.nixbuild_host.{name}.host_key_base64
    fingerprint = data.nixbuild_host.{name}.host_key_fingerprint
  }}
}}
"#
    )
}

/// Reads h1 (provider-level ed25519 key), h2 (RSA key, rsa-sha2), h3 (encrypted
/// key + passphrase, as user `deploy` through h2 as bastion) and the host
/// without Nix; every output must equal what the host says.
#[test]
fn host_data_source_matches_the_hosts() {
    let w = world();
    let _bare = exclusive("bare");
    let _h2 = exclusive("h2");
    let _h3 = exclusive("h3");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let h1 = w.host("h1");
        let h2 = w.host("h2");
        let h3 = w.host("h3");
        let bare = w.host("bare");
        let config = format!(
            r#"{provider}
data "nixbuild_host" "h1" {{
  host = {h1}
  ssh {{
    host_key = {h1_key}
  }}
}}

data "nixbuild_host" "h2" {{
  host = {h2}
  ssh {{
    private_key_file = {rsa}
  }}
}}

data "nixbuild_host" "h3" {{
  host = {h3}
  ssh {{
    user                   = "deploy"
    private_key            = file({enc})
    private_key_passphrase = {pass}
    bastion_host           = {h2}
    bastion_host_key       = {h2_key}
    host_key               = {h3_key}
  }}
}}

data "nixbuild_host" "bare" {{
  host = {bare}
}}
{o1}{o2}{o3}{o4}"#,
            provider = provider_config(""),
            h1 = hcl(&h1.address()),
            h1_key = hcl(&h1.host_key()),
            h2 = hcl(&h2.address()),
            h2_key = hcl(&h2.host_key()),
            h3 = hcl(&h3.address()),
            h3_key = hcl(&h3.host_key()),
            bare = hcl(&bare.address()),
            rsa = hcl(&w.key("rsa")),
            enc = hcl(&w.key("ed25519_encrypted")),
            pass = hcl(&w.passphrase()),
            o1 = host_outputs("h1"),
            o2 = host_outputs("h2"),
            o3 = host_outputs("h3"),
            o4 = host_outputs("bare"),
        );
        tf.write(&config);
        let h2_logins_before = h2.sshd_log().matches("Accepted publickey for root").count();
        let h3_log_before = h3.sshd_log().len();
        tf.apply();
        tf.assert_no_changes();

        for name in ["h1", "h2", "h3", "bare"] {
            let got = tf.output(name);
            let want = truth(name);
            let ctx = format!("{name} on Terraform {version}: {got}");
            assert_eq!(got["system"], want.system.as_str(), "{ctx}");
            assert_eq!(got["cpus"], want.cpus, "{ctx}");
            assert_eq!(got["host_key"], want.host_key.as_str(), "{ctx}");
            match &want.nix_version {
                Some(v) => assert_eq!(got["nix_version"], v.as_str(), "{ctx}"),
                None => assert!(got["nix_version"].is_null(), "{ctx}"),
            }
            let decoded = base64_decode(got["host_key_b64"].as_str().unwrap());
            assert_eq!(decoded, want.host_key, "{ctx}");
            assert!(
                got["fingerprint"].as_str().unwrap().starts_with("SHA256:"),
                "{ctx}"
            );
        }
        assert_eq!(
            tf.output("h3")["id"],
            format!("deploy@{}:22", h3.address()).as_str()
        );
        assert!(truth("h1").nix_version.is_some(), "h1 must have Nix");
        assert!(truth("bare").nix_version.is_none(), "bare must lack Nix");
        // The bastion (h2) accepted a root login to carry the tunnel to h3.
        let h2_logins_after = h2.sshd_log().matches("Accepted publickey for root").count();
        assert!(
            h2_logins_after > h2_logins_before,
            "no login on the bastion h2"
        );
        // h3 saw the login as deploy, with the encrypted key.
        let h3_log = h3.sshd_log();
        assert!(
            h3_log[h3_log_before.min(h3_log.len())..].contains("Accepted publickey for deploy"),
            "no login as deploy on h3 during this run"
        );
        tf.destroy();
    }
}

fn base64_decode(text: &str) -> String {
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// A wrong `host_key` fails the plan, naming the host and both keys, and
/// nothing runs on the host: sshd never sees an authentication attempt and the
/// command recorder records nothing.
#[test]
fn wrong_host_key_fails_the_plan_and_runs_nothing() {
    let w = world();
    let _bare = exclusive("bare");
    let bare = w.host("bare");
    let wrong = w.host("h1").host_key();
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
data "nixbuild_host" "x" {{
  host = {addr}
  ssh {{
    host_key = {wrong}
  }}
}}
"#,
            provider = provider_config(""),
            addr = hcl(&bare.address()),
            wrong = hcl(&wrong),
        ));
        let commands_before = bare.commands_log();
        let sshd_before = bare.sshd_log();
        let text = tf.fails(&["plan", "-no-color"]);
        let text_flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text_flat.contains("host key mismatch"), "{text}");
        assert!(text_flat.contains(&bare.address()), "{text}");
        // Both keys, in full.
        assert!(text_flat.contains(&wrong), "expected key missing: {text}");
        assert!(
            text_flat.contains(&bare.host_key()),
            "presented key missing: {text}"
        );
        assert!(text_flat.contains("Nothing was run on the host"), "{text}");
        // The host's side: a connection (key exchange) but no authentication, no command.
        let sshd_new = &bare.sshd_log()[sshd_before.len()..];
        assert!(
            sshd_new.contains("Connection from"),
            "the test did not reach the host: {sshd_new}"
        );
        assert!(
            !sshd_new.contains("Accepted"),
            "authentication happened: {sshd_new}"
        );
        assert!(
            !sshd_new.contains("Postponed publickey"),
            "a key was offered: {sshd_new}"
        );
        assert_eq!(
            bare.commands_log(),
            commands_before,
            "a command ran on the host"
        );
    }
}

/// Issue 26, item 5: a key the host does not accept fails the read with
/// "Login to … refused" (not "unreachable", not a generic connect error),
/// naming the settings to check, at the `host` attribute, without retrying.
#[test]
fn a_refused_login_names_the_user_and_key_settings() {
    let w = world();
    // Other tests of this file count the connections `bare` sees.
    let _bare = exclusive("bare");
    let bare = w.host("bare");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let (stranger, _) = common::keypair(tf.dir.path(), "stranger");
        tf.write(&format!(
            r#"{provider}
data "nixbuild_host" "x" {{
  host = {addr}
  ssh {{
    private_key_file = {key}
  }}
}}
"#,
            provider = provider_config(""),
            addr = hcl(&bare.address()),
            key = hcl(&stranger),
        ));
        let text = tf.fails(&["plan", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&format!("Login to root@{}:22 refused", bare.address())),
            "{text}"
        );
        for setting in [
            "ssh.user",
            "ssh.private_key_file",
            "ssh.agent",
            "not retried",
        ] {
            assert!(flat.contains(setting), "{setting}: {text}");
        }
        assert!(
            flat.contains("on main.tf line"),
            "no attribute path: {text}"
        );
        assert!(!flat.contains("unreachable"), "{text}");
    }
}

/// Bad input fails at plan time with the attribute's location, and no
/// connection is made to the host.
#[test]
fn bad_input_fails_at_plan_time_without_connecting() {
    let w = world();
    let _bare = exclusive("bare");
    let bare = w.host("bare");
    let addr = hcl(&bare.address());
    let enc = hcl(&w.key("ed25519_encrypted"));
    let cases: Vec<(&str, String, String, &str, &str)> = vec![
        (
            "unreadable private_key_file in the provider",
            r#"private_key_file = "/nonexistent/id_ed25519""#.into(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n}}\n"),
            "private_key_file = \"/nonexistent/id_ed25519\"",
            "Unusable private key",
        ),
        (
            "encrypted key without passphrase",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n  ssh {{\n    private_key = file({enc})\n  }}\n}}\n"),
            "private_key = file(",
            "Unusable private key",
        ),
        (
            "invalid connect_timeout",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n  ssh {{\n    connect_timeout = \"soon\"\n  }}\n}}\n"),
            "connect_timeout = \"soon\"",
            "Invalid connect_timeout",
        ),
        (
            "port 0",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n  ssh {{\n    port = 0\n  }}\n}}\n"),
            "port = 0",
            "Invalid port",
        ),
        (
            "port 70000",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n  ssh {{\n    port = 70000\n  }}\n}}\n"),
            "port = 70000",
            "Invalid port",
        ),
        (
            "empty host",
            String::new(),
            "data \"nixbuild_host\" \"x\" {\n  host = \"\"\n}\n".into(),
            "host = \"\"",
            "Invalid host",
        ),
        (
            "provider port 70000",
            "port = 70000".into(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n}}\n"),
            "port = 70000",
            "Invalid port",
        ),
        (
            "provider max_sessions_per_host 0",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n}}\n"),
            "max_sessions_per_host = 0",
            "Invalid max_sessions_per_host",
        ),
        (
            "malformed host_key",
            String::new(),
            format!("data \"nixbuild_host\" \"x\" {{\n  host = {addr}\n  ssh {{\n    host_key = \"ssh-ed25519 nope\"\n  }}\n}}\n"),
            "host_key = \"ssh-ed25519 nope\"",
            "Invalid host key",
        ),
    ];
    let cases: Vec<BadInput> = cases
        .iter()
        .map(|(what, provider_ssh, body, line, summary)| {
            let provider_extra = if what.contains("max_sessions") {
                "max_sessions_per_host = 0".to_string()
            } else {
                String::new()
            };
            let mut config = provider_config(&provider_extra);
            if !provider_ssh.is_empty() {
                config = config.replace(
                    "connect_timeout  = \"20s\"",
                    &format!("connect_timeout  = \"20s\"\n    {provider_ssh}"),
                );
                if provider_ssh.starts_with("private_key_file") {
                    // Replace the working key so the bad one is the only one.
                    config = config.replacen(
                        &format!("private_key_file = {}", hcl(&w.key("ed25519"))),
                        "",
                        1,
                    );
                }
            }
            BadInput::new(what, format!("{config}\n{body}"), summary, line)
        })
        .collect();
    assert_bad_inputs_fail_at_plan(&cases, &|| bare.connections_logged() as u64);
}

/// With TF_LOG=debug the provider's own lines appear in Terraform's log as this
/// provider's entries (parsed hclog JSON), not as raw stderr, and the plugin
/// exits on its own when Terraform is done.
#[test]
fn debug_log_shows_provider_entries() {
    let w = world();
    let version = terraform_versions()[0].clone();
    let mut tf = Tf::new(&version);
    tf.env("TF_LOG", "debug");
    tf.write(&format!(
        "{}\ndata \"nixbuild_host\" \"x\" {{\n  host = {}\n}}\n",
        provider_config(""),
        hcl(&w.host("h1").address())
    ));
    let out = tf.run(&["plan", "-no-color"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("provider.terraform-provider-nixbuild") && l.contains("@module=nixbuild")
        })
        .collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("connected") && l.contains("@module=nixbuild.ssh.pool")),
        "no parsed 'connected' entry:\n{log}"
    );
    assert!(
        ours.iter().any(|l| l.contains("step=\"probe host\"")
            || l.contains("step=probe host")
            || l.contains("probe host")),
        "no entry for the probe step:\n{log}"
    );
    assert!(
        !log.contains("\"@message\""),
        "raw JSON lines leaked into the log:\n{log}"
    );
    assert!(log.contains("plugin process exited"), "{log}");
    assert!(!log.contains("plugin failed to exit gracefully"), "{log}");
}

/// `terraform providers schema -json` lists the provider and `nixbuild_host`,
/// and every attribute and block has a description.
#[test]
fn schema_is_fully_described() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&provider_config(""));
        let text = tf.ok(&["providers", "schema", "-json"]);
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ours = schema["provider_schemas"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with("/nixbuild"))
            .map(|(_, v)| v.clone())
            .expect("provider listed");
        assert!(
            ours["data_source_schemas"]["nixbuild_host"].is_object(),
            "{ours}"
        );
        let mut missing = Vec::new();
        check_described("provider", &ours["provider"]["block"], &mut missing);
        for (kind, list) in [
            ("data", &ours["data_source_schemas"]),
            ("resource", &ours["resource_schemas"]),
        ] {
            if let Some(map) = list.as_object() {
                for (name, s) in map {
                    check_described(&format!("{kind}.{name}"), &s["block"], &mut missing);
                }
            }
        }
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }
}

fn check_described(path: &str, block: &serde_json::Value, missing: &mut Vec<String>) {
    let described = |v: &serde_json::Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty() && d != "empty")
    };
    if !described(block) {
        missing.push(path.to_string());
    }
    if let Some(attrs) = block["attributes"].as_object() {
        for (name, attr) in attrs {
            if !described(attr) {
                missing.push(format!("{path}.{name}"));
            }
        }
    }
    if let Some(blocks) = block["block_types"].as_object() {
        for (name, nested) in blocks {
            check_described(&format!("{path}.{name}"), &nested["block"], missing);
        }
    }
}

/// Several reads of one host in one run share one pooled SSH connection, and a
/// channel limit of 1 serialises their commands without failing them.
#[test]
fn reads_of_one_host_share_one_connection() {
    let w = world();
    let _h2 = exclusive("h2");
    let h2 = w.host("h2");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
data "nixbuild_host" "same" {{
  count = 5
  host  = {addr}
}}

output "systems" {{
  value = distinct(data.nixbuild_host.same[*].system)
}}
"#,
            provider = provider_config("max_sessions_per_host = 1"),
            addr = hcl(&h2.address()),
        ));
        let logins = || h2.sshd_log().matches("Accepted publickey for root").count();
        let probes = || h2.commands_log().matches("$arch-$os").count();
        let (logins_before, probes_before) = (logins(), probes());
        tf.ok(&["plan", "-no-color"]);
        assert_eq!(
            logins() - logins_before,
            1,
            "5 reads of one host should log in once"
        );
        assert_eq!(
            probes() - probes_before,
            5,
            "the probe did not run once per read"
        );
    }
}
