//! Remote scripts, kept as `.sh` files so shellcheck lints them, and included at
//! compile time. Rust passes them values only as quoted positional arguments or
//! on stdin.

/// Write stdin to a file atomically with a mode: `upload.sh PATH MODE`.
pub const UPLOAD: &str = include_str!("upload.sh");

/// Prepended to a check: the fingerprint of what `nix`'s own facts depend on;
/// sets `nix_unchanged=yes` when it equals the first argument (shifted off).
pub const NIX_FINGERPRINT: &str = include_str!("nix_fingerprint.sh");

/// Describe a host as `key=value` lines (system, CPUs, Nix version, …).
pub const PROBE: &str = include_str!("probe.sh");

/// Install Nix by a method unless present: `install_nix.sh METHOD URL DAEMON`.
pub const INSTALL_NIX: &str = include_str!("install_nix.sh");

/// Write the managed Nix config from stdin and include it from nix.conf.
pub const WRITE_CONFIG: &str = include_str!("write_config.sh");

/// `account_owner NAME RECORD_DIR`: who owns an account (created, adopted,
/// foreign, absent). Prepended to the scripts that call it.
pub const ACCOUNT: &str = include_str!("account.sh");

/// The build user and the record of ownership:
/// `build_user.sh owner|ensure|claim|release NAME RECORD_DIR ADOPT OWNER_ID
/// ADOPT_OWNER_ID`; authorized_keys
/// on stdin for `ensure`. Needs [`ACCOUNT`] prepended.
pub const BUILD_USER: &str = include_str!("build_user.sh");

/// The host's owner claim (which builder resource owns its managed objects):
/// `host_owner.sh claim|release FILE OWNER_ID ADOPT_OWNER_ID BUILD_USER`.
pub const HOST_OWNER: &str = include_str!("host_owner.sh");

/// Cachix CLI and the watch-store service; env file on stdin.
pub const CACHIX: &str = include_str!("cachix.sh");

/// Stop the watch-store service at destroy and wait until it has uploaded
/// its queue: `watch_store_stop.sh UNIT SECONDS RESTART`.
pub const WATCH_STORE_STOP: &str = include_str!("watch_store_stop.sh");

/// Restart the Nix daemon (systemd or a user command).
pub const RESTART_DAEMON: &str = include_str!("restart_daemon.sh");

/// Read-only report of a builder's managed pieces. Needs [`ACCOUNT`] prepended.
pub const BUILDER_CHECK: &str = include_str!("builder_check.sh");

/// Remove the managed Nix config and its include line.
pub const BUILDER_CLEAN: &str = include_str!("builder_clean.sh");

/// Create a file from stdin without replacing another one: `file_create.sh PATH MODE`
/// (exit 3: PATH exists with other content, untouched).
pub const FILE_CREATE: &str = include_str!("file_create.sh");

/// Print a file: `file_read.sh PATH` (exit 3: no such file).
pub const FILE_READ: &str = include_str!("file_read.sh");

/// Remove a file if its SHA-256 is still the given one: `file_remove.sh PATH SHA256`
/// (prints `removed`, `missing` or `changed`).
pub const FILE_REMOVE: &str = include_str!("file_remove.sh");

/// `nix` with flakes enabled, wherever Nix is installed: `nix.sh ARGS...`.
pub const NIX: &str = include_str!("nix.sh");

/// `nix copy --to URI`, signing with a 0600 key file it removes afterwards:
/// `store_push.sh URI KEYFILE PATH...`.
pub const STORE_PUSH: &str = include_str!("store_push.sh");

/// `cachix push NAME` with paths on stdin and credentials from a 0600 file:
/// `cachix_push.sh CREDENTIALS_FILE NAME`.
pub const CACHIX_PUSH: &str = include_str!("cachix_push.sh");

/// Content-addressed `source` trees: `source.sh has|unpack HASH`.
pub const SOURCE: &str = include_str!("source.sh");

/// `nb_apt_install PACKAGE SERVICE` (a package installed without starting its
/// service; the temporary policy-rc.d never outlives the script, see the file),
/// prepended to [`CACHE_PROXY`] and [`MONITORING`].
pub const APT_INSTALL: &str = include_str!("apt_install.sh");

/// The nginx binary-cache proxy service (with [`APT_INSTALL`]):
/// `cache_proxy.sh apply|check|clean CONF_DIR UNIT CACHE_DIR` (files on stdin for `apply`).
pub const CACHE_PROXY: &str = concat!(
    include_str!("apt_install.sh"),
    include_str!("cache_proxy.sh")
);

/// The builder's monitoring (node exporter + Nix metrics timer; with [`APT_INSTALL`]):
/// `monitoring.sh apply|check|clean LISTEN`, [`NIX_METRICS`] on stdin for `apply`.
pub const MONITORING: &str = concat!(
    include_str!("apt_install.sh"),
    include_str!("monitoring.sh")
);

/// Nix facts for the node exporter's textfile collector: `nix_metrics.sh DIR`.
pub const NIX_METRICS: &str = include_str!("nix_metrics.sh");

/// The first step of a push in one remote command (source lease, build,
/// closure): `push_build.sh NIX_SCRIPT SOURCE_SCRIPT HASH LEASE SECONDS KEEP
/// FLAKE NARGS ARGS... INSTALLABLES...`.
pub const PUSH_BUILD: &str = include_str!("push_build.sh");

/// The builder's post-build hook and push worker, installed on the host:
/// no arguments (Nix runs it with `OUT_PATHS`) queues the paths; `run` signs
/// and copies what is queued.
pub const PUSH_HOOK: &str = include_str!("push_hook.sh");

/// Installs, checks and removes [`PUSH_HOOK`] with its configuration and units:
/// `push_hook_setup.sh apply|check|clean` (files on stdin for `apply`).
pub const PUSH_HOOK_SETUP: &str = include_str!("push_hook_setup.sh");

/// The builder's root-only Nix credential files (access tokens, netrc):
/// `nix_credentials.sh apply|check|clean CONF_PATH NETRC_PATH`, contents on stdin.
pub const NIX_CREDENTIALS: &str = include_str!("nix_credentials.sh");

/// The builder's periodic garbage collection (systemd timer):
/// `gc.sh probe|apply|check|clean SCHEDULE DELETE_OLDER_THAN`.
pub const GC: &str = include_str!("gc.sh");

/// Read-only health report of a builder (the `nixbuild_builder_status` data
/// source): `builder_status.sh BUILD_USER`.
pub const BUILDER_STATUS: &str = include_str!("builder_status.sh");

/// Runs several scripts as one remote command (src/ssh/steps.rs appends the
/// scripts as functions and one `nb_step` line per step).
pub const STEPS: &str = include_str!("steps.sh");

/// `nixos=yes` on a NixOS host (the first step of a builder apply).
pub const NIXOS_CHECK: &str = include_str!("nixos_check.sh");

/// Wraps every remote command so that Terraform's stop ends it on the host:
/// `guard.sh TOKEN GRACE COMMAND` (src/ssh/exec.rs).
pub const GUARD: &str = include_str!("guard.sh");

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// Terraform's stop ends a remote command with SIGTERM (guard.sh). A
    /// shell killed by a signal it does not trap skips its EXIT trap: every
    /// script that cleans up there turns SIGTERM into an exit.
    /// (`nix_metrics.sh` runs from a timer on the host, never under a stop.)
    #[test]
    fn scripts_that_clean_up_on_exit_exit_on_sigterm() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripts");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".sh") || name == "nix_metrics.sh" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let cleans_up = text
                .lines()
                .any(|l| l.trim_start().starts_with("trap ") && l.trim_end().ends_with(" EXIT"));
            if cleans_up {
                checked += 1;
                assert!(
                    text.contains("trap 'exit 143' TERM"),
                    "{name} cleans up in an EXIT trap but dies on SIGTERM without it"
                );
            }
        }
        assert!(
            checked >= 10,
            "only {checked} scripts with EXIT traps found"
        );
    }

    /// `restart_daemon.sh` run by the local /bin/sh, with a stand-in `nix`
    /// first on PATH that fails its first `fails` pings and counts them all
    /// (the acceptance tests restart real daemons; this pins the wait's
    /// logic). Returns (exit code, stdout, pings, what the custom command
    /// left).
    fn restart(custom: &str, daemon: &str, fails: u32) -> (i32, String, u32, String) {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("pings");
        let fake = dir.path().join("nix");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho x >>'{count}'\n[ \"$(wc -l <'{count}')\" -gt {fails} ] || {{ echo 'error: cannot connect to socket' >&2; exit 1; }}\n",
                count = count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                super::RESTART_DAEMON,
                "restart_daemon.sh",
                custom,
                daemon,
            ])
            .env("PATH", path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let pings = std::fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .count() as u32;
        let left = std::fs::read_to_string(dir.path().join("ran")).unwrap_or_default();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            pings,
            left,
        )
    }

    #[test]
    fn a_single_user_nix_is_not_waited_for() {
        let (code, out, pings, left) = restart("echo done > ran", "false", 0);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("running daemon_restart_command"), "{out}");
        assert_eq!(left, "done\n");
        assert_eq!(pings, 0, "{out}");
    }

    #[test]
    fn a_daemon_that_answers_at_once_is_pinged_once() {
        let (code, out, pings, _) = restart("true", "true", 0);
        assert_eq!(code, 0, "{out}");
        assert_eq!(pings, 1, "{out}");
        assert!(!out.contains("answered after"), "{out}");
    }

    /// The socket stays as it is (no daemon here makes it anew): a ping
    /// every half second until one answers, not one per poll.
    #[test]
    fn a_daemon_that_comes_up_late_is_waited_for() {
        let (code, out, pings, _) = restart("true", "true", 2);
        assert_eq!(code, 0, "{out}");
        assert_eq!(pings, 3, "{out}");
        assert!(out.contains("nix-daemon answered after 44 polls"), "{out}");
    }

    /// Issue 28: the installer download followed an https:// URL's redirect
    /// to plain http:// (curl's `--proto` covers the first request only).
    /// A local HTTPS server (a throwaway certificate, trusted through
    /// CURL_CA_BUNDLE) redirects to a plain HTTP one: refused; a redirect to
    /// https:// still works.
    #[test]
    fn the_installer_download_never_follows_https_to_http() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let server = r#"
import http.server, ssl, sys, threading
ports = {}
class R(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/to-http":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:%d/installer" % ports["http"])
            self.end_headers()
        elif self.path == "/to-https":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:%d/installer" % ports["https"])
            self.end_headers()
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"echo installer\n")
    def log_message(self, *a):
        pass
tls = http.server.HTTPServer(("127.0.0.1", 0), R)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
plain = http.server.HTTPServer(("127.0.0.1", 0), R)
ports["https"], ports["http"] = tls.server_port, plain.server_port
threading.Thread(target=plain.serve_forever, daemon=True).start()
print(tls.server_port, flush=True)
tls.serve_forever()
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", server])
            .arg(&cert)
            .arg(&key)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().to_string();
        let start = super::INSTALL_NIX.find("fetch() {").unwrap();
        let end = start + super::INSTALL_NIX[start..].find("\n}\n").unwrap() + 3;
        let script = format!(
            "set -eu\n{}fetch \"$1\" \"$2\"\n",
            &super::INSTALL_NIX[start..end]
        );
        let fetch = |path: &str| {
            let out = dir.path().join("installer");
            let _ = std::fs::remove_file(&out);
            let run = std::process::Command::new("sh")
                .args(["-c", &script, "sh"])
                .arg(format!("https://127.0.0.1:{port}{path}"))
                .arg(&out)
                .env("CURL_CA_BUNDLE", &cert)
                .output()
                .unwrap();
            (
                run.status.success(),
                std::fs::read_to_string(&out).unwrap_or_default(),
            )
        };
        let (ok, body) = fetch("/to-https");
        assert!(
            ok && body == "echo installer\n",
            "an https redirect works: {body}"
        );
        let (ok, _) = fetch("/to-http");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!ok, "followed https:// to http://");
    }
}
