//! Acceptance tests of `nixbuild_builder`: a fleet of namespace hosts with a
//! preinstalled multi-user Nix plus a systemd host bootstrapped with the
//! distro's Nix and a Cachix watch-store service, on every Terraform version.
//! The Cachix service and CLI are stand-ins (tests/standins): no real Cachix
//! can run here.

mod common;
use common::daemon_restart_command;

use common::{
    assert_bad_inputs_fail_at_plan, bad_input_config, exclusive, hcl, keypair, provider_config,
    terraform_versions, world, BadInput, HttpsFiles, Proxy, Tf,
};

const NS_HOSTS: [&str; 3] = ["h1", "h2", "h3"];

fn restart_command(host: &str) -> String {
    daemon_restart_command(&world().host(host))
}

/// Make the Cachix API stand-in accept `token`.
fn register_token(token: &str) {
    use std::io::Write;
    let path = world().json["cachix_api"]["tokens_file"]
        .as_str()
        .unwrap()
        .to_string();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{token}").unwrap();
}

/// Provider block with the Cachix API stand-in and a token at provider level.
fn provider_with_cachix(token: &str) -> String {
    register_token(token);
    let api = world().json["cachix_api"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    provider_config(&format!(
        "cachix {{\n    api_url    = {}\n    auth_token = {}\n  }}",
        hcl(&api),
        hcl(token)
    ))
}

fn fleet_config(token: &str, client_pub: &str, h3_max_jobs: u32) -> String {
    let w = world();
    let hosts: Vec<String> = NS_HOSTS.iter().map(|h| hcl(&w.host(h).address())).collect();
    let restarts: Vec<String> = NS_HOSTS.iter().map(|h| hcl(&restart_command(h))).collect();
    format!(
        r#"{provider}
variable "client_key" {{
  default = {client_pub}
}}

locals {{
  hosts    = [{hosts}]
  restarts = [{restarts}]
  max_jobs = [2, 2, {h3_max_jobs}]
}}

resource "nixbuild_builder" "ns" {{
  count      = 3
  host       = local.hosts[count.index]
  on_destroy = "clean"
  nix {{
    install                = "none"
    max_jobs               = local.max_jobs[count.index]
    system_features        = ["big-parallel", "benchmark"]
    daemon_restart_command = local.restarts[count.index]
  }}
  build_user {{
    authorized_keys = [var.client_key]
  }}
}}

resource "nixbuild_builder" "sd" {{
  host = {sd}
  nix {{
    install = "distro"
    daemon  = true
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  build_user {{
    authorized_keys = [var.client_key]
  }}
  cachix {{
    cache       = "public-cache"
    watch_store = true
  }}
}}

output "ns" {{
  value = [for b in nixbuild_builder.ns : {{
    id = b.id, system = b.system, nix_version = b.nix_version, host_key_base64 = b.host_key_base64,
    store_uri = b.store_uri, max_jobs_effective = b.max_jobs_effective, cpus = b.cpus,
    supported_features = b.supported_features, drift = b.drift
  }}]
}}

output "sd" {{
  value = {{
    system = nixbuild_builder.sd.system, nix_version = nixbuild_builder.sd.nix_version,
    host_key_base64 = nixbuild_builder.sd.host_key_base64, store_uri = nixbuild_builder.sd.store_uri,
    max_jobs_effective = nixbuild_builder.sd.max_jobs_effective
  }}
}}
"#,
        provider = provider_with_cachix(token),
        client_pub = hcl(client_pub),
        hosts = hosts.join(", "),
        restarts = restarts.join(", "),
        sd = hcl(&w.host("sd").address()),
    )
}

fn b64(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// The whole life of a fleet: bootstrap, verify on the hosts, use the build
/// user, three kinds of drift, in-place update vs replacement, secrets, and a
/// destroy that cleans the namespace hosts and keeps the systemd host.
#[test]
fn fleet_lifecycle() {
    let w = world();
    let _hosts = NS_HOSTS.map(exclusive);
    let _sd = exclusive("sd");
    for version in terraform_versions() {
        let sd = w.host("sd");
        sd.reset();
        let sd_commands_before = sd.commands_log().len();
        let ns_commands_before = NS_HOSTS.map(|h| w.host(h).commands_log().len());
        let mut tf = Tf::new(&version);
        let (client_key, client_pub) = keypair(tf.dir.path(), "client");
        let token = format!(
            "cachix-secret-{}-{}",
            version.replace('.', ""),
            std::process::id()
        );
        tf.write(&fleet_config(&token, &client_pub, 2));
        tf.env("TF_LOG", "trace");
        let log_path = tf.dir.path().join("trace.log");
        tf.env("TF_LOG_PATH", log_path.to_str().unwrap());
        tf.apply();
        tf.assert_no_changes();

        // Outputs equal what the hosts say.
        let ns = tf.output("ns");
        for (i, name) in NS_HOSTS.iter().enumerate() {
            let host = w.host(name);
            let got = &ns[i];
            let ctx = format!("{name} on {version}: {got}");
            assert_eq!(
                got["system"],
                format!("{}-linux", host.exec("uname -m")),
                "{ctx}"
            );
            let nix_version = host
                .exec("nix --version")
                .split_whitespace()
                .last()
                .unwrap()
                .to_string();
            assert_eq!(got["nix_version"], nix_version.as_str(), "{ctx}");
            assert_eq!(
                got["host_key_base64"],
                b64(&host.host_key()).as_str(),
                "{ctx}"
            );
            assert_eq!(
                got["store_uri"],
                format!("ssh-ng://nixbuild@{}", host.address()).as_str(),
                "{ctx}"
            );
            assert_eq!(got["max_jobs_effective"], 2, "{ctx}");
            assert_eq!(got["drift"], serde_json::json!([]), "{ctx}");
            assert_eq!(
                got["supported_features"],
                serde_json::json!(["big-parallel", "benchmark"]),
                "{ctx}"
            );
            let conf = host.exec("cat /etc/nix/nixbuild.conf");
            assert!(
                conf.contains("max-jobs = 2") && conf.contains("extra-trusted-users = nixbuild"),
                "{conf}"
            );
            assert!(host
                .exec("tail -n1 /etc/nix/nix.conf")
                .contains("!include nixbuild.conf"));
            // The daemon really took the build user as trusted.
            let trusted = host.exec("nix show-config | sed -n 's/^trusted-users = //p'");
            assert!(
                trusted.split_whitespace().any(|u| u == "nixbuild"),
                "{name}: trusted-users = {trusted}"
            );
        }
        let sd_out = tf.output("sd");
        assert_eq!(
            sd_out["nix_version"],
            sd.exec("nix --version").split_whitespace().last().unwrap()
        );
        assert_eq!(sd.exec("systemctl is-active nix-daemon"), "active");
        assert_eq!(
            sd.exec("systemctl is-active nixbuild-cachix-watch-store"),
            "active"
        );
        assert_eq!(
            sd_out["max_jobs_effective"],
            sd.exec("nproc").parse::<i64>().unwrap()
        );
        assert_eq!(sd_out["host_key_base64"], b64(&sd.host_key()).as_str());

        // The build user works: ssh as nixbuild, and a remote build through store_uri.
        let known_hosts = tf.dir.path().join("known_hosts");
        for name in ["h1", "sd"] {
            let host = w.host(name);
            std::fs::write(
                &known_hosts,
                format!("{} {}\n", host.address(), host.host_key()),
            )
            .unwrap();
            let out = std::process::Command::new("ssh")
                .args([
                    "-i",
                    &client_key,
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=yes",
                ])
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
                .arg(format!("nixbuild@{}", host.address()))
                .arg("nix-store --version")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ssh nixbuild@{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("nix-store (Nix)"));
        }
        remote_build(&tf, &client_key, "h2", &ns[1]);

        // Secrets: the token is in no log, command line, unit or state.
        let trace = std::fs::read_to_string(&log_path).unwrap();
        assert!(trace.contains("nixbuild"), "the trace log is empty?");
        assert!(
            !trace.contains(&token),
            "token leaked into the TF_LOG=trace log"
        );
        // (Windows of this run: a missing or empty log must not pass.)
        let sd_commands =
            sd.commands_log()[sd_commands_before.min(sd.commands_log().len())..].to_string();
        assert!(
            sd_commands.contains("root\t"),
            "no command of this run recorded on sd: {sd_commands}"
        );
        assert!(
            !sd_commands.contains(&token),
            "token on a remote command line"
        );
        for (name, before) in NS_HOSTS.iter().zip(&ns_commands_before) {
            let log = w.host(name).commands_log();
            let window = &log[*before.min(&log.len())..];
            assert!(window.contains("root\t"), "{name}: nothing recorded");
            assert!(!window.contains(&token), "{name}: token on a command line");
        }
        // The distro install used the packages make world fetched: no apt
        // run downloaded lists or .debs after them.
        let stamp = sd.field("debs_stamp");
        assert_eq!(
            sd.exec(&format!(
                "find /var/lib/apt/lists /var/cache/apt/archives -type f -newer {stamp} ! -name lock | wc -l"
            )),
            "0",
            "apt downloaded during the test"
        );
        let unit = sd.exec("cat /etc/systemd/system/nixbuild-cachix-watch-store.service");
        assert!(!unit.contains(&token), "token in the unit file");
        assert_eq!(sd.exec("stat -c %a /etc/nixbuild/cachix.env"), "600");
        assert!(sd.exec("cat /etc/nixbuild/cachix.env").contains(&token));
        assert!(
            !tf.state_text().contains(&token),
            "provider-level token in terraform.tfstate"
        );
        let calls = std::fs::read_to_string(sd.field("cachix_log")).unwrap_or_default();
        assert!(
            calls.contains("watch-store") && calls.contains("public-cache"),
            "watch-store not started: {calls}"
        );
        // watch-store pushes what is built after it started.
        let nonce = format!("watched-{}-{}", std::process::id(), version);
        let built = sd.exec(&format!(
            "nix-build --no-out-link -E 'derivation {{ name = \"{nonce}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce} > $out\" ]; }}' 2>/dev/null"
        ));
        let narinfo = std::path::Path::new(w.json["cache"]["dir"].as_str().unwrap()).join(format!(
            "{}.narinfo",
            &built.trim_start_matches("/nix/store/")[..32]
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !narinfo.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "watch-store did not push {built} within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }

        // Drift 1: a hand-edited managed config.
        w.host("h1")
            .exec("echo 'max-jobs = 17' >> /etc/nix/nixbuild.conf");
        assert_drift(
            &tf,
            "nixbuild_builder.ns[0]",
            "/etc/nix/nixbuild.conf was changed on the host",
        );
        tf.apply();
        tf.assert_no_changes();
        assert!(!w
            .host("h1")
            .exec("cat /etc/nix/nixbuild.conf")
            .contains("17"));
        // Drift 2: a deleted build user.
        w.host("h2").exec("userdel -r nixbuild");
        assert_drift(
            &tf,
            "nixbuild_builder.ns[1]",
            "build user `nixbuild` is missing",
        );
        tf.apply();
        tf.assert_no_changes();
        w.host("h2").exec("id nixbuild");
        // Drift 3: a stopped watch-store service.
        sd.exec("systemctl stop nixbuild-cachix-watch-store");
        assert_drift(
            &tf,
            "nixbuild_builder.sd",
            "cachix watch-store service is `inactive`",
        );
        tf.apply();
        tf.assert_no_changes();
        assert_eq!(
            sd.exec("systemctl is-active nixbuild-cachix-watch-store"),
            "active"
        );

        // Token rotation at provider level plans an update that rewrites the token file.
        let rotated = format!("{token}-rotated");
        tf.write(&fleet_config(&rotated, &client_pub, 2));
        assert_update_in_place(&tf, "nixbuild_builder.sd");
        tf.apply();
        tf.assert_no_changes();
        assert!(sd.exec("cat /etc/nixbuild/cachix.env").contains(&rotated));
        assert!(!tf.state_text().contains(&rotated));

        // max_jobs changes in place; host changes replace.
        tf.write(&fleet_config(&rotated, &client_pub, 3));
        assert_update_in_place(&tf, "nixbuild_builder.ns[2]");
        tf.apply();
        tf.assert_no_changes();
        assert!(w
            .host("h3")
            .exec("cat /etc/nix/nixbuild.conf")
            .contains("max-jobs = 3"));
        assert_eq!(tf.output("ns")[2]["max_jobs_effective"], 3);
        let replaced = fleet_config(&rotated, &client_pub, 3)
            .replace(&hcl(&w.host("sd").address()), &hcl("127.0.0.16"));
        tf.write(&replaced);
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("nixbuild_builder.sd must be replaced"),
            "{plan}"
        );
        tf.write(&fleet_config(&rotated, &client_pub, 3));

        // Destroy: "clean" removes what was added; "keep" leaves sd untouched.
        tf.destroy();
        for name in NS_HOSTS {
            let host = w.host(name);
            assert!(
                !host.try_exec("id nixbuild").0,
                "{name}: build user left behind"
            );
            assert!(
                !host.try_exec("test -e /etc/nix/nixbuild.conf").0,
                "{name}: config left behind"
            );
            assert!(
                !host.exec("cat /etc/nix/nix.conf").contains("nixbuild.conf"),
                "{name}: include left behind"
            );
            assert!(
                host.exec("cat /etc/nix/nix.conf")
                    .contains("experimental-features"),
                "{name}: user lines lost"
            );
        }
        sd.exec("id nixbuild");
        sd.exec("test -e /etc/nix/nixbuild.conf");
        assert_eq!(
            sd.exec("systemctl is-active nixbuild-cachix-watch-store"),
            "active"
        );
    }
}

/// A planned in-place update whose plan shows `text` in the `drift` list.
fn assert_drift(tf: &Tf, address: &str, text: &str) {
    let (code, plan) = tf.plan_exit_code();
    assert_eq!(code, 2, "expected a planned change for {address}: {plan}");
    assert!(
        plan.contains(&format!("{address} will be updated in-place")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("\"{text}\"")),
        "drift `{text}` not shown: {plan}"
    );
}

fn assert_update_in_place(tf: &Tf, address: &str) {
    let (code, plan) = tf.plan_exit_code();
    assert_eq!(code, 2, "expected a planned change for {address}: {plan}");
    assert!(
        plan.contains(&format!("{address} will be updated in-place")),
        "{plan}"
    );
    assert!(!plan.contains("must be replaced"), "{plan}");
}

/// Build a fresh derivation on `host` through its store URI as the build user.
fn remote_build(tf: &Tf, client_key: &str, name: &str, out: &serde_json::Value) {
    let w = world();
    let host = w.host(name);
    let nonce = format!("{}-{}", std::process::id(), tf.version);
    let expr = format!(
        "derivation {{ name = \"remote-{nonce}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce} > $out\" ]; }}"
    );
    let builders = format!(
        "{} {} {client_key} 1 1 - - {}",
        out["store_uri"].as_str().unwrap(),
        out["system"].as_str().unwrap(),
        out["host_key_base64"].as_str().unwrap()
    );
    let home = tempfile::tempdir().unwrap();
    let result = std::process::Command::new("nix-build")
        .args([
            "--no-out-link",
            "--max-jobs",
            "0",
            "--option",
            "substituters",
            "",
            "--builders",
            &builders,
            "-E",
            &expr,
        ])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "remote build failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let path = String::from_utf8_lossy(&result.stdout).trim().to_string();
    host.exec(&format!("test -e {path}"));
}

/// Bad input fails at plan time with the error's summary, pointing at the
/// attribute, and no host is contacted.
#[test]
fn bad_input_fails_at_plan_time() {
    let w = world();
    // Every connection would pass this proxy: it counts them.
    let proxy = Proxy::start(&format!("{}:22", w.host("bare").address()));
    // (body, error summary, the line the error points at)
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("nix {\n    install = \"nixpkgs\"\n  }", "Invalid install method", "install = \"nixpkgs\""),
        ("nix {\n    max_jobs = 0\n  }", "Invalid max_jobs", "max_jobs = 0"),
        ("nix {\n    cores = -1\n  }", "Invalid cores", "cores = -1"),
        ("nix {\n    installer_url = \"ftp://x/install\"\n  }", "Invalid installer_url", "installer_url = \"ftp://x/install\""),
        ("nix {\n    install = \"none\"\n    installer_url = \"https://x/install\"\n  }", "installer_url without an installer", "installer_url = \"https://x/install\""),
        ("nix {\n    install = \"determinate\"\n    daemon = false\n  }", "Determinate Nix is always multi-user", "daemon = false"),
        ("nix {\n    system_features = [\"big parallel\"]\n  }", "Invalid system feature", "system_features = [\"big parallel\"]"),
        ("nix {\n    extra_platforms = [\"i686\"]\n  }", "Invalid system", "extra_platforms = [\"i686\"]"),
        ("nix {\n    trusted_users = [\"alice;rm\"]\n  }", "Invalid trusted user", "trusted_users = [\"alice;rm\"]"),
        ("nix {\n    substituters = [\"ftp://cache\"]\n  }", "Invalid substituter", "substituters = [\"ftp://cache\"]"),
        ("nix {\n    trusted_public_keys = [\"nokey\"]\n  }", "Invalid public key", "trusted_public_keys = [\"nokey\"]"),
        ("nix {\n    extra_config = \"just words\"\n  }", "Invalid extra_config", "extra_config = \"just words\""),
        ("nix {\n    daemon_restart_command = \" \"\n  }", "Empty daemon_restart_command", "daemon_restart_command = \" \""),
        ("build_user {\n    name = \"nix;build\"\n  }", "Invalid build user name", "name = \"nix;build\""),
        ("build_user {\n    name = \"root\"\n  }", "Invalid build user name", "name = \"root\""),
        ("build_user {\n    authorized_keys = [\"ssh-ed25519 nope\"]\n  }", "Invalid public key", "authorized_keys = [\"ssh-ed25519 nope\"]"),
        ("cachix {\n    cache = \"My Cache\"\n  }", "Invalid Cachix cache name", "cache = \"My Cache\""),
        ("cachix {\n    cache = \"ok\"\n    public_key = \"ok-1:short\"\n  }", "Invalid Cachix public key", "public_key = \"ok-1:short\""),
        ("on_destroy = \"wipe\"", "Invalid on_destroy", "on_destroy = \"wipe\""),
        ("timeouts {\n    create = \"forever\"\n  }", "Invalid timeout", "create = \"forever\""),
        ("ssh {\n    port = 0\n  }", "Invalid port", "port = 0"),
        ("ssh {\n    user = \"a b\"\n  }", "Invalid SSH user", "user = \"a b\""),
        ("ssh {\n    port = 65536\n  }", "Invalid port", "port = 65536"),
        ("build_user {\n    protocol = \"ssh-ng2\"\n  }", "Invalid protocol", "protocol = \"ssh-ng2\""),
        ("build_user {\n    protocol = \"https\"\n  }", "Invalid protocol", "protocol = \"https\""),
    ];
    let mut cases: Vec<BadInput> = cases
        .iter()
        .map(|(body, summary, line)| {
            let config = bad_input_config("nixbuild_builder", proxy.port, body);
            BadInput::new(body, config, summary, line)
        })
        .collect();
    let empty_host = bad_input_config("nixbuild_builder", proxy.port, "")
        .replace("host = \"127.0.0.1\"", "host = \"\"");
    cases.push(BadInput::new(
        "empty host",
        empty_host,
        "Invalid host",
        "host = \"\"",
    ));
    assert_bad_inputs_fail_at_plan(&cases, &|| proxy.connection_count());
}

fn single_builder(host: &str, port: u16, nix: &str, on_destroy: &str) -> String {
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = {on_destroy}
  ssh {{
    port     = {port}
    host_key = {host_key}
  }}
  nix {{
    {nix}
  }}
}}

output "b" {{
  value = {{ nix_version = nixbuild_builder.b.nix_version, store_uri = nixbuild_builder.b.store_uri }}
}}
"#,
        provider = provider_config(""),
        host = hcl(host),
        on_destroy = hcl(on_destroy),
        host_key = hcl(&world().host("fresh").host_key()),
    )
}

/// The official and Determinate install paths (stand-in installers served by
/// the test nginx: the real ones download Nix from the internet) on a host
/// without Nix; then a connection cut mid-bootstrap fails the apply with a
/// clear error and the next apply converges; finally the host goes down and
/// `on_destroy = "keep"` still destroys.
#[test]
fn install_methods_cut_and_resume_and_dead_host() {
    let w = world();
    let _fresh = exclusive("fresh");
    let fresh = w.host("fresh");
    // installer_url must be https: the world's installer stand-ins, over TLS.
    let installer_files: Vec<std::path::PathBuf> = ["official", "determinate"]
        .iter()
        .map(|m| w.dir.join(format!("www/installers/{m}.sh")))
        .collect();
    let https = HttpsFiles::serve(
        &installer_files
            .iter()
            .map(|p| p.as_path())
            .collect::<Vec<_>>(),
    );
    let installer_url = |method: &str| https.url(&format!("{method}.sh"));
    let restart = hcl(&fresh.field("daemon_restart_command"));
    for version in terraform_versions() {
        // Both installer methods, each on a pristine host; the first one also
        // measures how many bytes a whole bootstrap sends back.
        let mut total_bytes = 0;
        for method in ["official", "determinate"] {
            fresh.reset();
            https.trust_on(&fresh);
            let proxy = Proxy::start(&format!("{}:22", fresh.address()));
            let tf = Tf::new(&version);
            let nix = format!(
                "install = \"{method}\"\n    installer_url = {}\n    daemon_restart_command = {restart}",
                hcl(&installer_url(method))
            );
            tf.write(&single_builder("127.0.0.1", proxy.port, &nix, "clean"));
            tf.apply();
            if total_bytes == 0 {
                // One bootstrap is one connection: what it sent back, in bytes.
                total_bytes = proxy
                    .bytes_to_client
                    .load(std::sync::atomic::Ordering::SeqCst);
            }
            tf.assert_no_changes();
            let version_out = tf.output("b")["nix_version"].clone();
            assert!(
                version_out.as_str().is_some_and(|v| v.starts_with('2')),
                "{method}: {version_out}"
            );
            let log = std::fs::read_to_string(fresh.field("installer_log")).unwrap_or_default();
            let last: serde_json::Value =
                serde_json::from_str(log.lines().last().unwrap_or("{}")).unwrap();
            let argv: Vec<&str> = last["argv"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            // fresh has no systemd: Determinate needs `--init none` there.
            let expected: &[&str] = if method == "official" {
                &["--daemon", "--yes"]
            } else {
                &["install", "linux", "--init", "none", "--no-confirm"]
            };
            assert_eq!(last["installer"], method, "{log}");
            assert_eq!(&argv[1..], expected, "{method}: installer argv");
            // No installer starts a daemon here: daemon_restart_command did.
            fresh.exec("NIX_REMOTE=daemon /nix/var/nix/profiles/default/bin/nix store ping");
            assert!(fresh
                .exec("/nix/var/nix/profiles/default/bin/nix --version")
                .contains("nix (Nix)"));
            tf.destroy();
        }

        // Multi-user without systemd and without daemon_restart_command:
        // nothing could run the daemon, so the apply fails before installing.
        fresh.reset();
        https.trust_on(&fresh);
        let tf = Tf::new(&version);
        let nix = format!(
            "install = \"official\"\n    installer_url = {}",
            hcl(&installer_url("official"))
        );
        tf.write(&single_builder(&fresh.address(), 22, &nix, "keep"));
        let log_before = std::fs::read_to_string(fresh.field("installer_log"))
            .unwrap_or_default()
            .len();
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("install Nix") && flat.contains("nix.daemon_restart_command"),
            "{text}"
        );
        assert!(flat.contains("has no systemd"), "{text}");
        assert_eq!(
            std::fs::read_to_string(fresh.field("installer_log"))
                .unwrap_or_default()
                .len(),
            log_before,
            "an installer ran"
        );
        assert!(
            !fresh
                .try_exec("test -e /nix/var/nix/profiles/default/bin/nix")
                .0
        );

        // Single-user Nix (daemon = false): `--no-daemon`, no daemon, root builds.
        fresh.reset();
        https.trust_on(&fresh);
        let tf = Tf::new(&version);
        let nix = format!(
            "install = \"official\"\n    installer_url = {}\n    daemon = false",
            hcl(&installer_url("official"))
        );
        tf.write(&single_builder(&fresh.address(), 22, &nix, "keep"));
        tf.apply();
        tf.assert_no_changes();
        let log = std::fs::read_to_string(fresh.field("installer_log")).unwrap_or_default();
        let last: serde_json::Value =
            serde_json::from_str(log.lines().last().unwrap_or("{}")).unwrap();
        assert_eq!(last["argv"][1], "--no-daemon", "{log}");
        assert!(
            !fresh
                .try_exec("NIX_REMOTE=daemon /nix/var/nix/profiles/default/bin/nix store ping")
                .0,
            "a daemon runs on a single-user install"
        );
        let built = fresh.exec(
            "/nix/var/nix/profiles/default/bin/nix-build --no-out-link -E 'derivation { name = \"single-user\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo 1 > $out\" ]; }'",
        );
        assert!(built.starts_with("/nix/store/"), "{built}");
        tf.destroy();

        // Cut every connection halfway through what a bootstrap sends.
        fresh.reset();
        https.trust_on(&fresh);
        let proxy = Proxy::start(&format!("{}:22", fresh.address()));
        proxy
            .cut_after
            .store(total_bytes / 2, std::sync::atomic::Ordering::SeqCst);
        let tf = Tf::new(&version);
        let nix = format!(
            "install = \"official\"\n    installer_url = {}\n    daemon_restart_command = {restart}",
            hcl(&installer_url("official"))
        );
        tf.write(&single_builder("127.0.0.1", proxy.port, &nix, "keep"));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("step `")
                && (flat.contains("failed") || flat.contains("connection lost")),
            "the error after a cut names no step: {text}"
        );
        assert!(
            flat.contains(&format!("127.0.0.1:{}", proxy.port)),
            "the error does not name the host: {text}"
        );
        assert!(!flat.contains("panicked"), "{text}");
        // The next apply resumes and converges.
        proxy
            .cut_after
            .store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
        tf.apply();
        tf.assert_no_changes();
        assert!(fresh
            .exec("/nix/var/nix/profiles/default/bin/nix --version")
            .contains("nix (Nix)"));

        // The host goes down: refresh warns and keeps the state, destroy (keep) works.
        proxy.stop();
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 0, "a dead host must not plan changes: {plan}");
        assert!(
            plan.contains("unreachable; keeping the last known state"),
            "{plan}"
        );
        tf.destroy();
        assert!(tf.ok(&["state", "list"]).trim().is_empty());
    }
}

/// Import by `user@host:port`: the arguments are read back from the host, so
/// the plan shows no change apart from the documented how-to arguments.
#[test]
fn import_reads_the_builder_back() {
    let w = world();
    let _h3 = exclusive("h3");
    let h3 = w.host("h3");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let (_, client_pub) = keypair(tf.dir.path(), "client");
        let config = format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = "clean"
  nix {{
    install                = "none"
    max_jobs               = 3
    extra_platforms        = ["i686-linux"]
    trusted_users          = ["deploy"]
    extra_config           = "keep-outputs = true"
    daemon_restart_command = {restart}
  }}
  build_user {{
    authorized_keys = [{client_pub}]
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&h3.address()),
            restart = hcl(&restart_command("h3")),
            client_pub = hcl(&client_pub),
        );
        tf.write(&config);
        tf.apply();
        tf.assert_no_changes();

        let imported = Tf::new(&version);
        imported.write(&config);
        imported.ok(&[
            "import",
            "-no-color",
            "nixbuild_builder.b",
            &format!("root@{}:22", h3.address()),
        ]);
        imported.ok(&["plan", "-no-color", "-out", "import.plan"]);
        let plan: serde_json::Value =
            serde_json::from_str(&imported.ok(&["show", "-json", "import.plan"])).unwrap();
        let change = &plan["resource_changes"][0]["change"];
        let (before, after) = (&change["before"], &change["after"]);
        // The documented how-to arguments, which cannot be read from a host,
        // and the drift that says the import's pin awaits an apply (the
        // refresh does not log in with a key only the import saw).
        let how_to = ["install", "daemon_restart_command", "on_destroy", "drift"];
        assert!(
            before["drift"]
                .to_string()
                .contains("host key pinned by an import"),
            "{change}"
        );
        let mut differing = Vec::new();
        diff_paths("", before, after, &mut differing);
        let unexpected: Vec<&String> = differing
            .iter()
            .filter(|p| !how_to.iter().any(|h| p.ends_with(h)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "import left differences beyond {how_to:?}: {unexpected:?}\n{change}"
        );
        assert_eq!(
            before["build_user"][0]["authorized_keys"],
            serde_json::json!([client_pub])
        );
        assert_eq!(before["nix"][0]["max_jobs"], 3);
        assert_eq!(before["host_key"], h3.host_key().as_str());
        imported.apply();
        imported.assert_no_changes();
        imported.ok(&["state", "rm", "nixbuild_builder.b"]);

        // The same by an `import {}` block (Terraform ≥ 1.5): imported and
        // updated in place (the how-to arguments) in one plan, never replaced.
        let by_block = Tf::new(&version);
        by_block.write(&format!(
            "{config}\nimport {{\n  to = nixbuild_builder.b\n  id = {}\n}}\n",
            hcl(&format!("root@{}:22", h3.address()))
        ));
        let plan = by_block.ok(&["plan", "-no-color"]);
        assert!(
            plan.contains("1 to import, 0 to add, 1 to change, 0 to destroy"),
            "{plan}"
        );
        by_block.apply();
        by_block.assert_no_changes();
        by_block.ok(&["state", "rm", "nixbuild_builder.b"]);
        tf.destroy();
    }
}

fn diff_paths(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let path = format!("{prefix}.{key}");
                if !out.contains(&path) {
                    diff_paths(
                        &path,
                        x.get(key).unwrap_or(&Value::Null),
                        y.get(key).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(&format!("{prefix}[{i}]"), p, q, out);
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// A NixOS host (its Nix config is generated by NixOS) is refused at the
/// first step of the apply, before anything on it changes.
#[test]
fn a_nixos_host_is_refused_before_any_change() {
    let w = world();
    let _h2 = exclusive("h2");
    let h2 = w.host("h2");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let (_, client_pub) = keypair(tf.dir.path(), "client");
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host = {address}
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  build_user {{
    name            = "nbnixos"
    authorized_keys = [{client_pub}]
  }}
}}
"#,
            provider = provider_config(""),
            address = hcl(&h2.address()),
            restart = hcl(&restart_command("h2")),
            client_pub = hcl(&client_pub),
        ));
        let host_side = || {
            h2.exec(
                "ls -lA --time-style=full-iso /etc/nix; sha256sum /etc/nix/*.conf; \
                 getent passwd nbnixos || echo no-user; ls /etc/nixbuild/users 2>/dev/null || true",
            )
        };
        h2.exec("touch /etc/NIXOS");
        let before = host_side();
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        h2.exec("rm -f /etc/NIXOS");
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("failed at step `probe host`") && flat.contains("this is a NixOS host"),
            "{version}: no NixOS refusal: {text}"
        );
        assert_eq!(host_side(), before, "{version}: the host changed");
        assert!(before.contains("no-user"), "{version}: {before}");
    }
}
