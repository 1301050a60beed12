//! Reaching test hosts through the provider's own SSH layer, in-process (for
//! tests below Terraform: stops, cut connections), and watching what a
//! command left running on a host.

use std::time::{Duration, Instant};

use terraform_provider_nixbuild::ssh::auth::{decode_key, read_key_file, Credentials};
use terraform_provider_nixbuild::ssh::settings::Endpoint;
use terraform_provider_nixbuild::ssh::Settings;

use super::{world, Host};

/// Settings for `user@host:port` with the world's ed25519 client key and no
/// pinned host key.
pub fn ssh_settings(host: &str, port: u16, user: &str, connect_timeout: Duration) -> Settings {
    let pem = read_key_file(&world().key("ed25519")).unwrap();
    Settings {
        endpoint: Endpoint {
            host: host.into(),
            port,
            user: user.into(),
        },
        credentials: Credentials {
            keys: vec![decode_key(&pem, None).unwrap()],
            agent: false,
        },
        host_key: None,
        connect_timeout,
        bastion: None,
    }
}

/// Whether `pid` names a process that runs on `host` (not gone, not a
/// zombie: the test hosts' orphans are never reaped).
pub fn running(host: &Host, pid: &str) -> bool {
    let (found, state) = host.try_exec(&format!(
        "sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1"
    ));
    found && !state.is_empty() && state != "Z"
}

/// The text of `path` on `host`, if it exists and is not empty.
pub fn file(host: &Host, path: &str) -> Option<String> {
    let (found, text) = host.try_exec(&format!("cat {path} 2>/dev/null"));
    (found && !text.is_empty()).then_some(text)
}

/// The text of `path` on `host` once it exists (within 30 s).
pub fn wait_for(host: &Host, path: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(text) = file(host, path) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} never appeared on {}",
            host.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
