//! The stand-ins (tests/standins) refuse what the real tools refuse: each test
//! runs a stand-in directly on a test host, the way the provider's scripts
//! do, and checks the refusal the real tool's source shows (cited in each
//! stand-in's header). No Terraform here: the provider's side of the same
//! refusals is tested in builder.rs and cache_push.rs.

mod common;

use common::{exclusive, world};

/// A path to push: built on `host` from a nonce, so no cache has it yet.
fn new_path(host: &common::Host<'_>, name: &str) -> String {
    let nonce = format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    host.exec(&format!(
        "nix-build --no-out-link -E 'derivation {{ name = \"standin-{nonce}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce} > $out\" ]; }}' 2>/dev/null"
    ))
}

fn narinfo_in(dir: &str, path: &str) -> Option<String> {
    let hash = &path.trim_start_matches("/nix/store/")[..32];
    std::fs::read_to_string(format!("{dir}/{hash}.narinfo")).ok()
}

fn cache_dir() -> String {
    world().json["cache"]["dir"].as_str().unwrap().to_string()
}

fn private_dir() -> String {
    world().json["cache"]["private"]["dir"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `cachix push` and `cachix watch-store` without credentials fail like
/// cachix's getPushSecretRequired; an empty signing key and an unknown cache
/// fail too; nothing is uploaded.
#[test]
fn cachix_refuses_to_push_without_credentials() {
    let h1 = world().host("h1");
    let path = new_path(&h1, "nocreds");
    for command in [
        format!("echo {path} | env -u CACHIX_AUTH_TOKEN -u CACHIX_SIGNING_KEY HOME=/nonexistent cachix push public-cache"),
        "env -u CACHIX_AUTH_TOKEN -u CACHIX_SIGNING_KEY HOME=/nonexistent timeout 10 cachix watch-store public-cache".to_string(),
    ] {
        let (ok, out) = h1.try_exec(&format!("{command} 2>&1"));
        assert!(!ok, "{command}: succeeded without credentials:\n{out}");
        assert!(
            out.contains("Neither auth token nor signing key are present"),
            "{command}:\n{out}"
        );
    }
    let (ok, out) = h1.try_exec(&format!(
        "echo {path} | CACHIX_SIGNING_KEY= HOME=/nonexistent cachix push public-cache 2>&1"
    ));
    assert!(
        !ok && out.contains("A signing key must not be empty"),
        "{out}"
    );
    let (ok, out) = h1.try_exec(&format!(
        "echo {path} | CACHIX_AUTH_TOKEN=x cachix push no-such-cache 2>&1"
    ));
    assert!(
        !ok && out.contains("Binary cache no-such-cache does not exist"),
        "{out}"
    );
    assert!(narinfo_in(&cache_dir(), &path).is_none(), "{path} uploaded");
}

/// With a signing key the uploaded narinfo carries its signature; with a
/// token only it is uploaded unsigned (Cachix signs server-side).
#[test]
fn cachix_push_honours_the_signing_key() {
    let w = world();
    // A watch-store running on h1 would upload this path unsigned first.
    let _watch = exclusive("h1-watch-store");
    let h1 = w.host("h1");
    let cache = &w.json["cachix_api"]["caches"]["public-cache"];
    let secret = std::fs::read_to_string(cache["signing_key_file"].as_str().unwrap()).unwrap();
    let key_name = cache["public_key"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    let signed = new_path(&h1, "signed");
    let secret_b64 = secret.trim().split(':').nth(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, format!("CACHIX_SIGNING_KEY={secret_b64}\n")).unwrap();
    h1.exec(&format!(
        "set -a; . {}; echo {signed} | cachix push public-cache",
        env_file.display()
    ));
    let info = narinfo_in(&cache_dir(), &signed).expect("signed path uploaded");
    assert!(
        info.lines()
            .any(|l| l.starts_with(&format!("Sig: {key_name}:"))),
        "not signed by {key_name}:\n{info}"
    );
    let unsigned = new_path(&h1, "unsigned");
    h1.exec(&format!(
        "echo {unsigned} | CACHIX_AUTH_TOKEN=t cachix push public-cache"
    ));
    let info = narinfo_in(&cache_dir(), &unsigned).expect("unsigned path uploaded");
    assert!(
        !info.contains(&format!("Sig: {key_name}:")),
        "signed without a key:\n{info}"
    );
}

/// The private cache answers only with a valid token (Bearer or basic auth),
/// and the cachix stand-in can upload there only with a token.
#[test]
fn private_cache_needs_a_token() {
    let w = world();
    let url = w.json["cache"]["private"]["url"].as_str().unwrap();
    let token = w.json["cachix_api"]["token"].as_str().unwrap();
    let code = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .arg(format!("{url}/nix-cache-info"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(code(&[]), "401");
    assert_eq!(code(&["-H", "Authorization: Bearer wrong-token"]), "401");
    assert_eq!(code(&["-u", "x:wrong-token"]), "401");
    assert_eq!(
        code(&["-H", &format!("Authorization: Bearer {token}")]),
        "200"
    );
    assert_eq!(code(&["-u", &format!("x:{token}")]), "200");

    // A watch-store running on h1 would push this path to the public cache.
    let _watch = exclusive("h1-watch-store");
    let h1 = w.host("h1");
    let path = new_path(&h1, "private");
    let key = std::fs::read_to_string(
        w.json["cachix_api"]["caches"]["private-cache"]["signing_key_file"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, format!("CACHIX_SIGNING_KEY={}\n", key.trim())).unwrap();
    // A signing key alone cannot get past the cache's HTTP auth.
    let (ok, out) = h1.try_exec(&format!(
        "set -a; . {}; echo {path} | cachix push private-cache 2>&1",
        env_file.display()
    ));
    assert!(!ok, "uploaded to the private cache without a token:\n{out}");
    assert!(narinfo_in(&private_dir(), &path).is_none());
    std::fs::write(&env_file, format!("CACHIX_AUTH_TOKEN={token}\n")).unwrap();
    h1.exec(&format!(
        "set -a; . {}; echo {path} | cachix push private-cache",
        env_file.display()
    ));
    assert!(narinfo_in(&private_dir(), &path).is_some());
    assert!(narinfo_in(&cache_dir(), &path).is_none(), "went public");
}

/// `cachix watch-store` pushes what is added to the store after it started.
#[test]
fn cachix_watch_store_pushes_new_paths() {
    // Other tests of this file that add paths to h1 wait: watch-store would push them.
    let _watch = exclusive("h1-watch-store");
    let h1 = world().host("h1");
    let before = new_path(&h1, "before-watch");
    let log = tempfile::Builder::new()
        .prefix("watch-store-")
        .tempfile()
        .unwrap();
    let log_path = log.path().display().to_string();
    let pid_file = format!("{log_path}.pid");
    h1.exec(&format!(
        "setsid sh -c 'echo $$ >{pid_file}; exec env CACHIX_AUTH_TOKEN=t timeout 60 cachix watch-store public-cache' </dev/null >{log_path} 2>&1 & sleep 1.5"
    ));
    let after = new_path(&h1, "after-watch");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while narinfo_in(&cache_dir(), &after).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{after} not pushed within 30 s:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // `timeout` passes the TERM on to watch-store.
    h1.try_exec(&format!("kill \"$(cat {pid_file})\""));
    let _ = std::fs::remove_file(&pid_file);
    assert!(
        narinfo_in(&cache_dir(), &before).is_none(),
        "a path from before watch-store started was pushed"
    );
}

/// The installer stand-ins on a host without systemd: the Determinate one
/// refuses a plain install (it needs `--init none`); the official one with
/// `--daemon` installs Nix but starts no daemon.
#[test]
fn installers_refuse_or_start_no_daemon_without_systemd() {
    let w = world();
    let _fresh = exclusive("fresh");
    let fresh = w.host("fresh");
    let installers = &w.json["cache"]["installers"];
    fresh.reset();
    let fetch = |flavour: &str| {
        format!(
            "curl -fsSL -o /tmp/{flavour}.sh {}",
            installers[flavour].as_str().unwrap()
        )
    };
    let (ok, out) = fresh.try_exec(&format!(
        "{} && sh /tmp/determinate.sh install linux --no-confirm 2>&1",
        fetch("determinate")
    ));
    assert!(!ok, "determinate installed without systemd:\n{out}");
    assert!(
        out.contains("systemd was not active") && out.contains("--init none"),
        "{out}"
    );
    assert!(
        !fresh
            .try_exec("test -e /nix/var/nix/profiles/default/bin/nix")
            .0,
        "a refused install left Nix behind"
    );
    let out = fresh.exec(&format!(
        "{} && sh /tmp/official.sh --daemon --yes 2>&1",
        fetch("official")
    ));
    assert!(
        out.contains("I don't support your init system yet"),
        "{out}"
    );
    fresh.exec("/nix/var/nix/profiles/default/bin/nix --version");
    // (fresh shares the machine's PIDs: ask the socket, not ps.)
    assert!(
        !fresh
            .try_exec("NIX_REMOTE=daemon /nix/var/nix/profiles/default/bin/nix store ping")
            .0,
        "the official installer started a daemon without systemd"
    );
    fresh.reset();
}
