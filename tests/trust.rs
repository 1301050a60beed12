//! Acceptance tests of host-key trust and of refresh behaviour, on every
//! supported Terraform version: the pin survives a re-push and a failed
//! create, a re-installed host can be re-keyed, an explicit ECDSA or RSA key
//! is what the connection negotiates, a bastion may be its own target, an
//! import is checked against `ssh.host_key` (before any login), a bastion's
//! key is pinned in state (machines file and cache proxy), a host whose key
//! type changed is the host-key error at once, and a dead host's refresh
//! warns quickly whatever `connect_timeout` says, and a plan never trusts a
//! host key on first use.
//!
//! "Another host at the same address" is a second sshd started by the test
//! inside a test host's namespace, with host keys of its own (same users,
//! same Nix: to the provider, the host re-installed), reached through a TCP
//! switch on 127.0.0.1 that the test points at one sshd or the other. That
//! sshd's log belongs to the test alone, so "no login happened" is read
//! from the host's side.

mod common;
use common::daemon_restart_command;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{exclusive, hcl, provider_config, terraform_versions, world, Tf};

/// A second sshd inside test host `host`'s mount namespace, on `port` of the
/// host's address, with fresh host keys of the given types
/// (`ssh-keygen -t`). Killed when dropped.
struct SecondSshd {
    child: Child,
    address: String,
    port: u16,
    /// Public key line (`type base64`) per `ssh-keygen -t` type.
    keys: BTreeMap<String, String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SecondSshd {
    fn start(host: &str, port: u16, types: &[&str]) -> Self {
        let h = world().host(host);
        // /tmp is not among the directories a test host replaces, so the
        // host's sshd sees these files at the same path.
        let dir = tempfile::Builder::new()
            .prefix("nixbuild-trust-sshd-")
            .tempdir_in("/tmp")
            .unwrap();
        let mut keys = BTreeMap::new();
        let mut host_key_lines = String::new();
        for kind in types {
            let path = dir.path().join(format!("host_{kind}"));
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-C", "reinstalled", "-f"])
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen -t {kind}");
            let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
            let line: Vec<&str> = public.split_whitespace().take(2).collect();
            keys.insert(kind.to_string(), line.join(" "));
            host_key_lines.push_str(&format!("HostKey {}\n", path.display()));
        }
        let base = h.exec("cat /etc/ssh/sshd_config");
        let mut config: String = base
            .lines()
            .filter(|l| {
                let word = l.split_whitespace().next().unwrap_or_default();
                !matches!(word, "ListenAddress" | "HostKey" | "PidFile")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        config.push_str(&format!(
            "ListenAddress {}:{port}\nPidFile none\n{host_key_lines}",
            h.address()
        ));
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("sshd.log");
        let child = Command::new(world().script("host-exec.sh"))
            .arg(host)
            .args(["/usr/sbin/sshd", "-D", "-f"])
            .arg(&config_path)
            .arg("-E")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sshd = Self {
            child,
            address: h.address(),
            port,
            keys,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        while TcpStream::connect((sshd.address.as_str(), port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the second sshd on {host}:{port} did not start: {}",
                sshd.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sshd
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    fn key(&self, kind: &str) -> String {
        self.keys[kind].clone()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Successful logins so far (sshd `LogLevel VERBOSE`).
    fn logins(&self) -> usize {
        self.log_text().matches("Accepted publickey").count()
    }

    /// TCP connections so far.
    fn connections(&self) -> usize {
        self.log_text().matches("Connection from").count()
    }
}

impl Drop for SecondSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the switch does with a new connection.
#[derive(Clone)]
enum Mode {
    Forward(String),
    /// Accept and close at once: a host whose sshd is gone.
    Close,
    /// Accept and never answer: a host that hangs.
    Silent,
}

/// A TCP switch on 127.0.0.1: the "same address" whose host the test swaps.
/// Counts the connections it accepts.
struct Switch {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<AtomicU64>,
}

impl Switch {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let accepted = Arc::new(AtomicU64::new(0));
        let (m, count) = (mode.clone(), accepted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let mode = m.lock().unwrap().clone();
                match mode {
                    Mode::Close => drop(client),
                    Mode::Silent => {
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(120));
                            drop(client);
                        });
                    }
                    Mode::Forward(target) => {
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                }
            }
        });
        Self {
            port,
            mode,
            accepted,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

fn forward_to(host: &str) -> Mode {
    Mode::Forward(format!("{}:22", world().host(host).address()))
}

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The host-key error, as every resource and data source reports it.
fn assert_host_key_error(text: &str) {
    let flat = flat(text);
    assert!(
        flat.contains("Host key of") && flat.contains("host key mismatch"),
        "expected the host-key error: {text}"
    );
    assert!(
        flat.contains("Nothing was run on the host")
            || flat.contains("nothing was run on the host"),
        "{text}"
    );
}

/// Length of a log now, to read only what this run adds ("the window").
/// A plan that fails with the host-key error, and did so without logging in
/// to `host` with the import's pin (sshd accepted no key during it).
fn plan_stops_before_any_login(tf: &Tf, host: &common::Host) {
    let sshd_window = window_start(&host.sshd_log());
    let text = tf.fails(&["plan", "-no-color"]);
    assert_host_key_error(&text);
    let window = host.sshd_log()[sshd_window..].to_string();
    assert!(
        !window.contains("Accepted publickey"),
        "{}: the plan logged in with the import's pin: {window}",
        tf.version
    );
}

fn window_start(text: &str) -> usize {
    text.len()
}

fn restart_command(host: &str) -> String {
    daemon_restart_command(&world().host(host))
}

/// A copy of the cache_push fixture flake in `tf`'s directory, salted so that
/// its outputs are new to the cache.
fn fresh_flake(tf: &Tf, version: &str) -> PathBuf {
    let flake = tf.dir.path().join("flake");
    std::fs::create_dir_all(&flake).unwrap();
    let fixture = common::repo_root().join("tests/fixtures/cache_push/flake");
    for name in ["flake.nix", "message.txt"] {
        std::fs::copy(fixture.join(name), flake.join(name)).unwrap();
    }
    let salt = format!(
        "trust-{version}-{}-{:?}",
        std::process::id(),
        Instant::now()
    );
    std::fs::write(flake.join("salt.txt"), salt).unwrap();
    flake
}

/// Row 1: a re-push of a `nixbuild_cache_push` on the same host (changed
/// `triggers`) is an in-place update that keeps the pinned key: once the
/// host presents another key, the apply fails before any login.
#[test]
fn cache_push_repush_keeps_the_pin() {
    let _h2 = exclusive("h2");
    let reinstalled = SecondSshd::start("h2", 2211, &["ed25519"]);
    for version in terraform_versions() {
        let switch = Switch::start(forward_to("h2"));
        let tf = Tf::new(&version);
        let flake = fresh_flake(&tf, &version);
        let config = |n: u32| {
            format!(
                r#"{provider}
resource "nixbuild_cache_push" "p" {{
  host         = "127.0.0.1"
  source       = {flake}
  installables = ["dep"]
  triggers     = {{ n = "{n}" }}
  ssh {{
    port = {port}
  }}
  store {{
    uri = {cache}
  }}
}}

output "p" {{
  value = {{ host_key = nixbuild_cache_push.p.host_key, pushed = nixbuild_cache_push.p.pushed_paths }}
}}
"#,
                provider = provider_config(""),
                flake = hcl(flake.to_str().unwrap()),
                port = switch.port,
                cache = hcl(world().json["cache"]["url"].as_str().unwrap()),
            )
        };
        tf.write(&config(1));
        tf.apply();
        tf.assert_no_changes();
        let h2_key = world().host("h2").host_key();
        assert_eq!(tf.output("p")["host_key"], h2_key.as_str());

        // The builder is re-installed (another key); a new trigger asks for a push.
        switch.set(Mode::Forward(reinstalled.endpoint()));
        tf.write(&config(2));
        let (logins, connections) = (reinstalled.logins(), reinstalled.connections());
        // The plan evaluates the installables with the pinned key: the
        // host-key error comes already at plan time, never a replacement.
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 1, "{plan}");
        assert_host_key_error(&plan);
        assert!(!plan.contains("must be replaced"), "{plan}");
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert_host_key_error(&text);
        assert!(
            reinstalled.connections() > connections,
            "the provider never reached the re-installed host: {text}"
        );
        assert_eq!(
            reinstalled.logins(),
            logins,
            "logged in to a host with another key:\n{}",
            reinstalled.log_text()
        );

        // The real builder is back: the re-push goes through, nothing new to upload.
        switch.set(forward_to("h2"));
        tf.apply();
        assert_eq!(tf.output("p")["pushed"], 0);
        assert_eq!(tf.output("p")["host_key"], h2_key.as_str());
        tf.assert_no_changes();
        tf.destroy();
    }
}

fn rekey_builder_config(port: u16, host_key: Option<&str>, on_destroy: &str) -> String {
    let host_key = host_key
        .map(|k| format!("    host_key = {}\n", hcl(k)))
        .unwrap_or_default();
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = "127.0.0.1"
  on_destroy = "{on_destroy}"
  ssh {{
    port = {port}
{host_key}  }}
  nix {{
    install                = "none"
    # The background child keeps the session's output open: the apply must
    # not wait for it.
    daemon_restart_command = {restart}
  }}
  build_user {{
    name = "nbtrust"
  }}
}}

output "host_key" {{
  value = nixbuild_builder.b.host_key
}}
"#,
        provider = provider_config(""),
        restart = hcl(&format!("{}; sleep 300 &", restart_command("h1"))),
    )
}

/// Row 3: a re-installed builder at the same address is re-keyed by setting
/// its new key in `ssh.host_key` and applying with `-refresh=false`: an
/// in-place update, with either `on_destroy`. Until then, refresh fails with
/// the host-key error and nothing logs in to the new host.
#[test]
fn rekey_a_reinstalled_builder() {
    let _h1 = exclusive("h1");
    let reinstalled = SecondSshd::start("h1", 2212, &["ed25519"]);
    let new_key = reinstalled.key("ed25519");
    for version in terraform_versions() {
        for on_destroy in ["keep", "clean"] {
            let switch = Switch::start(forward_to("h1"));
            let tf = Tf::new(&version);
            tf.write(&rekey_builder_config(switch.port, None, on_destroy));
            let started = Instant::now();
            let out = tf
                .run_within(
                    &["apply", "-auto-approve", "-no-color"],
                    Duration::from_secs(150),
                )
                .expect("the apply hung on a backgrounded daemon_restart_command");
            assert!(out.status.success(), "{}", tf.describe(&["apply"], &out));
            eprintln!(
                "[timing] create with a backgrounded restart command: {:.1}s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(
                tf.output("host_key"),
                world().host("h1").host_key().as_str()
            );

            switch.set(Mode::Forward(reinstalled.endpoint()));
            let logins = reinstalled.logins();
            let (code, plan) = tf.plan_exit_code();
            assert_eq!(code, 1, "{plan}");
            assert_host_key_error(&plan);
            assert!(flat(&plan).contains("-refresh=false"), "{plan}");
            assert_eq!(reinstalled.logins(), logins, "{}", reinstalled.log_text());

            // The documented re-key: the new key in ssh.host_key, apply without refresh.
            tf.write(&rekey_builder_config(
                switch.port,
                Some(&new_key),
                on_destroy,
            ));
            let plan = tf.ok(&["plan", "-refresh=false", "-no-color"]);
            assert!(plan.contains("update in-place"), "{plan}");
            assert!(!plan.contains("must be replaced"), "{plan}");
            tf.ok(&["apply", "-refresh=false", "-auto-approve", "-no-color"]);
            assert!(reinstalled.logins() > logins, "the re-key never logged in");
            assert_eq!(tf.output("host_key"), new_key.as_str());
            tf.assert_no_changes();

            if on_destroy == "keep" {
                // Tidy the shared host through the provider: clean on destroy.
                tf.write(&rekey_builder_config(switch.port, Some(&new_key), "clean"));
                tf.apply();
                tf.assert_no_changes();
            }
            tf.destroy();
            assert!(
                !world().host("h1").try_exec("id nbtrust").0,
                "clean left the build user on the re-keyed host"
            );
        }
    }
}

/// Row 4: an explicit ECDSA or RSA `host_key` works on a host that also has
/// an ed25519 key (the connection asks for exactly that key's algorithm);
/// an ECDSA key the host does not hold is refused before any login.
#[test]
fn explicit_ecdsa_and_rsa_host_keys_on_a_host_with_several() {
    let sshd = SecondSshd::start("bare", 2213, &["ed25519", "ecdsa", "rsa"]);
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_ecdsa = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let source = |name: &str, key: &str| {
        format!(
            r#"
data "nixbuild_host" "{name}" {{
  host = {host}
  ssh {{
    port     = {port}
    host_key = {key}
  }}
}}
output "{name}" {{
  value = data.nixbuild_host.{name}.host_key
}}
"#,
            host = hcl(&sshd.address),
            port = sshd.port,
            key = hcl(key.trim()),
        )
    };
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        let mut config = provider_config("");
        for kind in ["ed25519", "ecdsa", "rsa"] {
            config.push_str(&source(kind, &sshd.key(kind)));
        }
        tf.write(&config);
        let logins = sshd.logins();
        tf.apply();
        for kind in ["ed25519", "ecdsa", "rsa"] {
            assert_eq!(tf.output(kind), sshd.key(kind).as_str(), "{kind}");
        }
        assert!(sshd.logins() >= logins + 3, "{}", sshd.log_text());
        tf.destroy();

        let wrong = Tf::new(&version);
        wrong.write(&format!(
            "{}{}",
            provider_config(""),
            source("wrong", &other_ecdsa)
        ));
        let logins = sshd.logins();
        let text = wrong.fails(&["plan", "-no-color"]);
        assert_host_key_error(&text);
        assert!(flat(&text).contains("ecdsa-sha2-nistp256"), "{text}");
        assert_eq!(sshd.logins(), logins, "{}", sshd.log_text());
    }
}

/// Issue 28, hole 7: a host whose key type changed (the pinned algorithm is
/// no longer offered, e.g. re-installed with only ECDSA and RSA keys) is the
/// host-key error with the re-key advice, at once: it was "unreachable", a
/// warning on refresh and `connect_timeout` of retries otherwise.
#[test]
fn a_changed_key_type_is_the_host_key_error_at_once() {
    let sshd = SecondSshd::start("bare", 2216, &["ecdsa", "rsa"]);
    let pinned_ed25519 = world().host("h1").host_key();
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
data "nixbuild_host" "h" {{
  host = {host}
  ssh {{
    port     = {port}
    host_key = {key}
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&sshd.address),
            port = sshd.port,
            key = hcl(&pinned_ed25519),
        ));
        let logins = sshd.logins();
        let started = Instant::now();
        let text = tf.fails(&["plan", "-no-color"]);
        let seconds = started.elapsed().as_secs_f64();
        assert_host_key_error(&text);
        let text = flat(&text);
        assert!(
            text.contains("ssh-ed25519") && text.contains("re-installed"),
            "{version}: the error does not name the pinned type or give the re-key advice: {text}"
        );
        assert!(
            seconds < 10.0,
            "{version}: the host-key error came after {seconds:.1}s (retried): {text}"
        );
        assert_eq!(sshd.logins(), logins, "{}", sshd.log_text());
    }
}

/// Row 5: a provider-level bastion that is also the target of a data source
/// does not hang; another host through the same bastion still works.
#[test]
fn bastion_that_is_also_the_target() {
    // The import test reads h3's sshd log for logins.
    let _h3 = exclusive("h3");
    let h1 = world().host("h1");
    let h3 = world().host("h3");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
data "nixbuild_host" "bastion" {{
  host = {h1}
}}
data "nixbuild_host" "behind" {{
  host = {h3}
  ssh {{
    host_key = {h3_key}
  }}
}}
output "keys" {{
  value = [data.nixbuild_host.bastion.host_key, data.nixbuild_host.behind.host_key]
}}
"#,
            provider = provider_config("").replace(
                "connect_timeout  = \"20s\"",
                &format!(
                    "connect_timeout  = \"20s\"\n    bastion_host     = {}",
                    hcl(&h1.address())
                )
            ),
            h1 = hcl(&h1.address()),
            h3 = hcl(&h3.address()),
            h3_key = hcl(&h3.host_key()),
        ));
        let out = tf
            .run_within(
                &["apply", "-auto-approve", "-no-color"],
                Duration::from_secs(90),
            )
            .expect("the plan hung with a bastion that is also the target");
        assert!(out.status.success(), "{}", tf.describe(&["apply"], &out));
        assert_eq!(
            tf.output("keys"),
            serde_json::json!([h1.host_key(), h3.host_key()])
        );
        tf.destroy();
    }
}

/// A machines file on `h1`, written through the bastion at 127.0.0.1:`port`
/// (`bastion_key`: the configured `ssh.bastion_host_key`, if any).
fn bastion_pin_config(port: u16, path: &str, bastion_key: Option<&str>) -> String {
    let h1 = world().host("h1");
    let key_line = bastion_key
        .map(|k| format!("bastion_host_key = {}", hcl(k)))
        .unwrap_or_default();
    format!(
        r#"{provider}
resource "nixbuild_machines_file" "m" {{
  target {{
    host = {h1}
    path = {path}
    ssh {{
      bastion_host = "127.0.0.1"
      bastion_port = {port}
      {key_line}
    }}
  }}
  machine {{
    uri     = "ssh-ng://root@{h1_address}"
    systems = ["x86_64-linux"]
  }}
}}

output "keys" {{
  value = {{
    target  = nixbuild_machines_file.m.target_host_key
    bastion = nixbuild_machines_file.m.target_bastion_host_key
  }}
}}
"#,
        provider = provider_config(""),
        h1 = hcl(&h1.address()),
        h1_address = h1.address(),
        path = hcl(path),
    )
}

/// One Terraform version's bastion-pin session for a resource whose
/// configuration `config(bastion_port, bastion_key)` outputs `keys` (`target`,
/// `bastion`): apply through h2 as bastion, then the bastion is re-installed
/// (`reinstalled`, another key): the refresh fails with the host-key error
/// naming the bastion and never logs in to it; naming the new key in
/// `ssh.bastion_host_key` re-keys it. Ends destroyed.
fn bastion_pin_session(
    version: &str,
    reinstalled: &SecondSshd,
    target_key: &str,
    config: &dyn Fn(u16, Option<&str>) -> String,
) {
    let switch = Switch::start(forward_to("h2"));
    let tf = Tf::new(version);
    tf.write(&config(switch.port, None));
    tf.apply();
    let keys = tf.output("keys");
    assert_eq!(keys["target"], target_key);
    assert_eq!(keys["bastion"], world().host("h2").host_key().as_str());
    tf.assert_no_changes();

    switch.set(Mode::Forward(reinstalled.endpoint()));
    let (logins, connections) = (reinstalled.logins(), reinstalled.connections());
    let text = tf.fails(&["plan", "-no-color"]);
    assert_host_key_error(&text);
    assert!(
        flat(&text).contains(&format!("127.0.0.1:{}", switch.port)),
        "{text}"
    );
    assert!(flat(&text).contains("ssh.bastion_host_key"), "{text}");
    assert!(reinstalled.connections() > connections, "{text}");
    assert_eq!(
        reinstalled.logins(),
        logins,
        "logged in to a bastion with another key:\n{}",
        reinstalled.log_text()
    );

    // Re-key, as the security guide says: the configuration names the
    // bastion's new key, applied without the refresh that checks the old pin.
    let new_key = reinstalled.key("ed25519");
    tf.write(&config(switch.port, Some(&new_key)));
    tf.ok(&["apply", "-auto-approve", "-refresh=false", "-no-color"]);
    assert_eq!(tf.output("keys")["bastion"], new_key.as_str());
    assert!(reinstalled.logins() > logins);
    tf.assert_no_changes();
    tf.destroy();
}

/// The bastion's key is pinned in state like the target's (here a remote
/// machines file's): see [`bastion_pin_session`].
#[test]
fn bastion_pin_is_kept_in_state() {
    let _h2 = exclusive("h2");
    let reinstalled = SecondSshd::start("h2", 2212, &["ed25519"]);
    let h1 = world().host("h1");
    for version in terraform_versions() {
        let path = format!("/tmp/nixbuild-bastion-pin-{version}-{}", std::process::id());
        bastion_pin_session(&version, &reinstalled, &h1.host_key(), &|port, key| {
            bastion_pin_config(port, &path, key)
        });
        assert_eq!(
            h1.exec(&format!("test -e {path} && echo present || echo gone")),
            "gone"
        );
    }
}

/// A cache proxy on the systemd host sd, reached through the bastion at
/// 127.0.0.1:`port` (`bastion_key`: the configured `ssh.bastion_host_key`).
fn proxy_bastion_pin_config(port: u16, listen: u16, bastion_key: Option<&str>) -> String {
    let sd = world().host("sd");
    let key_line = bastion_key
        .map(|k| format!("bastion_host_key = {}", hcl(k)))
        .unwrap_or_default();
    format!(
        r#"{provider}
resource "nixbuild_cache_proxy" "p" {{
  host       = {sd}
  listen     = "{sd_address}:{listen}"
  on_destroy = "clean"
  ssh {{
    bastion_host = "127.0.0.1"
    bastion_port = {port}
    {key_line}
  }}
  upstream {{
    url = "http://127.0.0.1:1"
  }}
}}

output "keys" {{
  value = {{
    target  = nixbuild_cache_proxy.p.host_key
    bastion = nixbuild_cache_proxy.p.bastion_host_key
  }}
}}
"#,
        provider = provider_config(""),
        sd = hcl(&sd.address()),
        sd_address = sd.address(),
    )
}

/// `nixbuild_cache_proxy` keeps its bastion's key in state like the other
/// resources: see [`bastion_pin_session`].
#[test]
fn cache_proxy_bastion_pin_is_kept_in_state() {
    let _h2 = exclusive("h2");
    let _sd = exclusive("sd");
    let reinstalled = SecondSshd::start("h2", 2213, &["ed25519"]);
    let sd = world().host("sd");
    for version in terraform_versions() {
        let listen = TcpListener::bind((sd.address().as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        bastion_pin_session(&version, &reinstalled, &sd.host_key(), &|port, key| {
            proxy_bastion_pin_config(port, listen, key)
        });
        assert_eq!(
            sd.exec("test -e /etc/systemd/system/nixbuild-cache-proxy.service && echo left || echo gone"),
            "gone"
        );
    }
}

fn import_config(host_key: &str) -> String {
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host = {host}
  ssh {{
    host_key = {host_key}
  }}
  nix {{
    install = "none"
  }}
  build_user {{
    name = "nbtrust"
  }}
}}
"#,
        provider = provider_config(""),
        host = hcl(&world().host("h3").address()),
        host_key = hcl(host_key),
    )
}

/// Row 6: an import ID may carry the expected host key (a differing key
/// fails the import before any login); without it the first key seen is
/// pinned, and a configuration whose `ssh.host_key` differs fails the plan
/// and the apply with the host-key error, before anything changes.
#[test]
fn import_checks_the_host_key() {
    let _h3 = exclusive("h3");
    let h3 = world().host("h3");
    let other_key = world().host("h2").host_key();
    let id = format!("root@{}:22", h3.address());
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&import_config(&other_key));
        let sshd_window = window_start(&h3.sshd_log());
        let text = tf.fails(&[
            "import",
            "-no-color",
            "nixbuild_builder.b",
            &format!("{id} {other_key}"),
        ]);
        assert_host_key_error(&text);
        let window = h3.sshd_log()[sshd_window..].to_string();
        assert!(!window.contains("Accepted publickey"), "{window}");
        let listed = tf.run(&["state", "list"]);
        assert!(!String::from_utf8_lossy(&listed.stdout).contains("nixbuild_builder"));

        // Without a key in the ID: the first key seen is pinned...
        tf.ok(&["import", "-no-color", "nixbuild_builder.b", &id]);
        let state: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let attrs = &state["values"]["root_module"]["resources"][0]["values"];
        assert_eq!(attrs["host_key"], h3.host_key().as_str(), "{state}");
        // ...and a configuration expecting another key stops the plan and the
        // apply, before any login: the refresh does not log in with a key
        // only the import saw (issue 28: sshd counted one more accepted login).
        let commands_window = window_start(&h3.commands_log());
        plan_stops_before_any_login(&tf, &h3);
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert_host_key_error(&text);
        let commands = h3.commands_log()[commands_window..].to_string();
        assert!(
            !commands.contains("useradd") && !commands.contains("mv -f \"$new\" \"$managed\""),
            "the host was changed: {commands}"
        );
        assert!(!h3.try_exec("id nbtrust").0);
        tf.ok(&["state", "rm", "nixbuild_builder.b"]);

        // The right key in the ID imports.
        tf.write(&import_config(&h3.host_key()));
        tf.ok(&[
            "import",
            "-no-color",
            "nixbuild_builder.b",
            &format!("{id} {}", h3.host_key()),
        ]);
        tf.ok(&["state", "rm", "nixbuild_builder.b"]);
    }
}

/// Row 6 for `nixbuild_machines_file` (issue 28, "on every path"): after an
/// import without a key in its ID, a configuration whose
/// `target.ssh.host_key` names another key stops the plan with the host-key
/// error, and the refresh before it does not log in with the import's pin.
#[test]
fn machines_file_import_checks_the_host_key() {
    let _h3 = exclusive("h3");
    let h3 = world().host("h3");
    let other_key = world().host("h2").host_key();
    let remote_file = format!("/tmp/nixbuild-trust-import-{}", std::process::id());
    h3.exec(&format!(
        "printf 'ssh-ng://nixbuild@192.0.2.7 aarch64-linux\\n' > {remote_file}"
    ));
    let config = |key: &str| {
        format!(
            r#"{provider}
resource "nixbuild_machines_file" "m" {{
  target {{
    host = {host}
    path = {path}
    ssh {{
      host_key = {key}
    }}
  }}
  machine {{
    uri     = "ssh-ng://nixbuild@192.0.2.7"
    systems = ["aarch64-linux"]
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&h3.address()),
            path = hcl(&remote_file),
            key = hcl(key),
        )
    };
    let id = format!("root@{}:22:{remote_file}", h3.address());
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&config(&other_key));
        tf.ok(&["import", "-no-color", "nixbuild_machines_file.m", &id]);
        plan_stops_before_any_login(&tf, &h3);
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert_host_key_error(&text);
        tf.ok(&["state", "rm", "nixbuild_machines_file.m"]);

        // With the host's own key configured, the keyless import is
        // confirmed by one apply, and then plans nothing.
        tf.write(&config(&h3.host_key()));
        tf.ok(&["import", "-no-color", "nixbuild_machines_file.m", &id]);
        tf.apply();
        tf.assert_no_changes();
        tf.ok(&["state", "rm", "nixbuild_machines_file.m"]);
    }
    h3.exec(&format!(
        "rm -f {remote_file} {remote_file}.ssh_config {remote_file}.known_hosts"
    ));
}

/// A machines file on a target that goes away: the refresh with
/// `connect_timeout = "5m"` warns within seconds, keeps the state and plans
/// nothing. Prints the time to the warning and the connection attempts, for
/// a host that closes connections and for one that never answers.
#[test]
fn dead_host_refresh_warns_quickly() {
    let h1 = world().host("h1");
    for version in terraform_versions() {
        let switch = Switch::start(forward_to("h1"));
        let tf = Tf::new(&version);
        let path = format!("/tmp/nixbuild-trust-{}-{version}", std::process::id());
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_machines_file" "m" {{
  machine {{
    uri     = "ssh-ng://nixbuild@203.0.113.7"
    systems = ["x86_64-linux"]
  }}
  target {{
    host = "127.0.0.1"
    path = {path}
    ssh {{
      port     = {port}
      host_key = {key}
    }}
  }}
}}
"#,
            provider = provider_config("")
                .replace("connect_timeout  = \"20s\"", "connect_timeout  = \"5m\""),
            path = hcl(&path),
            port = switch.port,
            key = hcl(&h1.host_key()),
        ));
        tf.apply();
        tf.assert_no_changes();
        for (label, mode) in [
            ("closes connections", Mode::Close),
            ("never answers", Mode::Silent),
        ] {
            switch.set(mode);
            let before = switch.accepted();
            let started = Instant::now();
            let (code, plan) = tf.plan_exit_code();
            let seconds = started.elapsed().as_secs_f64();
            let attempts = switch.accepted() - before;
            eprintln!(
                "[timing] refresh of a dead host that {label} (Terraform {version}, connect_timeout = \"5m\"): \
                 warning after {seconds:.1}s, {attempts} connection attempts"
            );
            assert_eq!(code, 0, "a dead host must not plan changes: {plan}");
            assert!(
                plan.contains("unreachable; keeping the last known state"),
                "{plan}"
            );
            assert!(attempts >= 1, "the refresh never tried to connect");
        }
        switch.set(forward_to("h1"));
        tf.destroy();
        assert!(!h1.try_exec(&format!("test -e {path}")).0);
    }
}

/// A create that fails after connecting leaves the builder in the state,
/// tainted, with the key it pinned: the next apply does not trust another
/// host at that address (no login there), with or without refresh.
#[test]
fn failed_create_keeps_its_pin() {
    let bare = world().host("bare");
    let other = SecondSshd::start("bare", 2214, &["ed25519"]);
    for version in terraform_versions() {
        let switch = Switch::start(forward_to("bare"));
        let tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host = "127.0.0.1"
  ssh {{
    port = {port}
  }}
  nix {{
    install = "none"
  }}
  build_user {{
    name = "nbtrust"
  }}
}}
"#,
            provider = provider_config(""),
            port = switch.port,
        ));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(flat(&text).contains("install Nix"), "{text}");
        let state: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let resource = &state["values"]["root_module"]["resources"][0];
        assert_eq!(
            resource["values"]["host_key"],
            bare.host_key().as_str(),
            "{state}"
        );
        assert_eq!(resource["tainted"], true, "{state}");

        switch.set(Mode::Forward(other.endpoint()));
        let logins = other.logins();
        let text = tf.fails(&["plan", "-no-color"]);
        assert_host_key_error(&text);
        let text = tf.fails(&["apply", "-refresh=false", "-auto-approve", "-no-color"]);
        assert_host_key_error(&text);
        assert_eq!(other.logins(), logins, "{}", other.log_text());
        // A refresh would stop at the changed key; on_destroy = "keep" needs no host.
        tf.ok(&["destroy", "-refresh=false", "-auto-approve", "-no-color"]);
        assert!(tf.ok(&["state", "list"]).trim().is_empty());
    }
}

/// A push whose build fails after connecting stays in the state, tainted,
/// with the key it pinned: its replacement in the next apply expects that
/// key and stops, before logging in, at a host that presents another.
#[test]
fn failed_cache_push_keeps_its_pin() {
    let _h2 = exclusive("h2");
    let other = SecondSshd::start("h2", 2215, &["ed25519"]);
    for version in terraform_versions() {
        let switch = Switch::start(forward_to("h2"));
        let tf = Tf::new(&version);
        let flake = fresh_flake(&tf, &version);
        let config = |installable: &str| {
            format!(
                r#"{provider}
resource "nixbuild_cache_push" "p" {{
  host         = "127.0.0.1"
  source       = {flake}
  installables = ["{installable}"]
  ssh {{
    port = {port}
  }}
  store {{
    uri = {cache}
  }}
}}
"#,
                provider = provider_config(""),
                flake = hcl(flake.to_str().unwrap()),
                port = switch.port,
                cache = hcl(world().json["cache"]["url"].as_str().unwrap()),
            )
        };
        tf.write(&config("no-such-output"));
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(flat(&text).contains("no-such-output"), "{text}");
        let state: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let resource = &state["values"]["root_module"]["resources"][0];
        assert_eq!(
            resource["values"]["host_key"],
            world().host("h2").host_key().as_str(),
            "{state}"
        );
        assert_eq!(resource["tainted"], true, "{state}");

        // Fixed configuration, but the host now presents another key: the
        // replacement inherits the pin and fails before logging in.
        tf.write(&config("dep"));
        switch.set(Mode::Forward(other.endpoint()));
        let logins = other.logins();
        let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert_host_key_error(&text);
        assert_eq!(other.logins(), logins, "{}", other.log_text());

        // The real host is back: the replacement pushes.
        switch.set(forward_to("h2"));
        tf.apply();
        tf.assert_no_changes();
        tf.destroy();
    }
}

/// Row 9: a plan never trusts a host key on first use (issue 28, item 9).
/// The plan-time checks of a new object (a builder's `gc.schedule`, a cache
/// proxy's systemd check; a replacement is a new object to the provider,
/// so it was the same with the pin of the object it replaces) logged in
/// with whatever key the host showed. Now they look at the host only with
/// a key they can compare: `ssh.host_key` here; with it, the same plan does
/// log in and finds the host without systemd (so the count without it can
/// fail).
#[test]
fn a_plan_never_trusts_a_host_key_on_first_use() {
    let sshd = SecondSshd::start("bare", 2217, &["ed25519"]);
    let config = |host_key: Option<&str>| {
        let key_line = host_key
            .map(|k| format!("host_key = {}", hcl(k)))
            .unwrap_or_default();
        format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host = {host}
  ssh {{
    port = {port}
    {key_line}
  }}
  gc {{
    schedule = "daily"
  }}
}}

resource "nixbuild_cache_proxy" "p" {{
  host   = {host}
  listen = "127.0.0.1:1"
  ssh {{
    port = {port}
    {key_line}
  }}
  upstream {{
    url = "http://127.0.0.1:1"
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&sshd.address),
            port = sshd.port,
        )
    };
    let key = sshd.key("ed25519");
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        for host_key in [None, Some(key.as_str())] {
            tf.write(&config(host_key));
            let logins = sshd.logins();
            let (code, plan) = tf.plan_exit_code();
            if host_key.is_none() {
                // Nothing known about the host: both checks wait for the apply.
                assert_eq!(code, 2, "{version}: {plan}");
                assert_eq!(
                    sshd.logins(),
                    logins,
                    "{version}: the plan logged in with a key it never verified: {}",
                    sshd.log_text()
                );
            } else {
                // "bare" runs no systemd: both checks say so at plan time.
                assert_eq!(code, 1, "{version}: {plan}");
                let plan = flat(&plan);
                assert_eq!(
                    plan.matches("does not run systemd").count(),
                    2,
                    "{version}: {plan}"
                );
                assert!(
                    sshd.logins() > logins,
                    "{version}: with ssh.host_key the plan's checks never looked at the host"
                );
            }
        }
    }
}
