//! Hostile files and answers (issue 28's audit holes), on every supported
//! Terraform version, against the "hp" test host (sshd on port 2222, Nix
//! preinstalled) and the Cachix API stand-in:
//! - a root-only `nix.conf` keeps its mode, owner and group through an apply
//!   and a clean destroy;
//! - a machines file (or its companion) replaced by a symlink to a secret is
//!   drift, and the secret reaches no plan, state or log;
//! - a Cachix API answer with a newline never reaches `nix.conf`, and an
//!   `http://` API off loopback is refused;
//! - a Cachix API outage does not fail the plan of an applied builder;
//! - a build-user key the host refuses is reported as refused, even next to
//!   a good key's pooled login in the same run.

mod common;

use std::io::{Read, Write};

use common::{
    daemon_restart_command, exclusive, hcl, provider_config, terraform_versions, world, Tf,
};

const HOST: &str = "hp";

fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// Puts the host's `nix.conf` back as it was when dropped, pass or fail.
struct RestoreNixConf {
    saved: String,
}

impl RestoreNixConf {
    fn save() -> Self {
        let saved = format!("/root/nix.conf.hostile-{}", nonce());
        world()
            .host(HOST)
            .exec(&format!("cp -p /etc/nix/nix.conf {saved}"));
        Self { saved }
    }
}

impl Drop for RestoreNixConf {
    fn drop(&mut self) {
        let host = world().host(HOST);
        let _ = host.try_exec(&format!(
            "cp -p {s} /etc/nix/nix.conf && rm -f {s} /etc/nix/nixbuild.conf",
            s = self.saved
        ));
        let _ = host.try_exec(&daemon_restart_command(&host));
    }
}

/// Destroys what a failed test applied, so the shared host stays clean.
struct DestroyOnPanic<'a>(&'a Tf);

impl Drop for DestroyOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.run(&["destroy", "-auto-approve", "-no-color"]);
        }
    }
}

fn builder(provider: &str, cachix: &str) -> String {
    let hp = world().host(HOST);
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = "clean"
  ssh {{
    port     = 2222
    host_key = {host_key}
  }}
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  {cachix}
}}
"#,
        host = hcl(&hp.address()),
        host_key = hcl(&hp.host_key()),
        restart = hcl(&daemon_restart_command(&hp)),
    )
}

/// Hole 1: every apply that adds the include line, and a clean destroy that
/// removes it, rewrote `nix.conf` as 0644 root:root, so `access-tokens` in a
/// 0600 file became world-readable.
#[test]
fn a_root_only_nix_conf_stays_root_only() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let _restore = RestoreNixConf::save();
    let token = format!("github.com=ghp_hostile{}", nonce().replace('-', ""));
    for version in terraform_versions() {
        hp.exec(&format!(
            "grep -v '^access-tokens' /etc/nix/nix.conf > /etc/nix/nix.conf.new && \
             echo 'access-tokens = {token}' >> /etc/nix/nix.conf.new && \
             cat /etc/nix/nix.conf.new > /etc/nix/nix.conf && rm /etc/nix/nix.conf.new && \
             chown root:adm /etc/nix/nix.conf && chmod 0640 /etc/nix/nix.conf"
        ));
        let unreadable = |when: &str| {
            assert_eq!(
                hp.exec("stat -c '%a %U %G' /etc/nix/nix.conf"),
                "640 root adm",
                "{version}: nix.conf's mode or owner changed {when}"
            );
            let (ok, out) = hp.try_exec("runuser -u nobody -- cat /etc/nix/nix.conf");
            assert!(
                !ok && !out.contains(&token),
                "{version}: nobody can read nix.conf {when}:\n{out}"
            );
        };
        let tf = Tf::new(&version);
        let _cleanup = DestroyOnPanic(&tf);
        tf.write(&builder(&provider_config(""), ""));
        tf.apply();
        let conf = hp.exec("cat /etc/nix/nix.conf");
        assert!(
            conf.contains("include /etc/nix/nixbuild.conf") || conf.contains("nixbuild.conf"),
            "{version}: the apply added no include line:\n{conf}"
        );
        assert!(conf.contains(&token), "{version}: the user's line is gone");
        unreadable("after the apply");
        tf.destroy();
        let conf = hp.exec("cat /etc/nix/nix.conf");
        assert!(
            !conf.contains("nixbuild.conf") && conf.contains(&token),
            "{version}: the clean destroy left the include line or lost the user's line:\n{conf}"
        );
        unreadable("after the clean destroy");
    }
}

/// Runs a command on the host when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = world().host(HOST).try_exec(&self.0);
    }
}

/// Hole 2: a machines file (or its `.known_hosts` companion) swapped for a
/// symlink to a root-only secret by whoever can write its directory: the
/// refresh ran `cat` as root, so the secret went into the plan, the state and
/// the INFO log. Now the link is drift, never followed; the apply replaces
/// the link (not the secret) with the file.
#[test]
fn a_machines_file_symlink_is_drift_never_read() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let h1 = world().host("h1");
    for version in terraform_versions() {
        let id = nonce();
        let dir = format!("/home/hostile-{id}");
        let file = format!("{dir}/machines");
        let secret_file = format!("/root/hostile-secret-{id}");
        let secret = format!("SECRET-{}", id.replace('-', ""));
        hp.exec(&format!(
            "mkdir -p {dir} && echo 'CACHIX_AUTH_TOKEN={secret}' > {secret_file} && chmod 600 {secret_file}"
        ));
        let mut tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_machines_file" "m" {{
  target {{
    host = {host}
    path = {file}
    ssh {{
      port     = 2222
      host_key = {host_key}
    }}
  }}
  machine {{
    uri             = "ssh-ng://root@{h1}"
    systems         = ["x86_64-linux"]
    public_host_key = {h1_key}
    known_hosts     = {known}
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&hp.address()),
            file = hcl(&file),
            host_key = hcl(&hp.host_key()),
            h1 = h1.address(),
            h1_key = hcl(&base64_of(&h1.host_key())),
            known = hcl(&format!("{} {}", h1.address(), h1.host_key())),
        ));
        tf.apply();
        // Whatever happens, the host loses the test's directory and secret.
        let _cleanup = Cleanup(format!("rm -rf {dir} {secret_file}"));
        tf.assert_no_changes();
        let companion = hp.exec(&format!("ls {dir} | grep -v '^machines$' | head -1"));
        assert!(
            !companion.is_empty(),
            "{version}: no companion file was written"
        );
        for linked in ["machines".to_string(), companion.clone()] {
            let path = format!("{dir}/{linked}");
            let before = hp.exec(&format!("cat {path}"));
            hp.exec(&format!("rm -f {path} && ln -s {secret_file} {path}"));
            let log = tf.dir.path().join(format!("tf-{linked}.log"));
            tf.env("TF_LOG", "info");
            tf.env("TF_LOG_PATH", log.to_str().unwrap());
            let args = [
                "plan",
                "-detailed-exitcode",
                "-no-color",
                "-out=linked.plan",
            ];
            let out = tf.run(&args);
            let text = tf.describe(&args, &out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{version}: a symlink at {linked} is no planned change: {text}"
            );
            let shown = tf.ok(&["show", "-json", "linked.plan"]);
            tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            for (what, haystack) in [
                ("plan output", &text),
                ("show -json", &shown),
                ("state", &tf.state_text()),
                ("TF_LOG=info log", &logged),
            ] {
                assert!(
                    !haystack.contains(&secret),
                    "{version}: the secret behind the {linked} symlink is in the {what}"
                );
            }
            assert!(
                logged.contains("symbolic link"),
                "{version}: the log does not say {linked} is a symbolic link"
            );
            tf.env("TF_LOG", "");
            tf.env("TF_LOG_PATH", "");
            tf.apply();
            assert_eq!(
                hp.exec(&format!("test -L {path} && echo link || cat {path}")),
                before,
                "{version}: the apply did not put {linked} back"
            );
            assert_eq!(
                hp.exec(&format!("cat {secret_file}")),
                format!("CACHIX_AUTH_TOKEN={secret}"),
                "{version}: the secret file changed"
            );
            tf.assert_no_changes();
        }
        tf.destroy();
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{text}\n"))
}

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn api_url() -> String {
    world().json["cachix_api"]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Serve `cache` from the Cachix API stand-in (it re-reads its cache files
/// on every request); removed when dropped.
struct StandinCache {
    path: std::path::PathBuf,
}

impl StandinCache {
    fn serve(name: &str, uri: &str, key: &str) -> Self {
        let path = world()
            .dir
            .join("cachix-api/caches")
            .join(format!("{name}.json"));
        let json = serde_json::json!({
            "name": name, "uri": uri, "isPublic": true,
            "publicSigningKeys": [key], "githubUsername": "", "permission": "Read",
        });
        std::fs::write(&path, json.to_string()).unwrap();
        Self { path }
    }
}

impl Drop for StandinCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn cachix_provider(api: &str) -> String {
    provider_config(&format!("cachix {{\n    api_url = {}\n  }}", hcl(api)))
}

/// Hole 3: the API's `uri` and first key went verbatim into root's
/// `nix.conf`; a newline there added any setting.
#[test]
fn hostile_cachix_answers_never_reach_nix_conf() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let _restore = RestoreNixConf::save();
    let good_key = world().json["cachix_api"]["caches"]["public-cache"]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let good_uri = world().json["cachix_api"]["caches"]["public-cache"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let _cleanup = DestroyOnPanic(&tf);
        for (what, uri, key) in [
            (
                "uri",
                format!("{good_uri}\ntrusted-users = *"),
                good_key.clone(),
            ),
            (
                "key",
                good_uri.clone(),
                format!("{good_key}\ntrusted-users = *"),
            ),
        ] {
            let name = format!("hostile-{what}-{}", nonce());
            let _cache = StandinCache::serve(&name, &uri, &key);
            tf.write(&builder(
                &cachix_provider(&api_url()),
                &format!("cachix {{\n    cache = {}\n  }}", hcl(&name)),
            ));
            for command in [
                vec!["plan", "-no-color"],
                vec!["apply", "-auto-approve", "-no-color"],
            ] {
                let out = flat(&tf.fails(&command));
                assert!(
                    out.contains(&name) && out.contains("Cachix API"),
                    "{version}: {} with a hostile {what} does not name the cache: {out}",
                    command[0]
                );
            }
            let conf =
                hp.exec("cat /etc/nix/nix.conf; cat /etc/nix/nixbuild.conf 2>/dev/null || true");
            assert!(
                !conf.contains("trusted-users = *"),
                "{version}: the hostile {what} reached nix.conf:\n{conf}"
            );
        }
        // The Bearer token would travel in clear.
        tf.write(&builder(
            &cachix_provider("http://192.0.2.1/api/v1"),
            "cachix {\n    cache = \"public-cache\"\n  }",
        ));
        let out = flat(&tf.fails(&["plan", "-no-color"]));
        assert!(
            out.contains("api_url") && out.contains("https"),
            "{version}: an http:// Cachix API off loopback was accepted: {out}"
        );
    }
}

/// A local HTTP server answering 502 to everything (a Cachix API outage).
struct BadGateway {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl BadGateway {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (stopped, counted) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = stream.set_nonblocking(false);
                        let _ =
                            stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf);
                        let body = "bad gateway\n";
                        let _ = write!(
                            stream,
                            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self {
            url,
            stop,
            requests,
        }
    }
}

impl Drop for BadGateway {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Hole 4: with the API down, a builder applied before plans with the key
/// and URI it applied (and warns); only a create with nothing known fails.
#[test]
fn a_cachix_outage_does_not_fail_the_plan_of_an_applied_builder() {
    let _host = exclusive(HOST);
    let _restore = RestoreNixConf::save();
    let cache = world().json["cachix_api"]["caches"]["public-cache"].clone();
    let outage = BadGateway::start();
    for version in terraform_versions() {
        let name = format!("outage-{}", nonce());
        let served = StandinCache::serve(
            &name,
            cache["uri"].as_str().unwrap(),
            cache["public_key"].as_str().unwrap(),
        );
        let block = format!("cachix {{\n    cache = {}\n  }}", hcl(&name));
        let tf = Tf::new(&version);
        let _cleanup = DestroyOnPanic(&tf);
        tf.write(&builder(&cachix_provider(&api_url()), &block));
        tf.apply();
        tf.assert_no_changes();

        tf.write(&builder(&cachix_provider(&outage.url), &block));
        let asked = outage.requests.load(std::sync::atomic::Ordering::Relaxed);
        let (code, text) = tf.plan_exit_code();
        assert_eq!(
            code, 0,
            "{version}: an API outage changed or failed the plan: {text}"
        );
        assert!(
            outage.requests.load(std::sync::atomic::Ordering::Relaxed) > asked,
            "{version}: the plan did not ask the API"
        );
        let text = flat(&text);
        assert!(
            text.contains("Warning") && text.contains(&name) && text.contains("502"),
            "{version}: no warning names the cache and the outage: {text}"
        );

        // A create knows nothing yet: it fails, naming the cache.
        let fresh = Tf::new(&version);
        fresh.write(&builder(&cachix_provider(&outage.url), &block));
        let out = flat(&fresh.fails(&["plan", "-no-color"]));
        assert!(
            out.contains(&name) && out.contains("502"),
            "{version}: the create's error does not name the cache and the outage: {out}"
        );
        // Issue 26, item 5: and says how to plan without the API.
        assert!(
            out.contains("Set `cachix.public_key`") && out.contains(": cache = "),
            "{version}: the error does not point at cachix.public_key: {out}"
        );

        tf.write(&builder(&cachix_provider(&api_url()), &block));
        tf.destroy();
        drop(served);
    }
}

/// `ssh-keygen -lf`'s SHA256 fingerprint of the public key in `pub_file`.
fn fingerprint(pub_file: &str) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", pub_file])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Issue 28, "pool slots ignore which credentials opened them": two status
/// data sources read one builder in one run, one with the build user's key,
/// the other with a key its `authorized_keys` does not hold. The second got
/// the first one's pooled connection and reported `build_user_can_login =
/// true` without sshd ever seeing its key. Its `problems` also ended with a
/// resource's advice ("Drift cannot be checked…"), as did an unreachable
/// host's.
#[test]
fn a_refused_client_key_never_rides_on_another_keys_login() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let user = format!("nbpool{}", &nonce().replace('-', "")[..8]);
    let dir = tempfile::tempdir().unwrap();
    let (good, good_pub) = common::keypair(dir.path(), "good");
    let (bad, _) = common::keypair(dir.path(), "bad");
    hp.exec(&format!(
        "useradd -m -s /bin/sh -G nix-users -p '*' {user} && mkdir -m 700 /home/{user}/.ssh && \
         echo {pub_line} > /home/{user}/.ssh/authorized_keys && \
         chmod 600 /home/{user}/.ssh/authorized_keys && chown -R {user}: /home/{user}/.ssh",
        pub_line = hcl(&good_pub).replace('"', "'"),
    ));
    let _gone = Cleanup(format!("userdel -r {user}"));
    let bad_fingerprint = fingerprint(&format!("{bad}.pub"));
    let status = |name: &str, host: &str, port: u16, key: &str| {
        format!(
            r#"
data "nixbuild_builder_status" "{name}" {{
  host = {host}
  ssh {{
    port     = {port}
    host_key = {host_key}
  }}
  build_user {{
    name             = {user}
    private_key_file = {key}
  }}
}}

output "{name}" {{
  value = {{
    healthy              = data.nixbuild_builder_status.{name}.healthy
    build_user_can_login = data.nixbuild_builder_status.{name}.build_user_can_login
    problems             = data.nixbuild_builder_status.{name}.problems
  }}
}}
"#,
            host_key = hcl(&hp.host_key()),
            user = hcl(&user),
            key = hcl(key),
        )
    };
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        // The refused key is read after the accepted one (it takes its
        // host from it), while that login is still pooled.
        // Nothing listens on `dead`: its report names the cause alone.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        tf.write(&format!(
            "{}{}{}{}",
            provider_config(""),
            status("good", &hcl(&hp.address()), 2222, &good),
            status("bad", "data.nixbuild_builder_status.good.host", 2222, &bad),
            status("dead", "\"127.0.0.1\"", dead, &good),
        ));
        let window = hp.sshd_log().len();
        tf.apply();
        let (good, bad) = (tf.output("good"), tf.output("bad"));
        assert_eq!(good["build_user_can_login"], true, "{version}: {good}");
        assert_eq!(good["healthy"], true, "{version}: {good}");
        assert_eq!(bad["build_user_can_login"], false, "{version}: {bad}");
        assert_eq!(bad["healthy"], false, "{version}: {bad}");
        let problems = bad["problems"].to_string();
        assert!(
            problems.contains("cannot log in") && !problems.contains("Drift"),
            "{version}: {problems}"
        );
        let dead = tf.output("dead");
        assert_eq!(dead["healthy"], false, "{version}: {dead}");
        let problems = dead["problems"].to_string();
        assert!(
            problems.contains("unreachable:") && !problems.contains("Drift"),
            "{version}: {problems}"
        );
        let log = hp.sshd_log()[window..].to_string();
        assert!(
            log.contains(&bad_fingerprint),
            "{version}: sshd never saw the refused key {bad_fingerprint}:\n{log}"
        );
    }
}
