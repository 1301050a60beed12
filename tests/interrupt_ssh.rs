//! Terraform's stop (`interrupt::stop`, which the plugin layer calls on
//! StopProvider), called in-process, against real test hosts through the
//! provider's SSH layer: connect retries end at once; a remote command, as
//! root and as a sudo user running it as root, is ended on the host with its
//! cleanup trap and its children; nothing starts after the stop. The stop is
//! process-wide and final, so this test binary holds this one test only
//! (tests/interrupt.rs drives the same through a real `terraform`).

mod common;

use std::time::{Duration, Instant};

use common::remote::{file, running, ssh_settings as settings, wait_for};
use common::*;
use terraform_provider_nixbuild::interrupt;
use terraform_provider_nixbuild::ssh::exec::STOP_WAIT;
use terraform_provider_nixbuild::ssh::{Pool, Remote, SshError};

/// A step with a cleanup trap and a long child: records who runs it and the
/// child's pid in /tmp on the host (`$1` names the files), then waits.
const LONG_STEP: &str = r#"set -eu
marker=$1
trap 'echo cleaned >"/tmp/$marker.cleaned"; exit 143' TERM
id -u >"/tmp/$marker.uid"
sleep 300 &
echo "$!" >"/tmp/$marker.pid"
wait
"#;

fn interrupted_step(result: Result<impl std::fmt::Debug, SshError>) -> (String, String) {
    match result {
        Err(e @ SshError::Interrupted { .. }) => (e.step().unwrap().to_string(), e.to_string()),
        other => panic!("expected an interruption, got {other:?}"),
    }
}

#[test]
fn a_stop_ends_connect_retries_and_remote_commands_on_the_host() {
    let w = world();
    let _h1 = exclusive("h1");
    let _h3 = exclusive("h3");
    let (h1, h3) = (w.host("h1"), w.host("h3"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = std::sync::Arc::new(Pool::new(4));
        let minute = Duration::from_secs(60);
        let root = pool
            .connect(&settings(&h1.address(), 22, "root", minute))
            .await
            .unwrap();
        // A sudo user: the step runs as root through `sudo -n`.
        let deploy = pool
            .connect(&settings(&h3.address(), 22, "deploy", minute))
            .await
            .unwrap();
        let salt = salt("interrupt", "ssh");
        let (a, b) = (format!("{salt}-root"), format!("{salt}-sudo"));
        let run = |remote: &Remote, step: &'static str, marker: &str, privileged: bool| {
            let remote = remote.clone();
            let marker = marker.to_string();
            tokio::spawn(async move {
                remote
                    .run_script(step, LONG_STEP, &[&marker], None, privileged)
                    .await
            })
        };
        let as_root = run(&root, "long step", &a, false);
        let through_sudo = run(&deploy, "long privileged step", &b, true);
        // Nothing listens on port 1: every attempt is refused at once, and
        // the connect keeps retrying (connect_timeout 5m).
        let dead = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.connect(&settings("127.0.0.1", 1, "root", Duration::from_secs(300)))
                    .await
            })
        };
        let pid_a = tokio::task::block_in_place(|| wait_for(&h1, &format!("/tmp/{a}.pid")));
        let pid_b = tokio::task::block_in_place(|| wait_for(&h3, &format!("/tmp/{b}.pid")));
        assert_eq!(
            wait_for(&h3, &format!("/tmp/{b}.uid")),
            "0",
            "sudo runs it as root"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!dead.is_finished(), "the dead host's connect gave up early");

        let stopped = Instant::now();
        interrupt::stop();
        let (step, message) = interrupted_step(dead.await.unwrap().map(|_| ()));
        let connect_took = stopped.elapsed();
        eprintln!("connect ended {connect_took:?} after the stop: {message}");
        assert_eq!(step, "connect");
        assert!(message.contains("root@127.0.0.1:1"), "{message}");
        assert!(
            connect_took < Duration::from_millis(500),
            "connect retries went on for {connect_took:?} after the stop"
        );
        for (result, host, marker, pid, want_step) in [
            (as_root.await.unwrap(), &h1, &a, &pid_a, "long step"),
            (
                through_sudo.await.unwrap(),
                &h3,
                &b,
                &pid_b,
                "long privileged step",
            ),
        ] {
            let took = stopped.elapsed();
            let (step, message) = interrupted_step(result);
            eprintln!("{want_step} ended {took:?} after the stop: {message}");
            assert_eq!(step, want_step);
            assert!(message.contains(&host.address()), "{message}");
            assert!(message.contains("ended"), "{message}");
            assert!(took < STOP_WAIT, "{want_step}: {took:?} after the stop");
            assert_eq!(
                file(host, &format!("/tmp/{marker}.cleaned")).as_deref(),
                Some("cleaned"),
                "{want_step}: the script's trap did not run"
            );
            assert!(
                !running(host, pid),
                "{want_step}: its child (pid {pid}) still runs"
            );
            host.exec(&format!("rm -f /tmp/{marker}.*"));
        }
        // After the stop nothing starts: no command, no connection.
        let started = Instant::now();
        let after = root.run_script("after", "echo ran", &[], None, false).await;
        let (step, message) = interrupted_step(after);
        assert_eq!(step, "after");
        assert!(message.contains("not started"), "{message}");
        let fresh = pool
            .connect(&settings(&h1.address(), 22, "nobody-else", minute))
            .await;
        interrupted_step(fresh.map(|_| ()));
        assert!(started.elapsed() < Duration::from_millis(200));
    });
}
