//! The fault suite (issue 28, item 2): each row runs one operation of the
//! provider through real Terraform against a real test host, injects one
//! fault of the test world while it runs, and then checks what a user would
//! check after an outage:
//!
//! - the apply fails with a clear error naming the host, the step and the
//!   cause (or, where the read policy says so, plans with a warning);
//! - the state holds exactly what is true on the host;
//! - no partial file is left on the host (no `mktemp` leftovers next to a
//!   managed file, no narinfo in the cache without its NAR);
//! - nothing the user had is lost (their `nix.conf` lines, earlier pushes,
//!   an earlier machines file);
//! - once the fault clears, a re-apply converges and the plan after it is
//!   empty.
//!
//! The faults are real: a TCP proxy in front of a host's sshd cuts every
//! connection; every process of the host but its listening sshd is killed
//! with SIGKILL while the proxy refuses connections (a crash and a reboot);
//! a 1 MiB tmpfs over the host's `/etc/nix`, filled up; the host's
//! `nix-daemon` and its build worker killed mid-build; an HTTP fault proxy
//! ([`HttpFault`]) in front of the world's nginx binary cache answering 500,
//! trickling its answers to uploads, or resetting uploads halfway; the same
//! proxy in front of the Cachix API stand-in answering 502.
//!
//! The run renders the table of rows into `docs/reliability.md`
//! ([`render`]): the test fails when the committed file differs from what
//! the run saw, so the table is always what the suite last observed.
//! `NIXBUILD_WRITE_RELIABILITY=1` writes the file instead (then commit it).
//! `NBT_FAULT_ROWS=name,name` runs only some rows (and never compares).
//!
//! Rows alternate between the supported Terraform versions (each row on one
//! of them), to keep the suite within a few minutes.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Namespace host with Nix and a root-login sshd on port 2222; few other
/// tests use it.
const BUILDER: &str = "hp";
/// The host install tests reset to "no Nix at all".
const FRESH: &str = "fresh";

// ---------------------------------------------------------------------------
// Fault injectors

/// What [`HttpFault`] does to each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum HttpMode {
    /// Forward as is.
    Pass = 0,
    /// Answer `500 Internal Server Error` to everything.
    Status500 = 1,
    /// Answer `502 Bad Gateway` to everything.
    Status502 = 2,
    /// Forward, but trickle the answer to every upload (PUT) one byte
    /// every two seconds: a cache that accepts uploads very slowly.
    SlowUploads = 3,
    /// Forward, but reset every upload (PUT) after 64 bytes of its body.
    ResetUploads = 4,
}

/// A small HTTP fault proxy on 127.0.0.1 in front of an HTTP server (the
/// world's nginx cache or the Cachix API stand-in). One request per
/// connection: it reads the request head, decides by the mode, and closes.
struct HttpFault {
    port: u16,
    mode: Arc<AtomicU8>,
    /// Request lines seen (method and path), for failure messages.
    seen: Arc<Mutex<Vec<String>>>,
}

impl HttpFault {
    fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(HttpMode::Pass as u8));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (m, s, target) = (mode.clone(), seen.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (m, s, target) = (m.clone(), s.clone(), target.clone());
                std::thread::spawn(move || {
                    let _ = Self::serve(client, &target, m.load(Ordering::SeqCst), &s);
                });
            }
        });
        Self { port, mode, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, mode: HttpMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn seen(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }

    fn serve(
        mut client: TcpStream,
        target: &str,
        mode: u8,
        seen: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        // The request head, byte by byte up to the blank line.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let line = text.lines().next().unwrap_or_default().to_string();
        seen.lock().unwrap().push(line.clone());
        let upload = line.starts_with("PUT ");
        let status = match mode {
            m if m == HttpMode::Status500 as u8 => Some("500 Internal Server Error"),
            m if m == HttpMode::Status502 as u8 => Some("502 Bad Gateway"),
            _ => None,
        };
        if let Some(status) = status {
            let body = "fault injected by tests/faults.rs\n";
            write!(
                client,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            // Read what the client still sends, so closing does not reset.
            client.set_read_timeout(Some(Duration::from_secs(2)))?;
            let _ = client.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut client, &mut std::io::sink());
            return Ok(());
        }
        // Forward with `Connection: close`, one request per connection.
        let head = text
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\nConnection: close\r\n\r\n";
        let mut server = TcpStream::connect(target)?;
        server.write_all(head.as_bytes())?;
        let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
        let reset = mode == HttpMode::ResetUploads as u8 && upload;
        let body = std::thread::spawn(move || {
            if reset {
                // Forward what comes of the body within a second, at most
                // 64 bytes, then reset both sides.
                let mut first = [0u8; 64];
                let _ = c_read.set_read_timeout(Some(Duration::from_secs(1)));
                let n = c_read.read(&mut first).unwrap_or(0);
                let _ = s_write.write_all(&first[..n]);
                return true;
            }
            let _ = std::io::copy(&mut c_read, &mut s_write);
            let _ = s_write.shutdown(Shutdown::Write);
            false
        });
        if reset {
            let _ = body.join();
            // SO_LINGER 0: close sends RST, as a crashing middlebox does.
            for stream in [&client, &server] {
                let linger = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                // SAFETY: setsockopt on a socket this thread owns, with a
                // correctly sized `linger`.
                unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(stream),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        &linger as *const libc::linger as *const libc::c_void,
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
            }
            return Ok(());
        }
        let slow = mode == HttpMode::SlowUploads as u8 && upload;
        let mut buf = [0u8; 4096];
        loop {
            let n = server.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if slow {
                for b in &buf[..n] {
                    std::thread::sleep(Duration::from_secs(2));
                    client.write_all(std::slice::from_ref(b))?;
                }
            } else {
                client.write_all(&buf[..n])?;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = body.join();
        Ok(())
    }
}

/// A full `/etc/nix` on a namespace host: a 1 MiB tmpfs mounted over it
/// (inside the host's own mount namespace), holding a copy of what was
/// there. [`fill`](Self::fill) fills it up, [`clear`](Self::clear) frees
/// it. Dropping it unmounts the tmpfs (the host's own `/etc/nix` is back,
/// untouched) and restarts the host's nix-daemon, which read the tmpfs copy.
struct EtcNixTmpfs<'a> {
    host: &'a Host<'a>,
}

impl<'a> EtcNixTmpfs<'a> {
    fn mount(host: &'a Host<'a>) -> Self {
        host.exec(
            "set -e; keep=$(mktemp -d /run/nbt-etc-nix.XXXXXX); cp -a /etc/nix/. \"$keep\"/; \
             mount -t tmpfs -o size=1m,mode=0755 nbt-faults /etc/nix; cp -a \"$keep\"/. /etc/nix/; rm -rf \"$keep\"",
        );
        Self { host }
    }

    fn fill(&self) {
        // dd stops at ENOSPC; a last small file takes the blocks dd left.
        self.host.exec(
            "dd if=/dev/zero of=/etc/nix/.nbt-fill bs=4k 2>/dev/null || true; \
             head -c 4096 /dev/zero >/etc/nix/.nbt-fill2 2>/dev/null || true; \
             ! sh -c 'echo x >/etc/nix/.nbt-probe' 2>/dev/null",
        );
    }

    fn clear(&self) {
        self.host
            .exec("rm -f /etc/nix/.nbt-fill /etc/nix/.nbt-fill2 /etc/nix/.nbt-probe");
    }
}

impl Drop for EtcNixTmpfs<'_> {
    fn drop(&mut self) {
        let (ok, out) = self.host.try_exec("umount /etc/nix || umount -l /etc/nix");
        if !ok {
            eprintln!("restoring /etc/nix on {} failed: {out}", self.host.name);
        }
        let _ = self.host.try_exec(&daemon_restart_command(self.host));
    }
}

/// Kill every process of a namespace host with SIGKILL except its listening
/// sshd (the world cannot restart that one), by pid: a crash. The sshd
/// sessions die with the rest, so every connection drops.
fn crash(host: &Host) {
    let sshd = std::fs::read_to_string(host.field("sshd_pid_file")).unwrap();
    let sshd = sshd.trim();
    let ns = std::fs::read_link(format!("/proc/{sshd}/ns/mnt")).unwrap();
    for _ in 0..3 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == sshd {
                continue;
            }
            if std::fs::read_link(format!("/proc/{name}/ns/mnt"))
                .ok()
                .as_ref()
                == Some(&ns)
            {
                // SAFETY: a process of the test host's namespace.
                unsafe { libc::kill(name.parse().unwrap(), libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// What every row checks

/// Terraform's first `Error:` (or, with `warning`, `Warning:`) block of a
/// run's output, on one line.
fn diagnostic(text: &str, kind: &str) -> String {
    let marker = format!("{kind}: ");
    // Each block runs to the next blank line after its box; the
    // dev_overrides warning every test run shows is not the run's own.
    let block = text
        .split(&marker)
        .skip(1)
        .find(|b| !b.starts_with("Provider development overrides"))
        .unwrap_or_else(|| panic!("no `{kind}:` in the output:\n{text}"));
    let source_line = regex::Regex::new(r"^\d+:").unwrap();
    block
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .take_while(|l| {
            ![
                "(and ",
                "Apply complete",
                "Destroy complete",
                "Warning: ",
                "Error: ",
            ]
            .iter()
            .any(|end| l.starts_with(end))
        })
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("with ")
                && !l.starts_with("on ")
                && !source_line.is_match(l)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Assert that an error names the host, a step and the cause.
fn assert_clear(error: &str, host: &str, step: &str, causes: &[&str]) {
    assert!(
        error.contains(host),
        "the error does not name {host}: {error}"
    );
    assert!(
        error.contains(step),
        "the error does not name step {step}: {error}"
    );
    assert!(
        causes.iter().any(|c| error.contains(c)),
        "the error names none of the causes {causes:?}: {error}"
    );
    assert!(!error.contains("panicked"), "{error}");
}

/// The table's abbreviation of a diagnostic: ports, store hashes, temp
/// paths and durations replaced, and the output before a cut dropped, so
/// every run gives the same text.
fn abbreviate(text: &str) -> String {
    let rules = [
        // What a cut command printed before the cut depends on timing.
        (r"(?s)(\(connection lost or killed by a signal\)).*", "$1"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"/nix/store/[0-9a-z]{32}-[^\s`'\x22,)]*", "/nix/store/…"),
        (r"\b[0-9a-z]{32}\b", "HASH"),
        (r"/tmp/[^\s`'\x22,)]*", "/tmp/…"),
        (r"\b\d+(\.\d+)?(ms|s|m)\b", "N$2"),
        (r"\b\d+ ms\b", "N ms"),
        (r"\s+", " "),
    ];
    let mut out = text.to_string();
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    let out = out.replace('|', "\\|");
    if out.chars().count() > 220 {
        format!("{}…", out.chars().take(220).collect::<String>())
    } else {
        out
    }
}

/// Managed directories of a builder that must hold no temporary file.
const MANAGED_DIRS: &str = "/etc/nix /etc/nixbuild";

/// Assert that no `mktemp` leftover (`NAME.XXXXXX`, `.nixbuild-*`) is in
/// `dirs` on `host`. A six-character suffix counts when it has a digit or a
/// capital, as mktemp's nearly always do (`remote-fs.target` does not).
fn assert_no_partial_files(host: &Host, dirs: &str) {
    let listed = host.exec(&format!(
        "for d in {dirs}; do [ -d \"$d\" ] && find \"$d\" -maxdepth 3; done; true"
    ));
    let temporary = regex::Regex::new(r"\.[A-Za-z0-9]{6}$").unwrap();
    let found: Vec<&str> = listed
        .lines()
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or_default();
            name.starts_with(".nixbuild-")
                || temporary.find(name).is_some_and(|m| {
                    m.as_str()
                        .chars()
                        .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
                })
        })
        .collect();
    assert!(
        found.is_empty(),
        "partial files left on {}: {found:?}",
        host.name
    );
}

/// `terraform show -json`'s resources: (address, tainted, values).
fn resources(tf: &Tf) -> Vec<(String, bool, serde_json::Value)> {
    let shown: serde_json::Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
    shown["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_string(),
                r["tainted"].as_bool().unwrap_or(false),
                r["values"].clone(),
            )
        })
        .collect()
}

/// Re-apply once the fault cleared: converges, and the plan is empty.
fn converge(tf: &Tf) {
    tf.apply();
    tf.assert_no_changes();
}

/// One row of the table.
struct Row {
    name: &'static str,
    operation: &'static str,
    fault: &'static str,
    host: &'static str,
    run: fn(&str) -> String,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "bootstrap-ssh-cut",
            operation: "bootstrap",
            fault: "SSH connection cut mid-command",
            host: FRESH,
            run: bootstrap_ssh_cut,
        },
        Row {
            name: "bootstrap-crash",
            operation: "bootstrap",
            fault: "every process of the host killed (crash, reboot)",
            host: FRESH,
            run: bootstrap_crash,
        },
        Row {
            name: "settings-etc-full",
            operation: "settings update",
            fault: "`/etc/nix` full",
            host: BUILDER,
            run: settings_etc_full,
        },
        Row {
            name: "settings-cachix-502",
            operation: "settings update",
            fault: "Cachix API (stand-in) answers 502",
            host: BUILDER,
            run: settings_cachix_502,
        },
        Row {
            name: "machines-etc-full",
            operation: "remote machines-file write",
            fault: "`/etc/nix` full",
            host: BUILDER,
            run: machines_etc_full,
        },
        Row {
            name: "cache-proxy-ssh-cut",
            operation: "cache-proxy install",
            fault: "SSH connection cut mid-command",
            host: SYSTEMD,
            run: cache_proxy_ssh_cut,
        },
        Row {
            name: "push-cache-500",
            operation: "push (build and upload)",
            fault: "binary cache answers 500",
            host: BUILDER,
            run: |v| push_cache_fault(v, HttpMode::Status500),
        },
        Row {
            name: "push-cache-slow",
            operation: "push (build and upload)",
            fault: "binary cache answers uploads slowly",
            host: BUILDER,
            run: |v| push_cache_fault(v, HttpMode::SlowUploads),
        },
        Row {
            name: "push-cache-reset",
            operation: "push (build and upload)",
            fault: "binary cache resets mid-upload",
            host: BUILDER,
            run: |v| push_cache_fault(v, HttpMode::ResetUploads),
        },
        Row {
            name: "push-daemon-killed",
            operation: "push (build and upload)",
            fault: "`nix-daemon` killed mid-build",
            host: BUILDER,
            run: push_daemon_killed,
        },
        Row {
            name: "clean-destroy-ssh-cut",
            operation: "`on_destroy = \"clean\"` destroy",
            fault: "SSH connection cut mid-command",
            host: BUILDER,
            run: clean_destroy_ssh_cut,
        },
        Row {
            name: "clean-destroy-crash",
            operation: "`on_destroy = \"clean\"` destroy",
            fault: "every process of the host killed (crash, reboot)",
            host: FRESH,
            run: clean_destroy_crash,
        },
    ]
}

// ---------------------------------------------------------------------------
// Rows

fn builder_config(address: &str, port: u16, host_key: &str, nix: &str, extra: &str) -> String {
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  ssh {{
    port     = {port}
    host_key = {host_key}
  }}
  build_user {{
    name = "nbfault"
  }}
  nix {{
    {nix}
  }}
  {extra}
}}
"#,
        provider = provider_config(""),
        address = hcl(address),
        host_key = hcl(host_key),
    )
}

/// The `nix` block of a builder on `hp` (Nix installed).
fn hp_nix(max_jobs: u32) -> String {
    let hp = world().host(BUILDER);
    hp_nix_restarting(max_jobs, &daemon_restart_command(&hp))
}

fn hp_nix_restarting(max_jobs: u32, restart: &str) -> String {
    format!(
        "install = \"none\"\n    max_jobs = {max_jobs}\n    daemon_restart_command = {}",
        hcl(restart)
    )
}

/// A daemon restart that leaves `marker` on the host and takes 3 s before
/// it runs `restart`: a fault injected once the marker exists lands in the
/// step "restart Nix daemon" on every run, so the table does not depend on
/// timing. (A user's restart command may well take that long.)
struct SlowRestart {
    marker: String,
}

impl SlowRestart {
    fn new(row: &str) -> Self {
        Self {
            marker: format!("/tmp/nbt-faults-{}-{row}.restarting", std::process::id()),
        }
    }

    fn command(&self, restart: &str) -> String {
        format!("touch {}; sleep 3; {restart}", self.marker)
    }

    fn reset(&self, host: &Host) {
        host.exec(&format!("rm -f {}", self.marker));
    }

    fn started(&self, host: &Host) -> bool {
        host.try_exec(&format!("test -e {}", self.marker)).0
    }
}

/// A fresh host's installer, served over HTTPS (installer_url must be https).
struct Installer {
    https: HttpsFiles,
}

impl Installer {
    fn serve() -> Self {
        let file = world().dir.join("www/installers/official.sh");
        Self {
            https: HttpsFiles::serve(&[file.as_path()]),
        }
    }

    fn nix(&self, restart: &SlowRestart) -> String {
        let fresh = world().host(FRESH);
        format!(
            "install = \"official\"\n    installer_url = {}\n    daemon_restart_command = {}",
            hcl(&self.https.url("official.sh")),
            hcl(&restart.command(&fresh.field("daemon_restart_command")))
        )
    }
}

/// What a user had on the fresh host before the bootstrap: a file of their
/// own in `/etc/nix` (the installer writes `nix.conf` itself).
const USER_FILE: &str = "/etc/nix/machines.d-of-the-user";
/// A line the user adds to `nix.conf` once Nix is there.
const USER_LINE: &str = "# nbt-faults: a line of the user";

fn fresh_with_user_file(installer: &Installer) {
    let fresh = world().host(FRESH);
    fresh.reset();
    installer.https.trust_on(&fresh);
    fresh.exec(&format!(
        "mkdir -p /etc/nix && echo 'ssh-ng://user@example.invalid' >{USER_FILE}"
    ));
}

fn assert_user_file_kept(host: &Host) {
    assert_eq!(
        host.exec(&format!("cat {USER_FILE}")),
        "ssh-ng://user@example.invalid",
        "the user's file changed"
    );
}

fn add_user_line(host: &Host) {
    host.exec(&format!("echo '{USER_LINE}' >>/etc/nix/nix.conf"));
}

fn assert_user_line_kept(host: &Host) {
    let conf = host.exec("cat /etc/nix/nix.conf");
    assert!(
        conf.contains(USER_LINE),
        "the user's nix.conf line is gone:\n{conf}"
    );
}

/// Start `terraform apply` as a job, wait for `trigger`, inject `fault`,
/// wait for the job; returns its output.
fn apply_with_fault(
    tf: &Tf,
    name: &str,
    trigger: impl FnMut() -> bool,
    fault: impl FnOnce(),
) -> String {
    run_with_fault(
        tf,
        name,
        &["apply", "-auto-approve", "-no-color"],
        trigger,
        fault,
    )
}

/// [`apply_with_fault`] for any Terraform command.
fn run_with_fault(
    tf: &Tf,
    name: &str,
    args: &[&str],
    trigger: impl FnMut() -> bool,
    fault: impl FnOnce(),
) -> String {
    let mut job = tf.spawn_job(name, args);
    let started = Instant::now();
    let mut trigger = trigger;
    while !trigger() {
        if job.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(180) {
            let _ = job.kill();
            let (out, err) = tf.job_output(name);
            panic!("the fault's moment never came:\n{out}\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fault();
    let status = job.wait().unwrap();
    let (out, err) = tf.job_output(name);
    assert!(
        !status.success(),
        "terraform {args:?} survived the fault unnoticed:\n{out}\n{err}"
    );
    format!("{out}\n{err}")
}

/// A crash's reboot: the host answers on `port` again, and its init (here
/// the world's restart script) starts `nix-daemon` if Nix is installed.
fn reboot(host: &Host, port: u16) -> Proxy {
    std::thread::sleep(Duration::from_secs(1));
    let back = Proxy::start_on(port, &format!("{}:22", host.address()));
    host.exec(&format!(
        "[ ! -x /nix/var/nix/profiles/default/bin/nix-daemon ] || {} >/dev/null",
        host.field("daemon_restart_command")
    ));
    back
}

/// A builder on the pristine `fresh` host, reached through a [`Proxy`] (to
/// cut or refuse its connections), with a [`SlowRestart`]: how every row on
/// that host starts.
struct FreshRow {
    _installer: Installer,
    restart: SlowRestart,
    proxy: Proxy,
    tf: Tf,
}

impl FreshRow {
    fn start(version: &str, row: &str) -> Self {
        let fresh = world().host(FRESH);
        let installer = Installer::serve();
        let restart = SlowRestart::new(row);
        fresh_with_user_file(&installer);
        let proxy = Proxy::start(&format!("{}:22", fresh.address()));
        let tf = Tf::new(version);
        tf.write(&builder_config(
            "127.0.0.1",
            proxy.port,
            &fresh.host_key(),
            &installer.nix(&restart),
            "",
        ));
        Self {
            _installer: installer,
            restart,
            proxy,
            tf,
        }
    }

    /// The endpoint errors name.
    fn at(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port)
    }

    /// Crash the host: new connections are refused while every process
    /// dies, then the live ones are cut.
    fn crash(&self) {
        self.proxy.stop();
        crash(&world().host(FRESH));
        self.proxy.cut_now();
    }

    /// Run `args` and inject `fault` once the slow daemon restart began;
    /// the error must name the host, that step and a lost connection.
    fn fail_in_restart(&self, args: &[&str], fault: impl FnOnce()) -> String {
        let fresh = world().host(FRESH);
        self.restart.reset(&fresh);
        let text = run_with_fault(
            &self.tf,
            "fault",
            args,
            || self.restart.started(&fresh),
            fault,
        );
        let error = diagnostic(&text, "Error");
        assert_clear(
            &error,
            &self.at(),
            "step `restart Nix daemon`",
            &["connection lost", "closed", "reset"],
        );
        self.restart.reset(&fresh);
        error
    }
}

const APPLY: &[&str] = &["apply", "-auto-approve", "-no-color"];
const DESTROY: &[&str] = &["destroy", "-auto-approve", "-no-color"];

/// A failed bootstrap keeps a tainted state with its pin: the host was
/// changed, and the next apply replaces (resumes) it.
fn assert_tainted_with_pin(tf: &Tf, host: &Host) {
    let state = resources(tf);
    assert_eq!(state.len(), 1, "{state:?}");
    assert!(state[0].1, "the failed create is not tainted: {state:?}");
    assert_eq!(state[0].2["host_key"], host.host_key().as_str());
}

fn bootstrap_ssh_cut(version: &str) -> String {
    let fresh = world().host(FRESH);
    let row = FreshRow::start(version, "bootstrap-cut");
    let error = row.fail_in_restart(APPLY, || row.proxy.cut_now());
    assert_tainted_with_pin(&row.tf, &fresh);
    assert_no_partial_files(&fresh, MANAGED_DIRS);
    assert_user_file_kept(&fresh);
    converge(&row.tf);
    assert_user_file_kept(&fresh);
    assert!(fresh.exec("id -u nbfault").parse::<u32>().is_ok());
    fresh.exec("NIX_REMOTE=daemon /nix/var/nix/profiles/default/bin/nix store ping");
    row.tf.destroy();
    error
}

fn bootstrap_crash(version: &str) -> String {
    let fresh = world().host(FRESH);
    let row = FreshRow::start(version, "bootstrap-crash");
    let error = row.fail_in_restart(APPLY, || row.crash());
    assert_tainted_with_pin(&row.tf, &fresh);
    let _back = reboot(&fresh, row.proxy.port);
    assert_no_partial_files(&fresh, MANAGED_DIRS);
    assert_user_file_kept(&fresh);
    converge(&row.tf);
    assert_user_file_kept(&fresh);
    fresh.exec("NIX_REMOTE=daemon /nix/var/nix/profiles/default/bin/nix store ping");
    row.tf.destroy();
    error
}

/// The builder's managed Nix config on `hp`.
fn managed_conf(hp: &Host) -> String {
    hp.exec("cat /etc/nix/nixbuild.conf")
}

fn settings_etc_full(version: &str) -> String {
    let hp = world().host(BUILDER);
    let full = EtcNixTmpfs::mount(&hp);
    let conf_before = hp.exec("cat /etc/nix/nix.conf");
    let tf = Tf::new(version);
    tf.write(&builder_config(
        &hp.address(),
        2222,
        &hp.host_key(),
        &hp_nix(2),
        "",
    ));
    tf.apply();
    let applied = managed_conf(&hp);
    assert!(applied.contains("max-jobs = 2"), "{applied}");
    full.fill();
    tf.write(&builder_config(
        &hp.address(),
        2222,
        &hp.host_key(),
        &hp_nix(5),
        "",
    ));
    let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
    let error = diagnostic(&text, "Error");
    assert_clear(
        &error,
        &hp.address(),
        "step `",
        &["No space left on device"],
    );
    // The host still has the last applied config, whole; the state says so.
    assert_eq!(managed_conf(&hp), applied);
    let state = resources(&tf);
    let values = &state[0].2;
    assert_eq!(values["nix"][0]["max_jobs"], 2, "{values}");
    assert_no_partial_files(&hp, MANAGED_DIRS);
    full.clear();
    converge(&tf);
    assert!(managed_conf(&hp).contains("max-jobs = 5"));
    tf.destroy();
    // The clean destroy gave the user back their nix.conf.
    assert_eq!(hp.exec("cat /etc/nix/nix.conf"), conf_before);
    drop(full);
    error
}

fn settings_cachix_502(version: &str) -> String {
    let w = world();
    let hp = w.host(BUILDER);
    let api = w.json["cachix_api"]["url"].as_str().unwrap();
    let api_target = api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let fault = HttpFault::start(&api_target);
    let api_url = format!("{}/api/v1", fault.url());
    let token = w.json["cachix_api"]["token"].as_str().unwrap();
    let config = |max_jobs| {
        builder_config(
            &hp.address(),
            2222,
            &hp.host_key(),
            &hp_nix(max_jobs),
            "cachix {\n    cache = \"public-cache\"\n  }",
        )
        .replacen(
            "provider \"nixbuild\" {",
            &format!(
                "provider \"nixbuild\" {{\n  cachix {{\n    api_url    = {}\n    auth_token = {}\n  }}",
                hcl(&api_url),
                hcl(token)
            ),
            1,
        )
    };
    let tf = Tf::new(version);
    tf.write(&config(2));
    tf.apply();
    let applied = managed_conf(&hp);
    let key = w.json["cachix_api"]["caches"]["public-cache"]["public_key"]
        .as_str()
        .unwrap();
    assert!(applied.contains(key), "{applied}");
    fault.set(HttpMode::Status502);
    tf.write(&config(5));
    let out = tf.run(&["apply", "-auto-approve", "-no-color"]);
    let text = tf.describe(&["apply"], &out);
    let seen = if out.status.success() {
        // The read policy: plan with the last applied key, and warn.
        let warning = diagnostic(&text, "Warning");
        assert!(warning.contains("502"), "{warning}");
        assert!(managed_conf(&hp).contains(key));
        format!("warning: {warning}")
    } else {
        let error = diagnostic(&text, "Error");
        assert!(
            error.contains("public-cache") && error.contains("502"),
            "{error}"
        );
        assert_eq!(managed_conf(&hp), applied, "a failed plan changed the host");
        format!("error: {error}")
    };
    assert!(
        fault.seen().contains("GET"),
        "the API was not asked: {}",
        fault.seen()
    );
    assert_no_partial_files(&hp, MANAGED_DIRS);
    fault.set(HttpMode::Pass);
    converge(&tf);
    let conf = managed_conf(&hp);
    assert!(
        conf.contains("max-jobs = 5") && conf.contains(key),
        "{conf}"
    );
    tf.destroy();
    seen
}

fn machines_config(path: &str, port: u16, builders: &[&str]) -> String {
    let hp = world().host(BUILDER);
    let machines: String = builders
        .iter()
        .map(|b| {
            let h = world().host(b);
            format!(
                "  machine {{\n    uri     = \"ssh-ng://root@{}\"\n    systems = [\"x86_64-linux\"]\n  }}\n",
                h.address()
            )
        })
        .collect();
    format!(
        r#"{provider}
resource "nixbuild_machines_file" "m" {{
  target {{
    host = "127.0.0.1"
    path = {path}
    ssh {{
      port     = {port}
      host_key = {host_key}
    }}
  }}
{machines}}}
"#,
        provider = provider_config(""),
        path = hcl(path),
        host_key = hcl(&hp.host_key()),
    )
}

fn machines_etc_full(version: &str) -> String {
    let hp = world().host(BUILDER);
    let full = EtcNixTmpfs::mount(&hp);
    let path = "/etc/nix/machines-nbt-faults";
    let proxy = Proxy::start(&format!("{}:2222", hp.address()));
    let tf = Tf::new(version);
    tf.write(&machines_config(path, proxy.port, &["h1"]));
    tf.apply();
    let written = hp.exec(&format!("cat {path}"));
    full.fill();
    tf.write(&machines_config(path, proxy.port, &["h1", "h2"]));
    let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
    let error = diagnostic(&text, "Error");
    assert_clear(
        &error,
        &format!("127.0.0.1:{}", proxy.port),
        "step `",
        &["No space left on device"],
    );
    // The earlier file is whole, and the state still holds it.
    assert_eq!(hp.exec(&format!("cat {path}")), written);
    let state = resources(&tf);
    assert_eq!(
        state[0].2["content"].as_str().map(str::trim),
        Some(written.trim()),
        "{state:?}"
    );
    assert_no_partial_files(&hp, "/etc/nix");
    full.clear();
    converge(&tf);
    assert!(hp
        .exec(&format!("cat {path}"))
        .contains(&world().host("h2").address()));
    tf.destroy();
    assert!(!hp.try_exec(&format!("test -e {path}")).0);
    drop(full);
    error
}

/// A flake with `quick` and `slow` packages; `slow` sleeps 120 s unless
/// `/tmp/SALT.fast` exists on the builder, and records its pids.
fn push_flake(dir: &std::path::Path, salt: &str) -> std::path::PathBuf {
    let flake = dir.join("flake");
    std::fs::create_dir_all(&flake).unwrap();
    std::fs::write(flake.join("salt.txt"), salt).unwrap();
    std::fs::write(
        flake.join("flake.nix"),
        r#"{
  outputs = { self }:
    let
      system = "x86_64-linux";
      salt = builtins.readFile ./salt.txt;
      mk = name: script: derivation {
        inherit name system salt;
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
    in {
      packages.${system} = {
        quick = mk "nbt-quick" "echo quick > $out";
        more = mk "nbt-more" "i=0; while [ $i -lt 4000 ]; do echo more $i; i=$((i+1)); done > $out";
        slow = mk "nbt-slow" ''
          echo "$$" >/tmp/${salt}.builder
          if [ ! -e /tmp/${salt}.fast ]; then
            /bin/sleep 120 &
            echo "$!" >/tmp/${salt}.sleep
            wait
          fi
          echo slow >$out
        '';
      };
    };
}
"#,
    )
    .unwrap();
    flake
}

fn push_config(
    flake: &std::path::Path,
    store: &str,
    installables: &[&str],
    timeout: &str,
) -> String {
    push_config_with(flake, store, installables, timeout, "[]")
}

/// [`push_config`] with `build_args` (an HCL list).
fn push_config_with(
    flake: &std::path::Path,
    store: &str,
    installables: &[&str],
    timeout: &str,
    build_args: &str,
) -> String {
    let hp = world().host(BUILDER);
    format!(
        r#"{provider}
resource "nixbuild_cache_push" "p" {{
  host             = {host}
  source           = {flake}
  installables     = {installables}
  evaluate_at_plan = false
  build_args       = {build_args}
  ssh {{
    port     = 2222
    host_key = {host_key}
  }}
  store {{
    uri = {store}
  }}
  timeouts {{
    create = {timeout}
    update = {timeout}
  }}
}}
"#,
        provider = provider_config(""),
        host = hcl(&hp.address()),
        host_key = hcl(&hp.host_key()),
        flake = hcl(flake.to_str().unwrap()),
        installables = serde_json::to_string(installables).unwrap(),
        store = hcl(store),
        timeout = hcl(timeout),
    )
}

fn narinfo(path: &str) -> std::path::PathBuf {
    let cache = world().json["cache"]["dir"].as_str().unwrap();
    let hash = &path["/nix/store/".len().."/nix/store/".len() + 32];
    std::path::Path::new(cache).join(format!("{hash}.narinfo"))
}

/// Every narinfo of `paths` in the cache has its NAR: no half upload.
fn assert_no_partial_uploads(paths: &[String]) {
    let cache = std::path::Path::new(world().json["cache"]["dir"].as_str().unwrap());
    for path in paths {
        let Ok(text) = std::fs::read_to_string(narinfo(path)) else {
            continue;
        };
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("URL: "))
            .unwrap_or_else(|| panic!("narinfo of {path} has no URL:\n{text}"));
        assert!(
            cache.join(url).is_file(),
            "the cache has {path}'s narinfo but not its NAR {url}"
        );
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn push_cache_fault(version: &str, mode: HttpMode) -> String {
    let cache = world().json["cache"]["url"].as_str().unwrap();
    let fault = HttpFault::start(cache.trim_start_matches("http://"));
    let tf = Tf::new(version);
    let salt = salt(&format!("faults-push-{mode:?}"), version);
    let flake = push_flake(tf.dir.path(), &salt);
    let timeout = "45s";
    tf.write(&push_config(&flake, &fault.url(), &["quick"], timeout));
    tf.apply();
    let first = strings(&resources(&tf)[0].2["out_paths"]);
    assert!(narinfo(&first[0]).is_file());
    fault.set(mode);
    tf.write(&push_config(
        &flake,
        &fault.url(),
        &["quick", "more"],
        timeout,
    ));
    let text = tf.fails(&["apply", "-auto-approve", "-no-color"]);
    let error = diagnostic(&text, "Error");
    // The error names the host at fault (the cache, or the builder whose
    // upload did not finish), what was being done, and the cause.
    let cache_at = format!("127.0.0.1:{}", fault.port);
    let builder_at = world().host(BUILDER).address();
    match mode {
        HttpMode::Status500 => {
            assert_clear(&error, &cache_at, "Cannot ask the destination", &["500"])
        }
        HttpMode::SlowUploads => {
            assert_clear(&error, &builder_at, "push", &["did not finish within"])
        }
        _ => assert_clear(
            &error,
            &cache_at,
            "step `",
            &["Failure when receiving data", "reset"],
        ),
    }
    // What was pushed before is still there, the state still says what the
    // cache had, and no narinfo went up without its NAR.
    assert!(narinfo(&first[0]).is_file(), "the earlier push is gone");
    let state = resources(&tf);
    assert_eq!(strings(&state[0].2["out_paths"]), first, "{state:?}");
    fault.set(HttpMode::Pass);
    // The slow upload may still run on the builder a moment: the plan sees
    // what arrived, and the apply uploads what did not.
    converge(&tf);
    let state = resources(&tf);
    let closure = strings(&state[0].2["closure_paths"]);
    assert_eq!(closure.len(), 2, "{state:?}");
    for path in &closure {
        assert!(narinfo(path).is_file(), "{path} is not in the cache");
    }
    assert_no_partial_uploads(&closure);
    tf.destroy();
    error
}

fn push_daemon_killed(version: &str) -> String {
    let hp = world().host(BUILDER);
    let cache = world().json["cache"]["url"].as_str().unwrap();
    let tf = Tf::new(version);
    let salt = salt("faults-daemon", version);
    let flake = push_flake(tf.dir.path(), &salt);
    // Root on the builder would build in its own process; `--store
    // daemon` builds through the daemon, as every non-root user does.
    let daemon = r#"["--store", "daemon"]"#;
    tf.write(&push_config_with(&flake, cache, &["quick"], "5m", daemon));
    tf.apply();
    let first = strings(&resources(&tf)[0].2["out_paths"]);
    tf.write(&push_config_with(
        &flake,
        cache,
        &["quick", "slow"],
        "5m",
        daemon,
    ));
    let sleep_file = format!("/tmp/{salt}.sleep");
    let text = apply_with_fault(
        &tf,
        "daemon",
        || hp.try_exec(&format!("test -s {sleep_file}")).0,
        || {
            // The build's worker (the builder's parent) and the daemon, by
            // pid; then the build itself, which a dead worker leaves behind.
            let builder = hp.exec(&format!("cat /tmp/{salt}.builder"));
            let sleeper = hp.exec(&format!("cat {sleep_file}"));
            let worker = hp.exec(&format!("awk '{{print $4}}' /proc/{builder}/stat"));
            let comm = hp.exec(&format!("cat /proc/{worker}/comm"));
            assert_eq!(comm, "nix-daemon", "the build's parent is not the daemon");
            let daemon = hp.exec(&format!("cat {}", hp.field("nix_daemon_pid_file")));
            hp.exec(&format!("kill -9 {worker} {daemon} {builder} {sleeper}"));
        },
    );
    let error = diagnostic(&text, "Error");
    assert_clear(
        &error,
        &hp.address(),
        "`nix build`",
        &["unexpected end-of-file", "daemon", "lost"],
    );
    let state = resources(&tf);
    assert_eq!(strings(&state[0].2["out_paths"]), first, "{state:?}");
    assert!(narinfo(&first[0]).is_file());
    // The supervisor restarts the daemon; builds are fast from now on.
    wait_until("the nix-daemon restart", Duration::from_secs(30), || {
        hp.try_exec("NIX_REMOTE=daemon nix --extra-experimental-features nix-command store ping")
            .0
    });
    hp.exec(&format!("touch /tmp/{salt}.fast"));
    converge(&tf);
    let closure = strings(&resources(&tf)[0].2["closure_paths"]);
    assert_no_partial_uploads(&closure);
    tf.destroy();
    hp.exec(&format!("rm -f /tmp/{salt}.*"));
    error
}

fn clean_destroy_ssh_cut(version: &str) -> String {
    let hp = world().host(BUILDER);
    let conf_before = hp.exec("cat /etc/nix/nix.conf");
    // Compared whole after the destroy: the user's nix.conf is as it was.
    let restart = SlowRestart::new("destroy-cut");
    let nix = hp_nix_restarting(3, &restart.command(&daemon_restart_command(&hp)));
    let proxy = Proxy::start(&format!("{}:2222", hp.address()));
    let tf = Tf::new(version);
    tf.write(&builder_config(
        "127.0.0.1",
        proxy.port,
        &hp.host_key(),
        &nix,
        "",
    ));
    tf.apply();
    restart.reset(&hp);
    let text = run_with_fault(
        &tf,
        "destroy",
        &["destroy", "-auto-approve", "-no-color"],
        || restart.started(&hp),
        || proxy.cut_now(),
    );
    let error = diagnostic(&text, "Error");
    assert_clear(
        &error,
        &format!("127.0.0.1:{}", proxy.port),
        "step `restart Nix daemon`",
        &["connection lost", "closed", "reset"],
    );
    // The builder stays in the state until a destroy finishes.
    assert_eq!(resources(&tf).len(), 1);
    assert_no_partial_files(&hp, MANAGED_DIRS);
    restart.reset(&hp);
    tf.destroy();
    assert!(resources(&tf).is_empty());
    assert_eq!(hp.exec("cat /etc/nix/nix.conf"), conf_before);
    assert!(
        !hp.try_exec("id nbfault").0,
        "the build user is still there"
    );
    assert!(!hp.try_exec("test -e /etc/nix/nixbuild.conf").0);
    restart.reset(&hp);
    error
}

fn clean_destroy_crash(version: &str) -> String {
    let fresh = world().host(FRESH);
    let row = FreshRow::start(version, "destroy-crash");
    row.tf.apply();
    // The user's own line in nix.conf, which the clean destroy must keep.
    add_user_line(&fresh);
    let error = row.fail_in_restart(DESTROY, || row.crash());
    assert_eq!(resources(&row.tf).len(), 1, "the builder left the state");
    let _back = reboot(&fresh, row.proxy.port);
    assert_no_partial_files(&fresh, MANAGED_DIRS);
    assert_user_line_kept(&fresh);
    row.tf.destroy();
    assert!(resources(&row.tf).is_empty());
    assert_user_line_kept(&fresh);
    assert_user_file_kept(&fresh);
    assert!(
        !fresh.try_exec("id nbfault").0,
        "the build user is still there"
    );
    assert!(!fresh.try_exec("test -e /etc/nix/nixbuild.conf").0);
    error
}

/// `GET path` over plain HTTP/1.0 from this machine: the whole answer.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The systemd host (a booted container): the cache proxy needs systemd.
const SYSTEMD: &str = "sd";

fn cache_proxy_config(port: u16, listen_port: u16) -> String {
    let sd = world().host(SYSTEMD);
    format!(
        r#"{provider}
resource "nixbuild_cache_proxy" "p" {{
  host       = "127.0.0.1"
  listen     = "{addr}:{listen_port}"
  on_destroy = "clean"
  ssh {{
    port     = {port}
    host_key = {host_key}
  }}
  upstream {{
    url = {cache}
  }}
}}
"#,
        provider = provider_config(""),
        addr = sd.address(),
        host_key = hcl(&sd.host_key()),
        cache = hcl(world().json["cache"]["url"].as_str().unwrap()),
    )
}

fn cache_proxy_ssh_cut(version: &str) -> String {
    let sd = world().host(SYSTEMD);
    // Pristine: no nginx yet, so the install step runs for seconds (the
    // package manager) and the cut lands in it on every run.
    sd.reset();
    let listen_port = TcpListener::bind((sd.address().as_str(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start(&format!("{}:22", sd.address()));
    let tf = Tf::new(version);
    tf.write(&cache_proxy_config(proxy.port, listen_port));
    let log_len = sd.commands_log().len();
    let text = apply_with_fault(
        &tf,
        "cut",
        || {
            let log = sd.commands_log();
            log.get(log_len..).is_some_and(|new| {
                new.contains("apply") && new.contains("install nginx when missing")
            })
        },
        || {
            std::thread::sleep(Duration::from_millis(500));
            proxy.cut_now()
        },
    );
    let error = diagnostic(&text, "Error");
    assert_clear(
        &error,
        &format!("127.0.0.1:{}", proxy.port),
        "step `",
        &["connection lost", "closed", "reset"],
    );
    // A failed create is tainted with its pin: destroy (or the replacing
    // apply) cleans what it left.
    assert_tainted_with_pin(&tf, &sd);
    assert_no_partial_files(&sd, "/etc/nixbuild /etc/systemd/system");
    // The cut stops the install on the host too (the guard watches its
    // session's sshd): its package manager is gone within seconds, and the
    // re-apply does not meet dpkg's lock. Before, apt-get ran on to its end
    // and a re-apply meanwhile failed with "Could not get lock
    // /var/lib/dpkg/lock-frontend".
    wait_until(
        "the cut install's apt-get to be stopped",
        Duration::from_secs(30),
        || {
            !sd.try_exec("grep -qxE 'apt-get|apt|dpkg' /proc/[0-9]*/comm")
                .0
        },
    );
    converge(&tf);
    let answer = http_get(
        &format!("{}:{listen_port}", sd.address()),
        "/nix-cache-info",
    );
    assert!(
        answer.contains("StoreDir: /nix/store"),
        "the cache proxy does not serve after the re-apply: {answer}"
    );
    tf.destroy();
    assert!(
        !sd.try_exec("systemctl is-enabled nixbuild-cache-proxy.service")
            .0,
        "destroy left the unit enabled"
    );
    error
}

// ---------------------------------------------------------------------------
// The table

const DOC: &str = "docs/reliability.md";

fn render(results: &[(&Row, String)]) -> String {
    let mut table = String::new();
    for (row, seen) in results {
        table.push_str(&format!(
            "| {} | {} | `{}` | survived | {} |\n",
            row.operation,
            row.fault,
            row.host,
            abbreviate(seen)
        ));
    }
    format!(
        r#"# Reliability

<!-- generated by tests/faults.rs from a real run: do not edit. Regenerate
with `NIXBUILD_WRITE_RELIABILITY=1 cargo test --test faults`. -->

What happens when something breaks in the middle of an operation. Each row
is a test of `tests/faults.rs` (run by `cargo test`, so by `make test` and
CI): the operation runs through real Terraform against a real test host, the
fault is injected while it runs, and the row passes only if

- the apply fails with an error naming the host, the step and the cause (or
  plans with a warning where the read policy says so);
- the state holds exactly what is true on the host (a failed bootstrap is
  tainted, a failed update keeps the last applied values, a failed destroy
  keeps the resource);
- no partial file is left (no temporary file next to a managed file in
  `/etc/nix` or `/etc/nixbuild`, no narinfo without its NAR in the cache);
- nothing the user had is lost (their own `nix.conf` lines, an earlier push,
  an earlier machines file);
- once the fault clears, a re-apply converges and
  `terraform plan -detailed-exitcode` after it is empty.

The test fails when this table differs from what its run saw. The last column
is the diagnostic the run got, abbreviated (ports, hashes, temporary paths
and durations replaced).

## Fault table

| Operation | Fault | Host | Outcome | Error or warning seen |
|---|---|---|---|---|
{table}
## How the faults are made

- **SSH connection cut mid-command**: a TCP proxy in front of the host's
  sshd (tests/common `Proxy`) shuts every connection down while the
  operation's command runs on the host (the moment is read from the host's
  command log or the installer's log).
- **Every process of the host killed**: every process of the host's mount
  namespace except its listening sshd gets SIGKILL (SSH sessions, the
  installer, `nix-daemon` and its supervisor), while the proxy refuses new
  connections; the host comes back on the same address a second later.
- **`/etc/nix` full**: a 1 MiB tmpfs over the host's `/etc/nix` (inside its
  own mount namespace, with a copy of what was there), filled up; freed to
  clear the fault, unmounted afterwards.
- **`nix-daemon` killed mid-build**: the daemon and the worker running the
  build get SIGKILL while the build runs; the host's supervisor restarts the
  daemon.
- **Binary cache 500 / slow / reset**: a small HTTP fault proxy in the test in
  front of the world's nginx cache answers 500 to everything, trickles its
  answers to uploads (one byte every 2 s, against a `timeouts` of 45 s), or
  resets every upload after 64 bytes of its body.
- **Cachix API 502**: the same proxy in front of the Cachix API stand-in
  (tests/standins/cachix_api.py; no Cachix service is reachable from the
  test machines).

## Pairs left out

- Cache faults (500, slow, reset) with bootstrap, settings update,
  machines-file write, cache-proxy install or destroy: none of those talks to
  the binary cache (the cache proxy's upstream is asked by nginx on the host
  when a builder substitutes, not by the install).
- `nix-daemon` killed with anything but a push: only the push builds; the
  other operations restart the daemon themselves, and a killed daemon before
  that restart is what the restart does anyway.
- `/etc/nix` full with a push: a push writes nothing under `/etc`; a full
  `/nix` during a build is Nix's own error, passed through like any failed
  build (the `nix-daemon` row shows how a failed build is reported).
- Cachix 502 with anything but a builder using `cachix`: only a builder's
  `cachix` block asks the Cachix API at plan and apply time (a push with
  `cachix` calls the CLI on the builder, whose stand-in has no network
  fault to inject).
- The cache-proxy install with a crash or a full `/etc`: it needs the
  systemd host (`sd`, a booted container), where killing every process is
  stopping the container and a tmpfs over its `/etc` needs a privilege the
  container does not give; its steps run through the same SSH layer and the
  same atomic file writes as the builder's, which those rows cover. Its
  failed create keeping a tainted state is also tested in
  tests/cache_proxy.rs.
- Found by the cache-proxy row, and fixed: a cut connection did not stop
  what the install started on the host (the provider's stop reaches a
  command over a live connection only), so the package manager ran on and a
  re-apply meanwhile failed with dpkg's lock error. Every remote command's
  guard now watches its session's sshd process and stops the command when
  the connection is gone (tests/cut_connection.rs); the row checks that the
  package manager is gone within 30 s of the cut.
- Settings update or machines-file write with an SSH cut or a crash, and
  bootstrap with a full `/etc`: the same step runner and the same atomic
  writes as the rows above; a row each would add minutes, not a new path.

## Fuzzing

The parsers of remote output and user input are fuzzed with cargo-fuzz
(`make fuzz`, not in CI). What each target asserts, how the runs were made
and what they found is in [fuzzing.md](fuzzing.md); its property tests run
in CI. The latest full runs (copied from fuzzing.md by the suite):

{fuzz}"#,
        fuzz = fuzz_figures()
    )
}

/// The table of fuzzing.md's "Full runs" section (executions, coverage and
/// failing inputs per target), for the reliability doc.
fn fuzz_figures() -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/fuzzing.md"),
    )
    .expect("docs/fuzzing.md");
    let section = doc
        .split("\n### ")
        .find(|s| s.starts_with("Full runs"))
        .expect("fuzzing.md has a \"Full runs\" section");
    let table: Vec<&str> = section.lines().filter(|l| l.starts_with('|')).collect();
    assert!(
        table.len() > 2 && table.iter().skip(2).all(|row| row.ends_with("| 0 |")),
        "fuzzing.md's full runs table is missing or has failing inputs: {table:?}"
    );
    table.join("\n") + "\n"
}

#[test]
fn fault_table() {
    let only: Option<Vec<String>> = std::env::var("NBT_FAULT_ROWS")
        .ok()
        .map(|s| s.split(',').map(|r| r.trim().to_string()).collect());
    let versions = terraform_versions();
    let all = rows();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (i, row) in all.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == row.name))
        {
            continue;
        }
        let version = &versions[i % versions.len()];
        let _lock = exclusive(row.host);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (row.run)(version)));
        eprintln!(
            "[faults] {} ({version}): {:.1?}",
            row.name,
            started.elapsed()
        );
        match outcome {
            Ok(seen) => {
                eprintln!("[faults] {}: {seen}", row.name);
                results.push((row, seen));
            }
            Err(e) => {
                let message = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", row.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rows failed:\n{}",
        failures.join("\n\n")
    );
    if only.is_some() {
        return;
    }
    let doc = render(&results);
    let path = repo_root().join(DOC);
    if std::env::var_os("NIXBUILD_WRITE_RELIABILITY").is_some() {
        std::fs::write(&path, &doc).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "{DOC} differs from what this run saw; run `NIXBUILD_WRITE_RELIABILITY=1 cargo test --test faults` and commit it. This run:\n{doc}"
    );
}
