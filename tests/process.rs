//! Process behaviour of the provider binary, started the way Terraform starts
//! it: it survives SIGINT (which stops the work in flight; Terraform ends the
//! process when it is done), and refuses to run without Terraform's handshake
//! cookie.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const COOKIE: (&str, &str) = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

fn alive(pid: u32) -> bool {
    // A zombie still answers kill -0; read its state instead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) != Some("Z"))
        .unwrap_or(false)
}

#[test]
fn sigint_stops_the_work_not_the_provider_and_sigterm_ends_it() {
    let mut child = Command::new(common::provider_binary())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("TF_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The go-plugin handshake line: CORE|APP|unix|SOCKET|grpc|CERT
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("1|6|unix|/"), "handshake: {line}");

    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the provider died on SIGINT"
    );
    assert!(alive(pid));

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "SIGTERM should end it");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("SIGINT: stopping the work in flight"),
        "no log line for the SIGINT: {stderr}"
    );
    // Every stderr line is an hclog JSON object.
    for l in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(
            v["@level"].is_string() && v["@message"].is_string() && v["@timestamp"].is_string()
        );
    }
}

#[test]
fn refuses_to_run_outside_terraform() {
    let out = Command::new(common::provider_binary())
        .env_remove(COOKIE.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Terraform plugin"));
    assert!(out.stdout.is_empty());
}
