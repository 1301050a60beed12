//! Process behaviour of the provider binary, started the way Terraform starts
//! it: it ignores SIGINT (Terraform stops it), and refuses to run without
//! Terraform's handshake cookie.

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
fn sigint_is_ignored_and_sigterm_stops_it() {
    let mut child = Command::new(common::provider_binary())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("TF_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The go-plugin handshake line: CORE|APP|tcp|ADDR|grpc|CERT
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("1|6|tcp|127.0.0.1:"), "handshake: {line}");

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
        stderr.contains("SIGINT ignored"),
        "no log line for the ignored SIGINT: {stderr}"
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

/// A client certificate as Terraform passes one (`PLUGIN_CLIENT_CERT`).
fn client_certificate(dir: &std::path::Path) -> String {
    let key = dir.join("client.key");
    let cert = dir.join("client.crt");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=terraform-test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    std::fs::read_to_string(cert).unwrap()
}

/// Started as Terraform starts it, the provider's gRPC socket (the one
/// Terraform's connection is accepted on) runs with TCP_NODELAY, as reported
/// by the provider's own getsockopt; without it every small answer waits ~40 ms
/// for a delayed ACK. The handshake line reaches stdout intact.
#[test]
fn grpc_connections_run_with_tcp_nodelay() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::provider_binary())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("PLUGIN_CLIENT_CERT", client_certificate(dir.path()))
        .env("TF_LOG_PROVIDER", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake: {line:?}");
    assert_eq!(&fields[..3], ["1", "6", "tcp"], "handshake: {line:?}");
    assert_eq!(fields[4], "grpc");
    assert!(
        fields[5].len() > 100,
        "handshake lost its server certificate: {line:?}"
    );
    let address = fields[3].to_string();
    let _connection = std::net::TcpStream::connect(&address).unwrap();

    // Read log lines until the provider reports the accepted connection.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (found_tx, found_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
            if v["@message"] == "gRPC connection accepted" {
                let _ = found_tx.send(v);
                return;
            }
        }
    });
    let accepted = found_rx.recv_timeout(Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let accepted = accepted.expect("the provider never reported the accepted gRPC connection");
    assert_eq!(
        accepted["tcp_nodelay"], 1,
        "TCP_NODELAY is off on Terraform's gRPC connection: {accepted}"
    );
    assert_eq!(
        accepted["port"].as_u64().map(|p| p.to_string()),
        address.rsplit_once(':').map(|(_, p)| p.to_string())
    );
}
