//! One Ctrl-C stops the work: a single SIGINT to a real `terraform` process
//! group (a shell job: a terminal's Ctrl-C signals the whole group, the
//! provider too) ends Terraform within [`LIMIT`], on every supported
//! Terraform version:
//!
//! - during the read of a host that is down (a data source retrying its
//!   connection, `connect_timeout = "5m"`);
//! - during a long build of a `nixbuild_cache_push` (a derivation that
//!   sleeps 120 s on the builder): the build's processes are gone from the
//!   builder afterwards.
//!
//! The same with the SIGINT to Terraform's process alone (as some CI runners
//! send it), where only Terraform's StopProvider reaches the provider: during
//! the build, and during the read of `terraform plan` (`terraform apply`
//! sends no StopProvider before its plan is done).
//!
//! Then the host is back (or the build fast) and a re-apply converges with
//! an empty plan after it. tests/interrupt_ssh.rs tests the provider's side
//! in-process, without Terraform.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

/// How long Terraform may take to exit after the SIGINT (CI kills a
/// cancelled job ~10 s after its signal).
const LIMIT: Duration = Duration::from_secs(10);

const BUILDER: &str = "h2";

/// Who gets the one SIGINT.
#[derive(Clone, Copy, Debug)]
enum Sigint {
    /// The job's process group: Terraform and the provider (a terminal's Ctrl-C).
    Group,
    /// Terraform's process alone: the provider hears of it as StopProvider.
    Terraform,
}

/// Send one SIGINT to `job` and return how long Terraform took to exit, or
/// `None` if it still ran 60 s later (then the job's group is killed).
fn interrupt(job: &mut Child, to: Sigint) -> Option<Duration> {
    let pid = job.id() as i32;
    assert!(
        job.try_wait().unwrap().is_none(),
        "terraform ended before the SIGINT"
    );
    let sent = Instant::now();
    // SAFETY: signals the process (group) this test started.
    let status = match to {
        Sigint::Group => unsafe { libc::killpg(pid, libc::SIGINT) },
        Sigint::Terraform => unsafe { libc::kill(pid, libc::SIGINT) },
    };
    assert_eq!(status, 0);
    let cap = Duration::from_secs(60);
    while sent.elapsed() < cap {
        if job.try_wait().unwrap().is_some() {
            return Some(sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::killpg(pid, libc::SIGKILL) };
    let _ = job.wait();
    None
}

/// Assert that the interrupted job ended within [`LIMIT`] with an
/// "Interrupted during step `STEP`" error.
fn assert_interrupted(tf: &Tf, name: &str, took: Option<Duration>, step: &str) {
    let (stdout, stderr) = tf.job_output(name);
    let version = &tf.version;
    let took = took.unwrap_or_else(|| {
        panic!("{version} {name}: terraform still ran 60 s after one SIGINT\n{stdout}\n{stderr}")
    });
    eprintln!("[timing] {version} {name}: terraform exited {took:.2?} after one SIGINT");
    assert!(
        took < LIMIT,
        "{version} {name}: terraform took {took:?} to exit after one SIGINT\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("Interrupted during step `{step}`")),
        "{version} {name}: no interrupted diagnostic\n{stdout}\n{stderr}"
    );
}

/// A local port nothing listens on (a host that is down).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn one_sigint_ends_the_read_of_a_dead_host() {
    let h1 = world().host("h1");
    for version in terraform_versions() {
        for (command, to) in [("apply", Sigint::Group), ("plan", Sigint::Terraform)] {
            let tf = Tf::real(&version);
            let port = free_port();
            tf.write(&format!(
                r#"{provider}
data "nixbuild_host" "back" {{
  host = "127.0.0.1"
  ssh {{
    port            = {port}
    host_key        = {key}
    connect_timeout = "5m"
  }}
}}

output "system" {{
  value = data.nixbuild_host.back.system
}}
"#,
                provider = provider_config(""),
                key = hcl(&h1.host_key()),
            ));
            let name = format!("{command}-sigint-to-{to:?}").to_lowercase();
            let mut job = tf.spawn_job(&name, &[command, "-no-color", "-input=false"]);
            std::thread::sleep(Duration::from_secs(6));
            let took = interrupt(&mut job, to);
            assert_interrupted(&tf, &name, took, "connect");
            // The host comes back: the configuration applies, then plans nothing.
            let _back = Proxy::start_on(port, &format!("{}:22", h1.address()));
            tf.apply();
            assert_eq!(tf.output("system"), "x86_64-linux");
            tf.assert_no_changes();
        }
    }
}

/// A flake whose one package sleeps `/tmp/SALT.fast` away: 120 s unless that
/// file exists on the builder. Its builder records its pid and its sleep's.
fn slow_flake(dir: &std::path::Path, salt: &str) -> std::path::PathBuf {
    let flake = dir.join("slow");
    std::fs::create_dir_all(&flake).unwrap();
    std::fs::write(flake.join("salt.txt"), salt).unwrap();
    std::fs::write(
        flake.join("flake.nix"),
        r#"{
  outputs = { self }:
    let
      system = "x86_64-linux";
      salt = builtins.readFile ./salt.txt;
    in {
      packages.${system}.slow = derivation {
        name = "nbt-slow";
        inherit system salt;
        builder = "/bin/sh";
        args = [ "-c" ''
          echo "$$" >/tmp/${salt}.builder
          if [ ! -e /tmp/${salt}.fast ]; then
            /bin/sleep 120 &
            echo "$!" >/tmp/${salt}.sleep
            wait
          fi
          echo slow >$out
        '' ];
      };
    };
}
"#,
    )
    .unwrap();
    flake
}

/// Whether process `pid` on `host` runs (gone and zombies do not: the test
/// hosts never reap orphans).
fn running(host: &Host, pid: &str) -> bool {
    let (found, state) = host.try_exec(&format!(
        "sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1"
    ));
    found && !state.is_empty() && state != "Z"
}

fn wait_for_file(host: &Host, path: &str, limit: Duration) -> Option<String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let (found, text) = host.try_exec(&format!("cat {path} 2>/dev/null"));
        if found && !text.is_empty() {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn one_sigint_ends_a_long_build_on_the_builder() {
    let builder = world().host(BUILDER);
    for version in terraform_versions() {
        for to in [Sigint::Group, Sigint::Terraform] {
            let tf = Tf::real(&version);
            let salt = salt(&format!("interrupt-build-{to:?}"), &version);
            let flake = slow_flake(tf.dir.path(), &salt);
            tf.write(&format!(
                r#"{provider}
resource "nixbuild_cache_push" "slow" {{
  host         = {host}
  source       = {flake}
  installables = ["slow"]
  store {{
    uri = {cache}
  }}
}}
"#,
                provider = provider_config(""),
                host = hcl(&builder.address()),
                flake = hcl(flake.to_str().unwrap()),
                cache = hcl(world().json["cache"]["url"].as_str().unwrap()),
            ));
            let name = format!("apply-sigint-to-{to:?}").to_lowercase();
            let mut job = tf.spawn_job(&name, &["apply", "-auto-approve", "-no-color"]);
            let sleeper = wait_for_file(
                &builder,
                &format!("/tmp/{salt}.sleep"),
                Duration::from_secs(90),
            );
            let Some(sleeper) = sleeper else {
                let _ = interrupt(&mut job, Sigint::Group);
                let (stdout, stderr) = tf.job_output(&name);
                panic!("{version}: the build never started\n{stdout}\n{stderr}");
            };
            let build = builder.exec(&format!("cat /tmp/{salt}.builder"));
            assert!(running(&builder, &sleeper) && running(&builder, &build));
            std::thread::sleep(Duration::from_secs(2));
            let took = interrupt(&mut job, to);
            assert_interrupted(&tf, &name, took, "nix build");
            // The build is gone from the builder: its shell and its sleep.
            let started = Instant::now();
            while running(&builder, &sleeper) || running(&builder, &build) {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{version} {name}: the build still runs on the builder (builder pid {build}, sleep pid {sleeper})"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            // No process of that derivation is left either (a bracket in the
            // pattern keeps the grep itself out of the list).
            let (_, left) = builder.try_exec(&format!(
                "grep -ls -- '[{}]{}' /proc/[0-9]*/cmdline || true",
                &salt[..1],
                &salt[1..]
            ));
            assert!(
                left.trim().is_empty(),
                "{version} {name}: left running: {left}"
            );
            // The build is fast from now on: the same configuration converges.
            builder.exec(&format!("touch /tmp/{salt}.fast"));
            tf.apply();
            tf.assert_no_changes();
            builder.exec(&format!("rm -f /tmp/{salt}.*"));
        }
    }
}
