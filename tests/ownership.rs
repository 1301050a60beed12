//! Acceptance tests of what `nixbuild_builder` may touch on a host: an account
//! it did not create (refused, adopted only on request, given back intact), a
//! renamed build user, a removed watch-store service, and inputs refused before
//! any connection. Every test checks from the host's side: the command
//! recorder and sshd log of this run, and the account byte for byte.

mod common;
use common::daemon_restart_command;

use common::{
    exclusive, hcl, keypair, provider_config, terraform_versions, world, Host, Proxy, Tf,
};

/// Where the host records the accounts the provider created or adopted.
const RECORDS: &str = "/etc/nixbuild/users";

fn restart_command(host: &Host) -> String {
    daemon_restart_command(host)
}

/// Everything about an account a careless provider could change: its passwd,
/// shadow and group entries, and everything under its home (path, type, mode,
/// owner; for files also size and content).
fn account_snapshot(host: &Host, name: &str) -> String {
    host.exec(&format!(
        "getent passwd {name}; getent shadow {name}; id {name}; cd ~{name} && \
         find . -printf '%p %M %u %g\\n' | sort && find . -type f -printf '%p %s\\n' | sort && \
         find . -type f -exec sha256sum {{}} + | sort"
    ))
}

/// What the provider ran on `host` since `offset` of its command log, one
/// entry per command: the script's first comment line, then its arguments.
fn commands_since(host: &Host, offset: usize) -> Vec<String> {
    let log = host.commands_log();
    log[offset.min(log.len())..]
        .lines()
        .filter_map(|line| line.splitn(3, '\t').nth(2))
        .map(|command| {
            // Every command runs under the guard (src/scripts/guard.sh:
            // `sh -c GUARD nixbuild TOKEN GRACE COMMAND`): what it ran is its
            // last argument.
            let command = command
                .split_once("@nixbuild-guard-")
                .and_then(|(_, rest)| rest.splitn(3, ' ').nth(2))
                .unwrap_or(command);
            let (script, args) = command.rsplit_once(" nixbuild ").unwrap_or((command, ""));
            let title = script
                .split("\\n")
                .find(|l| l.starts_with("# "))
                .unwrap_or(script);
            format!("{title} | {args}")
        })
        .collect()
}

/// The steps an apply's one command began, in order, from the provider's
/// debug log: its output frames them as `@nixbuild-… begin N NAME`.
fn steps_begun(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let at = line.find("@nixbuild-")?;
            let mut words = line[at..].splitn(4, ' ').skip(1);
            (words.next()? == "begin").then_some(())?;
            words.next()?;
            let name = words.next()?;
            // Terraform writes the provider's fields after `: `.
            Some(name.split(": ").next()?.trim_end().to_string())
        })
        .collect()
}

/// Every command since `offset` is one of the read-only ones: the probe, the
/// builder check, or the build user's owner check.
fn assert_only_read_only_commands(host: &Host, offset: usize, ctx: &str) {
    let commands = commands_since(host, offset);
    assert!(!commands.is_empty(), "{ctx}: no command recorded at all?");
    for command in &commands {
        let read_only = command.starts_with("# Describe this host")
            // The builder check starts with the Nix fingerprint.
            || command.starts_with("# Read-only fingerprint")
            || (command.starts_with("# Who owns the account") && command.contains("| owner "));
        assert!(
            read_only,
            "{ctx}: a changing command ran: {command}\nall: {commands:#?}"
        );
    }
}

fn builder_config(
    host: &Host,
    build_user: &str,
    extra_user_lines: &str,
    client_pub: &str,
) -> String {
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  build_user {{
    name            = {build_user}
    authorized_keys = [{client_pub}]
    {extra_user_lines}
  }}
}}
"#,
        provider = provider_config(""),
        address = hcl(&host.address()),
        restart = hcl(&restart_command(host)),
        build_user = hcl(build_user),
        client_pub = hcl(client_pub),
    )
}

/// `ssh` as `user` with `key` runs `true` on the host.
fn can_log_in(host: &Host, user: &str, key: &str, dir: &std::path::Path) -> bool {
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("{} {}\n", host.address(), host.host_key()),
    )
    .unwrap();
    std::process::Command::new("ssh")
        .args(["-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("{user}@{}", host.address()))
        .arg("true")
        .status()
        .unwrap()
        .success()
}

/// The table row "`build_user { name = "appuser" }` on an existing account":
/// refused at apply before any change; refused at plan time once a refresh
/// has seen it; adopted only with `adopt_existing`; given back byte for byte
/// by a rename; and `on_destroy = "clean"` deletes only the account this
/// resource created.
#[test]
fn an_existing_account_is_never_taken_or_deleted() {
    let w = world();
    let _h1 = exclusive("h1");
    let h1 = w.host("h1");
    for version in terraform_versions() {
        let mut tf = Tf::new(&version);
        let (_, client_pub) = keypair(tf.dir.path(), "client");
        let (own_key, own_pub) = keypair(tf.dir.path(), "appuser-own");
        // An account with its own home, data and key, made by someone else.
        h1.exec(&format!(
            "userdel -r appuser 2>/dev/null; userdel -r nbrenamed 2>/dev/null; rm -f {RECORDS}/appuser* {RECORDS}/nbrenamed*; \
             useradd -m -p '*' -s /bin/sh appuser && cd ~appuser && mkdir -m 700 .ssh && \
             printf '%s\\n' {own} > .ssh/authorized_keys && chmod 600 .ssh/authorized_keys && \
             printf 'precious %s\\n' {version} > data.txt && chown -R appuser:appuser .ssh data.txt",
            own = hcl(&own_pub),
            version = hcl(&version),
        ));
        let original = account_snapshot(&h1, "appuser");
        let nix_etc = || {
            h1.exec("ls -la /etc/nix; sha256sum /etc/nix/nix.conf; ls /etc/nixbuild/users 2>/dev/null || true")
        };
        let nix_etc_before = nix_etc();

        // 1. Not adopted: the apply fails naming the account, and nothing changed.
        tf.write(&builder_config(&h1, "appuser", "", &client_pub));
        let offset = h1.commands_log().len();
        let log_path = tf.dir.path().join("refused-apply.log");
        tf.env("TF_LOG_PROVIDER", "debug")
            .env("TF_LOG_PATH", log_path.to_str().unwrap());
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        tf.env("TF_LOG_PROVIDER", "").env("TF_LOG_PATH", "");
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("`appuser` already exists") && flat.contains("adopt_existing"),
            "{version}: the error does not name the account: {text}"
        );
        assert_eq!(
            account_snapshot(&h1, "appuser"),
            original,
            "{version}: account touched"
        );
        assert_eq!(nix_etc(), nix_etc_before, "{version}: Nix config touched");
        // The apply is one command (its steps framed in its output): it
        // stopped after the owner check, before any step that changes things.
        assert_eq!(
            commands_since(&h1, offset).len(),
            1,
            "{version}: the apply ran more than its one command"
        );
        let log = std::fs::read_to_string(&log_path).unwrap();
        let begun = steps_begun(&log);
        assert_eq!(
            begun,
            ["probe host", "check host owner", "check build user"],
            "{version}: steps of the refused apply"
        );
        assert!(
            log.contains(" stop 2"),
            "{version}: the apply did not stop at the owner check"
        );

        // 2. Adopted on request: the provider manages the keys, nothing else.
        tf.write(&builder_config(
            &h1,
            "appuser",
            "adopt_existing = true",
            &client_pub,
        ));
        tf.apply();
        tf.assert_no_changes();
        // Build keys are restricted to the Nix protocol by default (issue 11).
        assert_eq!(
            h1.exec("cat ~appuser/.ssh/authorized_keys"),
            format!(
                "restrict,command=\"PATH=/nix/var/nix/profiles/default/bin:$PATH exec nix-daemon --stdio\" {client_pub}"
            ),
            "{version}: adopted account's keys"
        );
        assert_eq!(
            h1.exec("cat ~appuser/data.txt"),
            format!("precious {version}")
        );
        assert!(h1
            .exec(&format!("cat {RECORDS}/appuser"))
            .contains("origin=adopted"));

        // 3. Plan time: a refresh that finds the account unrecorded refuses
        // the plan, and runs only its read-only check.
        h1.exec(&format!("mv {RECORDS}/appuser /tmp/appuser.record"));
        tf.write(&builder_config(&h1, "appuser", "", &client_pub));
        let offset = h1.commands_log().len();
        let text = tf.fails(&["plan", "-no-color"]);
        assert!(
            text.contains("was not created by nixbuild_builder")
                && text.contains("name            = \"appuser\""),
            "{version}: no plan-time error at build_user.name: {text}"
        );
        assert_only_read_only_commands(&h1, offset, &format!("{version}, refused plan"));
        h1.exec(&format!("mv /tmp/appuser.record {RECORDS}/appuser"));

        // 4. Rename: the adopted account is given back exactly as it was.
        tf.write(&builder_config(&h1, "nbrenamed", "", &client_pub));
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(
            account_snapshot(&h1, "appuser"),
            original,
            "{version}: not given back intact"
        );
        assert!(!h1.try_exec(&format!("test -e {RECORDS}/appuser")).0);
        assert!(h1
            .exec(&format!("cat {RECORDS}/nbrenamed"))
            .contains("origin=created"));
        assert!(h1
            .exec("cat /etc/nix/nixbuild.conf")
            .contains("extra-trusted-users = nbrenamed"));

        // 5. Clean deletes the account it created, and only that one.
        tf.destroy();
        assert!(
            !h1.try_exec("id nbrenamed").0,
            "{version}: created build user left behind"
        );
        assert!(
            !h1.try_exec("test -e ~nbrenamed || test -e /home/nbrenamed")
                .0
        );
        assert_eq!(
            account_snapshot(&h1, "appuser"),
            original,
            "{version}: account changed by clean"
        );
        assert!(
            can_log_in(&h1, "appuser", &own_key, tf.dir.path()),
            "{version}: appuser's own key no longer works"
        );
        h1.exec("userdel -r appuser");
    }
}

/// A `cachix` block removed, or `watch_store = false`, stops and removes the
/// watch-store service and deletes its token file; a service or token put
/// back by hand is drift that the next apply removes.
#[test]
fn watch_store_removed_leaves_nothing_behind() {
    let w = world();
    let _sd = exclusive("sd");
    let sd = w.host("sd");
    sd.reset();
    let unit = "/etc/systemd/system/nixbuild-cachix-watch-store.service";
    let env_file = "/etc/nixbuild/cachix.env";
    let token = format!("cachix-ownership-{}", std::process::id());
    {
        use std::io::Write;
        let tokens = w.json["cachix_api"]["tokens_file"].as_str().unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(tokens)
            .unwrap();
        writeln!(file, "{token}").unwrap();
    }
    let provider = provider_config(&format!(
        "cachix {{\n    api_url    = {}\n    auth_token = {}\n  }}",
        hcl(w.json["cachix_api"]["url"].as_str().unwrap()),
        hcl(&token)
    ));
    let config = |cachix: &str| {
        format!(
            r#"{provider}
resource "nixbuild_builder" "sd" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters ="
  }}
  {cachix}
}}

output "drift" {{
  value = nixbuild_builder.sd.drift
}}
"#,
            host = hcl(&sd.address()),
        )
    };
    let watching = "cachix {\n    cache       = \"public-cache\"\n    watch_store = true\n  }";
    let not_watching = "cachix {\n    cache       = \"public-cache\"\n    watch_store = false\n  }";
    let gone = |ctx: &str| {
        assert!(
            !sd.try_exec(&format!("test -e {unit}")).0,
            "{ctx}: unit left"
        );
        assert!(
            !sd.try_exec(&format!("test -e {env_file}")).0,
            "{ctx}: token file left"
        );
        assert_ne!(
            sd.try_exec("systemctl is-active nixbuild-cachix-watch-store")
                .1
                .lines()
                .next(),
            Some("active"),
            "{ctx}: service still running"
        );
    };
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        for (removal, what) in [
            (not_watching, "watch_store = false"),
            ("", "no cachix block"),
        ] {
            let ctx = format!("{version}, {what}");
            tf.write(&config(watching));
            tf.apply();
            tf.assert_no_changes();
            assert_eq!(
                sd.exec("systemctl is-active nixbuild-cachix-watch-store"),
                "active"
            );
            // Copies (root-only), to put them back by hand below.
            sd.exec(&format!(
                "cp -p {unit} /root/unit.saved && cp -p {env_file} /root/env.saved"
            ));

            tf.write(&config(removal));
            tf.apply();
            tf.assert_no_changes();
            gone(&ctx);

            // Put back by hand: drift, which the next apply removes again.
            sd.exec(&format!(
                "cp -p /root/env.saved {env_file} && cp -p /root/unit.saved {unit} && \
                 systemctl daemon-reload && systemctl start nixbuild-cachix-watch-store"
            ));
            let (code, plan) = tf.plan_exit_code();
            assert_eq!(code, 2, "{ctx}: a left-over service is no drift: {plan}");
            assert!(plan.contains("will be updated in-place"), "{ctx}: {plan}");
            tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
            let drift = tf.output("drift").to_string();
            assert!(
                drift.contains("watch-store service") && drift.contains("token file"),
                "{ctx}: drift = {drift}"
            );
            tf.apply();
            tf.assert_no_changes();
            gone(&format!("{ctx}, after drift"));
        }
        tf.destroy();
        assert!(!sd.try_exec("id nixbuild").0, "{version}: build user left");
    }
}

/// Inputs refused at plan time with the attribute's location, before any
/// connection: every resource points at a counting proxy in front of `bare`.
#[test]
fn bad_inputs_are_refused_before_any_connection() {
    let w = world();
    let _bare = exclusive("bare");
    let bare = w.host("bare");
    let proxy = Proxy::start(&format!("{}:22", bare.address()));
    let key = w.host("h1").host_key();
    let builder = |name: &str, body: &str| {
        format!(
            "\nresource \"nixbuild_builder\" \"{name}\" {{\n  host = \"127.0.0.1\"\n  ssh {{\n    port = {port}\n  }}\n  {body}\n}}\n",
            port = proxy.port
        )
    };
    let machines_file = |name: &str, mode: &str| {
        format!(
            "\nresource \"nixbuild_machines_file\" \"{name}\" {{\n  file_permission = \"{mode}\"\n  target {{\n    host = \"127.0.0.1\"\n    ssh {{\n      port = {port}\n    }}\n  }}\n  machine {{\n    uri = \"ssh://b.example\"\n  }}\n}}\n",
            port = proxy.port
        )
    };
    // (resource, source snippet the error points at, reason).
    let newline_key = hcl(&format!("{key}\ncommand=\"/bin/sh\" {key}"));
    let escape_key = hcl(&format!("{key} \u{1b}[2J"));
    let validated: Vec<(String, String, String, &str)> = vec![
        (
            "nixbuild_builder.k0".into(),
            builder(
                "k0",
                &format!("build_user {{\n    authorized_keys = [{newline_key}]\n  }}"),
            ),
            format!("authorized_keys = [{newline_key}]"),
            "control character",
        ),
        (
            "nixbuild_builder.k1".into(),
            builder(
                "k1",
                &format!("build_user {{\n    authorized_keys = [{escape_key}]\n  }}"),
            ),
            format!("authorized_keys = [{escape_key}]"),
            "control character",
        ),
        (
            "nixbuild_builder.u0".into(),
            builder(
                "u0",
                "nix {\n    installer_url = \"http://nixos.org/nix/install\"\n  }",
            ),
            "installer_url = \"http://nixos.org/nix/install\"".into(),
            "plain http",
        ),
        (
            "nixbuild_machines_file.m0".into(),
            machines_file("m0", "0666"),
            "file_permission = \"0666\"".into(),
            "world-writable",
        ),
        (
            "nixbuild_machines_file.m1".into(),
            machines_file("m1", "4644"),
            "file_permission = \"4644\"".into(),
            "setuid",
        ),
        (
            "nixbuild_machines_file.m2".into(),
            machines_file("m2", "1644"),
            "file_permission = \"1644\"".into(),
            "sticky",
        ),
    ];
    // Checked against the provider's settings at plan time.
    let planned: Vec<(String, String, String, &str)> = vec![
        (
            "nixbuild_builder.a0".into(),
            builder("a0", "build_user {\n    name = \"deploy\"\n  }")
                .replace("ssh {\n", "ssh {\n    user = \"deploy\"\n"),
            "name = \"deploy\"".into(),
            "cannot be the login user",
        ),
        (
            "nixbuild_builder.a1".into(),
            builder("a1", "").replace("ssh {\n", "ssh {\n    user = \"nixbuild\"\n"),
            "user = \"nixbuild\"".into(),
            "cannot be the login user",
        ),
    ];
    let connections = bare.connections_logged();
    for version in terraform_versions() {
        for cases in [&validated, &planned] {
            let tf = Tf::new(&version);
            let mut config = provider_config("");
            for (_, resource, _, _) in cases.iter() {
                config.push_str(resource);
            }
            tf.write(&config);
            let text = tf.fails(&["plan", "-no-color"]);
            let errors: Vec<&str> = text.split("Error: ").skip(1).collect();
            for (address, _, snippet, why) in cases.iter() {
                let flat = |e: &str| e.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    errors
                        .iter()
                        .any(|e| e.contains(&format!("with {address},"))
                            && e.contains(snippet.as_str())
                            && flat(e).contains(why)),
                    "{version}: no error `{why}` at `{snippet}` of {address}:\n{text}"
                );
            }
            assert_eq!(errors.len(), cases.len(), "{version}: {text}");
        }
    }
    assert_eq!(
        proxy.connection_count(),
        0,
        "a connection reached the proxy"
    );
    assert_eq!(
        bare.connections_logged(),
        connections,
        "bare's sshd saw a connection"
    );
}

/// What a second builder resource could change on a host: every builder
/// object the first one owns (its account byte for byte, the managed config,
/// nix.conf, the host's claim and the build-user records).
fn builder_objects(host: &Host, user: &str) -> String {
    format!(
        "{}\n{}",
        account_snapshot(host, user),
        host.exec(&format!(
            "sha256sum /etc/nix/nix.conf /etc/nix/nixbuild.conf; cat /etc/nixbuild/owner; \
             for r in {RECORDS}/*; do echo \"$r\"; cat \"$r\"; done"
        ))
    )
}

/// The host's claim names this owner id.
fn claim_of(host: &Host) -> String {
    host.exec("sed -n 's/^owner=//p' /etc/nixbuild/owner 2>/dev/null || true")
        .trim()
        .to_string()
}

/// Issue 28, hole 5: two builder resources on one host, in two states (the
/// benchmark's situation). The second one's apply fails naming the first
/// one's owner id and `adopt_owner`, before it changes anything, with the
/// same or another build user; its destroy (`clean`) leaves the host alone;
/// the first one still plans nothing and its clean destroy removes its
/// objects. Then `adopt_owner` moves them to the second on request.
#[test]
fn a_second_state_never_touches_the_first_ones_builder() {
    let w = world();
    let _h1 = exclusive("h1");
    let h1 = w.host("h1");
    for version in terraform_versions() {
        h1.exec(&format!(
            "for u in nbown-a nbown-b; do userdel -r $u 2>/dev/null; rm -f {RECORDS}/$u*; done; true"
        ));
        let first = Tf::new(&version);
        let (_, client_pub) = keypair(first.dir.path(), "client");
        first.write(&builder_config(&h1, "nbown-a", "", &client_pub));
        first.apply();
        first.assert_no_changes();
        let owner_a = first.builder_owner_ids().pop().expect("owner id in state");
        assert_eq!(claim_of(&h1), owner_a, "{version}: host claim");
        assert!(h1
            .exec(&format!("cat {RECORDS}/nbown-a"))
            .contains(&format!("owner={owner_a}")));
        let before = builder_objects(&h1, "nbown-a");

        // The second state, with another build user and with the same one.
        let second = Tf::new(&version);
        for user in ["nbown-b", "nbown-a"] {
            second.write(&builder_config(&h1, user, "", &client_pub));
            let text = second.fails(&["apply", "-auto-approve", "-no-color"]);
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains("belong to another nixbuild_builder resource")
                    && flat.contains(&format!("owner id {owner_a}"))
                    && flat.contains(&format!("adopt_owner = \"{owner_a}\"")),
                "{version}, {user}: the error does not name the other owner: {text}"
            );
            assert_eq!(
                builder_objects(&h1, "nbown-a"),
                before,
                "{version}, {user}: the first one's objects changed"
            );
            assert!(!h1.try_exec("id nbown-b").0, "{version}: nbown-b created");
        }
        // The refused create is in the second state (tainted, with its
        // pin); its clean destroy warns and leaves the host alone.
        let text = second.ok(&["destroy", "-auto-approve", "-no-color"]);
        assert!(
            text.contains("was not cleaned: another nixbuild_builder resource owns it"),
            "{version}: no warning from the second one's clean destroy: {text}"
        );
        assert_eq!(
            builder_objects(&h1, "nbown-a"),
            before,
            "{version}: the second one's destroy changed the first one's objects"
        );

        // The first one is unaffected: no drift, no change planned.
        first.assert_no_changes();

        // Taking over on request: the second state names the first one's id.
        second.write(&builder_config(&h1, "nbown-a", "", &client_pub).replace(
            "on_destroy = \"clean\"",
            &format!("on_destroy = \"clean\"\n  adopt_owner = {}", hcl(&owner_a)),
        ));
        second.apply();
        second.assert_no_changes();
        let owner_b = second.builder_owner_ids().pop().expect("owner id in state");
        assert_ne!(owner_a, owner_b);
        assert_eq!(claim_of(&h1), owner_b, "{version}: taken over");
        assert!(h1
            .exec(&format!("cat {RECORDS}/nbown-a"))
            .contains(&format!("owner={owner_b}")));
        // The first one now sees another owner: drift at refresh (a planned
        // change, with a warning), a refused apply that changes nothing,
        // and a clean destroy that leaves the host to the second.
        let taken = builder_objects(&h1, "nbown-a");
        let (code, text) = first.plan_exit_code();
        assert!(
            code == 2
                && text.contains("belongs to another nixbuild_builder resource")
                && text.contains(&owner_b),
            "{version}: the first one's plan shows no change or warning: {text}"
        );
        let text = first.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(
            text.contains(&format!("owner id {owner_b}")),
            "{version}: {text}"
        );
        assert_eq!(builder_objects(&h1, "nbown-a"), taken, "{version}");
        let text = first.ok(&["destroy", "-auto-approve", "-no-color"]);
        assert!(text.contains("was not cleaned"), "{version}: {text}");
        assert_eq!(builder_objects(&h1, "nbown-a"), taken, "{version}");
        second.assert_no_changes();

        // The owner's clean destroy removes its objects and its claim.
        second.destroy();
        assert!(!h1.try_exec("id nbown-a").0, "{version}: account left");
        assert!(!h1.try_exec("test -e /etc/nix/nixbuild.conf").0);
        assert!(!h1.try_exec("test -e /etc/nixbuild/owner").0);
        assert!(!h1.try_exec(&format!("test -e {RECORDS}/nbown-a")).0);
    }
}

/// A builder replaced on its host (`-replace`, as Terraform also replaces a
/// tainted create that was cut) with `on_destroy = "keep"`: the old object
/// leaves its claim and build user on the host, and the new one takes both
/// over in the same apply instead of refusing them as another's. A later
/// apply in another state is still refused.
#[test]
fn a_replacement_inherits_what_it_replaces() {
    let w = world();
    let _h1 = exclusive("h1");
    let h1 = w.host("h1");
    for version in terraform_versions() {
        h1.exec(&format!(
            "userdel -r nbrepl 2>/dev/null; rm -f {RECORDS}/nbrepl*; true"
        ));
        let tf = Tf::new(&version);
        let (_, client_pub) = keypair(tf.dir.path(), "client");
        let keep = builder_config(&h1, "nbrepl", "", &client_pub)
            .replace("on_destroy = \"clean\"", "on_destroy = \"keep\"");
        tf.write(&keep);
        tf.apply();
        let old = tf.builder_owner_ids().pop().expect("owner id in state");
        assert_eq!(claim_of(&h1), old, "{version}: host claim");
        let uid = h1.exec("id -u nbrepl");

        tf.ok(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-replace=nixbuild_builder.b",
        ]);
        tf.assert_no_changes();
        let new = tf.builder_owner_ids().pop().expect("owner id in state");
        assert_ne!(old, new, "{version}: a new object has a new owner id");
        assert_eq!(
            claim_of(&h1),
            new,
            "{version}: the claim moved to the new object"
        );
        let record = h1.exec(&format!("cat {RECORDS}/nbrepl"));
        assert!(
            record.contains(&format!("owner={new}")),
            "{version}: the build user's record was not handed over: {record}"
        );
        assert_eq!(h1.exec("id -u nbrepl"), uid, "{version}: same account");

        // Only a replacement inherits: another state is still refused.
        let other = Tf::new(&version);
        other.write(&keep);
        let text = other.fails(&["apply", "-auto-approve", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&format!("owner id {new}")),
            "{version}: another state was not refused: {text}"
        );
        other.destroy();
        assert_eq!(
            claim_of(&h1),
            new,
            "{version}: the refused one took the claim"
        );

        // Clean up through the owner: its clean destroy removes all.
        tf.write(&keep.replace("on_destroy = \"keep\"", "on_destroy = \"clean\""));
        tf.apply();
        tf.destroy();
        assert!(!h1.try_exec("id nbrepl").0, "{version}: account left");
        assert!(!h1.try_exec("test -e /etc/nixbuild/owner").0);
    }
}

/// Two builder resources on one host in one state: they are applied at the
/// same time, and exactly one of them owns the host; the other fails naming
/// it, having changed nothing. The clean destroy of both removes the owner's
/// objects and leaves nothing behind.
#[test]
fn two_builders_of_one_state_on_one_host_get_one_owner() {
    let w = world();
    let _h1 = exclusive("h1");
    let h1 = w.host("h1");
    let users = ["nbone-a", "nbone-b"];
    for version in terraform_versions() {
        h1.exec(&format!(
            "for u in {}; do userdel -r $u 2>/dev/null; rm -f {RECORDS}/$u*; done; true",
            users.join(" ")
        ));
        let tf = Tf::new(&version);
        let (_, client_pub) = keypair(tf.dir.path(), "client");
        let one = builder_config(&h1, users[0], "", &client_pub);
        let other = builder_config(&h1, users[1], "", &client_pub);
        // The second resource without the provider block, renamed.
        let other = other[other.find("resource").unwrap()..].replace("\"b\"", "\"c\"");
        tf.write(&format!("{one}\n{other}"));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(
            text.contains("another nixbuild_builder resource"),
            "{version}: no ownership error: {text}"
        );
        let created: Vec<_> = users
            .iter()
            .filter(|u| h1.try_exec(&format!("id {u}")).0)
            .collect();
        assert_eq!(created.len(), 1, "{version}: accounts created: {created:?}");
        let owners = tf.builder_owner_ids();
        assert_eq!(owners.len(), 2, "{version}: both in the state");
        assert!(owners.contains(&claim_of(&h1)), "{version}: claim");
        let conf = h1.exec("cat /etc/nix/nixbuild.conf");
        assert!(
            conf.contains(&format!("extra-trusted-users = {}", created[0])),
            "{version}: the config is not the owner's: {conf}"
        );
        // Destroy everything (the refused one is tainted): the owner's
        // objects go, the other's destroy touches nothing.
        tf.destroy();
        for user in users {
            assert!(
                !h1.try_exec(&format!("id {user}")).0,
                "{version}: {user} left"
            );
        }
        assert!(!h1.try_exec("test -e /etc/nix/nixbuild.conf").0);
        assert!(!h1.try_exec("test -e /etc/nixbuild/owner").0);
    }
}

/// Issue 28, item 9: a build user's account and its record come together. A
/// record that cannot be written (here: its directory is a file) used to
/// leave the new account behind without a record, which every later apply
/// then refused as someone else's. Now the apply fails before the account
/// exists, and succeeds once the records can be written.
#[test]
fn a_build_user_is_never_left_without_its_record() {
    let w = world();
    let _h1 = exclusive("h1");
    let h1 = w.host("h1");
    let version = terraform_versions().remove(0);
    h1.exec(&format!(
        "userdel -r nbrec 2>/dev/null; rm -f {RECORDS}/nbrec*; rm -f /etc/nixbuild/owner; true"
    ));
    let tf = Tf::new(&version);
    let (_, client_pub) = keypair(tf.dir.path(), "client");
    tf.write(&builder_config(&h1, "nbrec", "", &client_pub));
    // Restores the records directory even when an assertion fails.
    struct Restore<'a>(&'a Host<'a>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.exec(&format!(
                "[ -d {RECORDS}.saved ] && rm -f {RECORDS} && mv {RECORDS}.saved {RECORDS}; true"
            ));
        }
    }
    h1.exec(&format!("mv {RECORDS} {RECORDS}.saved && touch {RECORDS}"));
    let restore = Restore(&h1);
    let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
    assert!(
        text.contains("create build user"),
        "{version}: not the build user's step: {text}"
    );
    assert!(
        !h1.try_exec("id nbrec").0,
        "{version}: the account was left behind without its record"
    );
    drop(restore);
    tf.apply();
    tf.assert_no_changes();
    assert!(h1
        .exec(&format!("cat {RECORDS}/nbrec"))
        .contains("name=nbrec"));
    tf.destroy();
    assert!(!h1.try_exec("id nbrec").0, "{version}: account left");
}
