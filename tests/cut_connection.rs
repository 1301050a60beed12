//! A connection cut while a command runs on the host (issue 28's fault suite
//! found it): sshd ends the session, but without a terminal nothing signals
//! the command, so an `apt-get` ran on and held dpkg's lock against the
//! re-apply. The guard (src/scripts/guard.sh) watches its session's sshd
//! process and stops the command the way Terraform's stop does. Here through
//! the provider's SSH layer and a TCP proxy that drops the connection, as
//! root and as a sudo user running the step as root, on real test hosts.

mod common;

use std::time::{Duration, Instant};

use common::remote::{running, ssh_settings, wait_for};
use common::*;
use terraform_provider_nixbuild::ssh::Pool;

/// A step with a cleanup trap and a long child, as in tests/interrupt_ssh.rs:
/// records the child's pid in /tmp on the host (`$1` names the files).
const LONG_STEP: &str = r#"set -eu
marker=$1
trap 'echo cleaned >"/tmp/$marker.cleaned"; exit 143' TERM
sleep 300 &
echo "$!" >"/tmp/$marker.pid"
wait
"#;

#[test]
fn a_cut_connection_stops_its_command_on_the_host() {
    let w = world();
    let _h1 = exclusive("h1");
    let _h3 = exclusive("h3");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let salt = salt("cut", "connection");
    for (name, user, privileged) in [("h1", "root", false), ("h3", "deploy", true)] {
        let host = w.host(name);
        let proxy = Proxy::start(&format!("{}:22", host.address()));
        let marker = format!("{salt}-{name}");
        let (result, pid, cut_at) = runtime.block_on(async {
            let pool = Pool::new(2);
            let remote = pool
                .connect(&ssh_settings(
                    "127.0.0.1",
                    proxy.port,
                    user,
                    Duration::from_secs(30),
                ))
                .await
                .unwrap();
            let step = {
                let (remote, marker) = (remote.clone(), marker.clone());
                tokio::spawn(async move {
                    remote
                        .run_script("long step", LONG_STEP, &[&marker], None, privileged)
                        .await
                })
            };
            let pid =
                tokio::task::block_in_place(|| wait_for(&host, &format!("/tmp/{marker}.pid")));
            assert!(
                running(&host, &pid),
                "{name}: the step's child is not running"
            );
            let cut_at = Instant::now();
            proxy.cut_now();
            (step.await.unwrap(), pid, cut_at)
        });
        let message = format!("{:?}", result.expect_err("the cut step cannot succeed"));
        eprintln!("{name}: the cut step ended with: {message}");
        // The stop on the host: the script's trap runs and its child ends
        // (SIGTERM, then SIGKILL after the guard's grace), within the
        // guard's one-second watch plus that grace.
        let cleaned = wait_for(&host, &format!("/tmp/{marker}.cleaned"));
        assert_eq!(cleaned, "cleaned", "{name}: the script's trap did not run");
        while running(&host, &pid) {
            assert!(
                cut_at.elapsed() < Duration::from_secs(30),
                "{name}: the cut step's child (pid {pid}) still runs {:?} after the cut",
                cut_at.elapsed()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "{name}: the command ended on the host {:?} after the cut",
            cut_at.elapsed()
        );
        host.exec(&format!("rm -f /tmp/{marker}.*"));
    }
}
