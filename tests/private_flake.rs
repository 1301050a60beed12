//! Acceptance test of `nix.netrc` and `nix.access_tokens` on `nixbuild_builder`
//! (issue 14, private flakes and caches) on every supported Terraform version,
//! with pushes by `nixbuild_cache_push` from the builder h3:
//! - a flake served as an HTTP tarball by the world's private nginx location
//!   (HTTP basic auth; the password must be a token listed in the Cachix API
//!   stand-in's tokens file, as for the private cache): without credentials
//!   the push fails with Nix's 401, with `nix.netrc` it succeeds;
//! - the same location as a private binary cache: the build user substitutes
//!   from it through the daemon with the netrc, and gets a 401 without it;
//! - a `github:` flake of a private repository (a GitHub tarball API
//!   stand-in over HTTPS): GitHub's 404 without, success with
//!   `nix.access_tokens`.
//!
//! The secrets are in no TF_LOG=trace log, no remote command line, not in
//! sshd's log, not in the private state; rotation, drift, removal and
//! `on_destroy = "clean"` are checked on the host.

mod common;
use common::daemon_restart_command;

use std::path::{Path, PathBuf};

use common::{exclusive, fixture, hcl, provider_config, salt, terraform_versions, world, Tf};
use serde_json::Value;

const BUILDER: &str = "h3";
const NETRC: &str = "/etc/nix/nixbuild.netrc";
const CREDENTIALS: &str = "/etc/nix/nixbuild-credentials.conf";

/// Make the private nginx location (through the API stand-in) accept `token`.
fn register_token(token: &str) {
    use std::io::Write;
    let path = world().json["cachix_api"]["tokens_file"].as_str().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{token}").unwrap();
}

/// The private location as `localhost`: the world gives every Nix host an
/// `/etc/nix/netrc` (Nix's default `netrc-file`) for `127.0.0.1`, which must
/// not let the builder in without this resource's netrc.
/// `bytes` random bytes as hex (tokens and revisions of this run).
fn random_hex(bytes: usize) -> String {
    common::sh(
        Path::new("/"),
        &format!("head -c {bytes} /dev/urandom | od -An -tx1 | tr -d ' \\n'"),
    )
}

/// Two store paths that only the private cache has, signed: built on h1 and
/// copied there with h1's netrc from the world. Returns them and the public
/// key that verifies them.
fn private_cache_paths(dir: &Path, run: &str) -> ([String; 2], String) {
    let h1 = world().host("h1");
    let (secret, public) = (dir.join("cache.sk"), dir.join("cache.pk"));
    h1.exec(&format!(
        "nix-store --generate-binary-cache-key nbt-private-cache-1 {} {}",
        secret.display(),
        public.display()
    ));
    let paths = ["one", "two"].map(|name| {
        h1.exec(&format!(
            "nix-build --no-out-link -E 'derivation {{ name = \"nbt-private-{name}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {run}-{name} > $out\" ]; }}' 2>/dev/null"
        ))
    });
    h1.exec(&format!(
        "nix copy --to 'http://127.0.0.1:{}?secret-key={}' {} {}",
        private_port(),
        secret.display(),
        paths[0],
        paths[1]
    ));
    (
        paths,
        std::fs::read_to_string(public).unwrap().trim().to_string(),
    )
}

fn private_port() -> String {
    world().json["cache"]["private"]["url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

/// `nix-store -r PATH` as the build user, through the daemon (which may be
/// restarting right after an apply: retried while its socket refuses).
fn substitute_as_build_user(path: &str) -> (bool, String) {
    let host = world().host(BUILDER);
    for _ in 0..50 {
        let (ok, out) = host.try_exec(&format!(
            "su -s /bin/sh nixbuild -c 'nix-store -r {path}' 2>&1"
        ));
        if ok || !out.contains("cannot connect to socket") {
            return (ok, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the Nix daemon on {BUILDER} did not come back");
}

/// The private location's access log has a request for `path`'s narinfo
/// answered with `status`.
fn private_log_has(path: &str, status: &str) -> bool {
    let log = std::fs::read_to_string(
        world().json["cache"]["private"]["access_log"]
            .as_str()
            .unwrap(),
    )
    .unwrap_or_default();
    let hash = &path["/nix/store/".len()..][..32];
    log.contains(&format!("\"GET /{hash}.narinfo HTTP/1.1\" {status} "))
}

fn private_url() -> String {
    world().json["cache"]["private"]["url"]
        .as_str()
        .unwrap()
        .replace("//127.0.0.1:", "//localhost:")
}

/// A copy of the fixture flake as `NAME.tar.gz` in the private location;
/// returns its URL.
fn publish_tarball(parent: &Path, name: &str) -> String {
    let flake = fixture(parent, name);
    let dir = PathBuf::from(world().json["cache"]["private"]["dir"].as_str().unwrap());
    let tarball = dir.join(format!("{name}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(flake.parent().unwrap())
        .arg("flake")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    format!("{}/{name}.tar.gz", private_url())
}

/// HTTP status of a GET with optional basic-auth credentials.
fn http_status(url: &str, user_password: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url]);
    if let Some(credentials) = user_password {
        // curl reads the credentials from its config on stdin, not argv.
        cmd.args(["-K", "-"]);
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "user = \"{credentials}\"").unwrap();
        return String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    }
    String::from_utf8(cmd.output().unwrap().stdout).unwrap()
}

/// The builder on h3 and one push per (key, flake URL); `netrc`: set
/// `nix.netrc` from the sensitive variable.
/// `cache_key`: trusted for the private cache, the builder's substituter.
fn config(pushes: &[(&str, &str)], netrc: bool, cache_key: &str) -> String {
    let w = world();
    let host = w.host(BUILDER);
    let pushes: Vec<String> = pushes
        .iter()
        .map(|(k, url)| format!("{k} = {}", hcl(url)))
        .collect();
    format!(
        r#"{provider}
variable "netrc" {{
  type      = string
  default   = null
  sensitive = true
}}

variable "github_token" {{
  type      = string
  default   = null
  sensitive = true
}}

resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
    {netrc}
    access_tokens          = var.github_token == null ? null : {{ {github} = var.github_token }}
    substituters           = [{substituter}]
    trusted_public_keys    = [{cache_key}]
  }}
}}

resource "nixbuild_cache_push" "p" {{
  for_each     = {{ {pushes} }}
  host         = nixbuild_builder.b.host
  flake        = each.value
  installables = ["app"]
  # The plan's evaluation would fetch the flake with the credentials the
  # builder has at plan time: this test checks those of the apply's build.
  evaluate_at_plan = false
  ssh {{
    host_key = nixbuild_builder.b.host_key
  }}
  store {{
    uri = {cache}
  }}
  depends_on = [nixbuild_builder.b]
}}

output "out_paths" {{
  value = {{ for k, p in nixbuild_cache_push.p : k => p.out_paths }}
}}
"#,
        provider = provider_config(""),
        address = hcl(&host.address()),
        restart = hcl(&daemon_restart_command(&host)),
        pushes = pushes.join(", "),
        github = hcl(GITHUB_HOST),
        substituter = hcl(&private_url()),
        cache_key = hcl(cache_key),
        netrc = if netrc {
            "netrc                  = var.netrc"
        } else {
            ""
        },
        cache = hcl(w.json["cache"]["url"].as_str().unwrap()),
    )
}

/// Where the GitHub stand-in listens: Nix's `host=` of `github:` takes no
/// port, so it has a loopback address of its own on 443.
const GITHUB_ADDRESS: &str = "127.0.0.77";
/// The `host=` of the private `github:` flake. Nix 2.8 downloads from
/// `https://api.HOST/repos/…` (and takes no `-` in HOST), so the builder resolves `api.HOST` to the
/// stand-in (an /etc/hosts line that [`HostPatch`] adds and removes).
const GITHUB_HOST: &str = "nbtgithub.test";

/// Test-only changes to the builder host, undone on drop (also when the
/// test fails): `api.GITHUB_HOST` in /etc/hosts and the stand-in's
/// certificate in the CA bundle Nix's curl reads (Nix 2.8 has no
/// `ssl-cert-file` setting).
struct HostPatch {
    host: &'static str,
}

impl HostPatch {
    const FILES: [&'static str; 2] = ["/etc/hosts", "/etc/ssl/certs/ca-certificates.crt"];

    fn apply(host: &'static str, cert: &Path) -> Self {
        let patch = Self { host };
        let h = world().host(host);
        for file in Self::FILES {
            h.exec(&format!(
                "[ -e {file}.nbt-orig ] || cp -p {file} {file}.nbt-orig"
            ));
        }
        h.exec(&format!(
            "echo '{GITHUB_ADDRESS} api.{GITHUB_HOST}' >> /etc/hosts"
        ));
        // A PEM block has no single quote.
        let pem = std::fs::read_to_string(cert).unwrap();
        h.exec(&format!(
            "printf '%s\\n' '{}' >> /etc/ssl/certs/ca-certificates.crt",
            pem.trim()
        ));
        patch
    }
}

impl Drop for HostPatch {
    fn drop(&mut self) {
        let h = world().host(self.host);
        for file in Self::FILES {
            let _ = h.try_exec(&format!("mv -f {file}.nbt-orig {file}"));
        }
    }
}

/// `tests/standins/github_tarball.py` on `GITHUB_ADDRESS:443` with a fresh
/// self-signed certificate, serving `tarball` to requests with `token`.
struct GithubStandin {
    child: std::process::Child,
    cert: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl GithubStandin {
    fn start(token: &str, tarball: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args([
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=api.{GITHUB_HOST}"),
            ])
            .args([
                "-addext",
                &format!("subjectAltName=DNS:api.{GITHUB_HOST}"),
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl req");
        assert!(status.success(), "openssl req failed");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let log = dir.path().join("requests.log");
        std::fs::write(&log, "").unwrap();
        let child = std::process::Command::new("python3")
            .arg(common::repo_root().join("tests/standins/github_tarball.py"))
            .args([GITHUB_ADDRESS, "443"])
            .args([&cert, &key, &token_file, tarball, &log])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the GitHub stand-in");
        for _ in 0..100 {
            if std::net::TcpStream::connect((GITHUB_ADDRESS, 443)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            cert,
            log,
            _dir: dir,
        }
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GithubStandin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn netrc(token: &str) -> String {
    format!("machine localhost\n  login nixbuild\n  password {token}\n")
}

/// The builder's private state, decoded (tf-provider keeps it as MessagePack,
/// base64 in the state file).
fn private_state(tf: &Tf) -> Vec<u8> {
    use base64::Engine;
    let state: Value = serde_json::from_str(&tf.state_text()).unwrap();
    let builder = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "nixbuild_builder")
        .expect("builder in state");
    let private = builder["instances"][0]["private"]
        .as_str()
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(private)
        .expect("private state is base64")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_update_in_place(tf: &Tf, text: Option<&str>) {
    let (code, plan) = tf.plan_exit_code();
    assert_eq!(code, 2, "expected a planned change: {plan}");
    assert!(
        plan.contains("nixbuild_builder.b will be updated in-place"),
        "{plan}"
    );
    assert!(
        !plan.contains("nixbuild_builder.b must be replaced"),
        "{plan}"
    );
    if let Some(text) = text {
        assert!(plan.contains(text), "`{text}` not in the plan: {plan}");
    }
}

#[test]
fn a_private_flake_needs_the_netrc_and_the_secret_stays_out_of_logs_argv_and_private_state() {
    let _h3 = exclusive(BUILDER);
    let w = world();
    let host = w.host(BUILDER);
    for version in terraform_versions() {
        let mut tf = Tf::new(&version);
        let run = salt("private-flake", &version);
        let token = format!("nbt-netrc-{}", random_hex(12));
        register_token(&token);
        let first = publish_tarball(tf.dir.path(), &format!("{run}-a"));
        let (cached, cache_key) = private_cache_paths(tf.dir.path(), &run);
        let gh = format!("ghp_{}", random_hex(8));
        let github_dir = tf.dir.path().join("c");
        fixture(&github_dir, &format!("{run}-c"));
        let github_tarball = github_dir.join("flake.tar.gz");
        common::sh(&github_dir, "tar czf flake.tar.gz flake");
        let github = GithubStandin::start(&gh, &github_tarball);
        let _patch = HostPatch::apply(BUILDER, &github.cert);
        // The location really refuses without (or with wrong) credentials.
        assert_eq!(http_status(&first, None), "401");
        assert_eq!(http_status(&first, Some("nixbuild:wrong")), "401");
        assert_eq!(
            http_status(&first, Some(&format!("nixbuild:{token}"))),
            "200"
        );

        // 1. No credentials: Nix on the builder gets a 401, the apply says so.
        tf.write(&config(&[("a", &first)], true, &cache_key));
        let failed = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(failed.contains("Build failed"), "{failed}");
        assert!(
            failed.contains("nix.netrc"),
            "no hint at the credentials: {failed}"
        );
        // The failed push is kept (tainted) with every value known.
        assert!(!failed.contains("invalid result object"), "{failed}");
        assert!(
            failed.contains("401"),
            "Nix's HTTP error in the message: {failed}"
        );
        assert!(!host.try_exec(&format!("test -e {NETRC}")).0);

        // 2. With the netrc: the push succeeds. Everything under TF_LOG=trace.
        let trace = tf.dir.path().join("trace.log");
        tf.env("TF_VAR_netrc", &netrc(&token))
            .env("TF_LOG", "trace")
            .env("TF_LOG_PATH", trace.to_str().unwrap());
        let commands_before = host.commands_log().len();
        let sshd_before = host.sshd_log().len();
        assert_update_in_place(&tf, None);
        tf.apply();
        let out = tf.output("out_paths");
        let app = out["a"][0].as_str().expect("an out path").to_string();
        assert!(app.ends_with("-nbt-app"), "{out}");
        let cache_dir = PathBuf::from(w.json["cache"]["dir"].as_str().unwrap());
        assert!(
            cache_dir
                .join(format!("{}.narinfo", &app["/nix/store/".len()..][..32]))
                .exists(),
            "{app} not in the cache"
        );
        // On the host: root-only files, included by the managed config.
        assert_eq!(
            host.exec(&format!("stat -c '%a %U' {NETRC} {CREDENTIALS}")),
            "600 root\n600 root"
        );
        assert!(host.exec(&format!("cat {NETRC}")).contains(&token));
        let credentials = host.exec(&format!("cat {CREDENTIALS}"));
        assert!(
            credentials.contains(&format!("netrc-file = {NETRC}")),
            "{credentials}"
        );
        assert!(!credentials.contains("access-tokens"), "{credentials}");
        assert!(host
            .exec("cat /etc/nix/nixbuild.conf")
            .contains("!include nixbuild-credentials.conf"));
        // The build user cannot read them.
        let (readable, _) = host.try_exec(&format!("su -s /bin/sh nixbuild -c 'cat {NETRC}'"));
        assert!(!readable, "the build user reads the netrc");
        // ... but substitutes from the private cache: the daemon (root)
        // downloads with the netrc.
        let (ok, out) = substitute_as_build_user(&cached[0]);
        assert!(ok, "substitution from the private cache failed: {out}");
        host.exec(&format!("test -e {}", cached[0]));
        assert!(
            private_log_has(&cached[0], "200"),
            "no authorized narinfo request"
        );
        tf.assert_no_changes();

        // The secret: in no log, no remote command line, not in the private state.
        let trace_text = std::fs::read_to_string(&trace).unwrap();
        assert!(trace_text.len() > 1000, "TF_LOG=trace produced no log");
        assert!(
            !trace_text.contains(&token),
            "token in the TF_LOG=trace log"
        );
        let commands = host.commands_log()[commands_before..].to_string();
        assert!(
            commands.contains(CREDENTIALS),
            "no credentials step recorded"
        );
        assert!(!commands.contains(&token), "token in a remote command line");
        assert!(
            !host.sshd_log()[sshd_before..].contains(&token),
            "token in sshd's log"
        );
        let private = private_state(&tf);
        assert!(!private.is_empty(), "no private state");
        assert!(!contains(&private, &token), "token in the private state");
        // Not even the size or times of the credential files (the Nix
        // fingerprint kept there leaves them out).
        assert!(
            contains(&private, "/etc/nix/nixbuild.conf"),
            "no Nix fingerprint"
        );
        for file in [NETRC, CREDENTIALS] {
            assert!(!contains(&private, file), "{file} in the private state");
        }
        // Terraform keeps every argument in the state (protocol 6.5 has no
        // write-only arguments): there it is sensitive.
        let shown: Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let builder = shown["values"]["root_module"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "nixbuild_builder")
            .unwrap()
            .clone();
        assert_eq!(
            builder["sensitive_values"]["nix"][0]["netrc"], true,
            "netrc not sensitive: {builder}"
        );

        // 3. Drift: a hand edit of the netrc plans an update that restores it.
        host.exec(&format!("echo 'machine example.org password x' >> {NETRC}"));
        assert_update_in_place(&tf, Some(&format!("{NETRC} was changed on the host")));
        tf.apply();
        tf.assert_no_changes();
        assert!(!host.exec(&format!("cat {NETRC}")).contains("example.org"));

        // 4. Rotation to a token the server refuses: an in-place update that
        // rewrites the file; a new push then fails with Nix's 401 again.
        let before_rotation = private_state(&tf);
        let refused = format!("{token}-not-registered");
        tf.env("TF_VAR_netrc", &netrc(&refused));
        assert_update_in_place(&tf, None);
        let second = publish_tarball(&tf.dir.path().join("b"), &format!("{run}-b"));
        tf.write(&config(&[("a", &first), ("b", &second)], true, &cache_key));
        let failed = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(failed.contains("401"), "{failed}");
        assert!(host.exec(&format!("cat {NETRC}")).contains(&refused));
        assert_ne!(
            private_state(&tf),
            before_rotation,
            "fingerprint not updated"
        );
        // ... and to a second accepted token: the push succeeds.
        let rotated = format!("{token}-rotated");
        register_token(&rotated);
        tf.env("TF_VAR_netrc", &netrc(&rotated));
        tf.apply();
        tf.assert_no_changes();
        let netrc_now = host.exec(&format!("cat {NETRC}"));
        assert!(netrc_now.contains(&rotated) && !netrc_now.contains(&refused));
        assert!(tf.output("out_paths")["b"][0].as_str().is_some());

        // 5. A `github:` flake of a private repository (the GitHub
        // stand-in): without an access token Nix gets GitHub's 404; with
        // nix.access_tokens the push succeeds. The tokens join the same
        // root-only file: root's Nix sees them, the build user's does not.
        let rev = &random_hex(20);
        let third = format!("github:nbt/private/{rev}?host={GITHUB_HOST}");
        let pushes = [
            ("a", first.as_str()),
            ("b", second.as_str()),
            ("c", third.as_str()),
        ];
        tf.write(&config(&pushes, true, &cache_key));
        let failed = tf.fails(&["apply", "-auto-approve", "-no-color"]);
        assert!(failed.contains("404"), "{failed}");
        assert!(failed.contains("nix.access_tokens"), "no hint: {failed}");
        assert!(
            github.requests().contains(" refused"),
            "{}",
            github.requests()
        );
        assert!(!github.requests().contains(" authorized"));
        tf.env("TF_VAR_github_token", &gh);
        assert_update_in_place(&tf, None);
        tf.apply();
        tf.assert_no_changes();
        assert!(tf.output("out_paths")["c"][0].as_str().is_some());
        assert!(
            github
                .requests()
                .contains(&format!("/repos/nbt/private/tarball/{rev} authorized")),
            "{}",
            github.requests()
        );
        assert!(host
            .exec(&format!("cat {CREDENTIALS}"))
            .contains(&format!("extra-access-tokens = {GITHUB_HOST}={gh}")));
        let (seen, _) = host.try_exec(&format!(
            "nix show-config | grep -q '^access-tokens = .*{GITHUB_HOST}={gh}'"
        ));
        assert!(seen, "root's Nix does not see the access token");
        let (leaked, _) = host.try_exec(&format!(
            "su -s /bin/sh nixbuild -c 'nix show-config' | grep -q '{gh}'"
        ));
        assert!(!leaked, "the build user's Nix sees the access token");
        let trace_text = std::fs::read_to_string(&trace).unwrap();
        for secret in [&token, &rotated, &gh] {
            assert!(
                !trace_text.contains(secret.as_str()),
                "a secret in the trace log"
            );
            assert!(
                !contains(&private_state(&tf), secret),
                "a secret in the private state"
            );
        }
        assert!(!host.commands_log()[commands_before..].contains(&gh));

        // 6. Removing the netrc removes its file (the tokens stay).
        tf.write(&config(&pushes, false, &cache_key));
        assert_update_in_place(&tf, None);
        tf.apply();
        tf.assert_no_changes();
        assert!(
            !host.try_exec(&format!("test -e {NETRC}")).0,
            "netrc left behind"
        );
        assert!(!host
            .exec(&format!("cat {CREDENTIALS}"))
            .contains("netrc-file"));
        // Without it the daemon gets the private cache's 401.
        let (ok, out) = substitute_as_build_user(&cached[1]);
        assert!(!ok, "{out}");
        assert!(
            private_log_has(&cached[1], "401"),
            "no refused narinfo request"
        );

        // 7. on_destroy = "clean" removes the credentials and the include.
        tf.destroy();
        assert!(
            !host.try_exec(&format!("test -e {CREDENTIALS}")).0,
            "credentials left behind"
        );
        let (_, conf) = host.try_exec("cat /etc/nix/nixbuild.conf");
        assert!(!conf.contains("nixbuild-credentials"), "{conf}");
    }
}

/// Bad credentials are refused before anything touches a host, with their
/// attribute path: literals by Terraform's validation, values from
/// (sensitive) variables, which validation sees as unknown, by the plan. No
/// error echoes the secret.
#[test]
fn bad_credentials_are_refused_at_plan_time() {
    // No other test on h3 meanwhile: its sshd log counts connections.
    let _h3 = exclusive(BUILDER);
    let version = terraform_versions().remove(0);
    let mut tf = Tf::new(&version);
    let builder = |nix: &str| {
        format!(
            r#"{provider}
variable "token" {{
  type      = string
  sensitive = true
}}

resource "nixbuild_builder" "b" {{
  host = "127.0.0.13"
  nix {{
    {nix}
  }}
}}
"#,
            provider = provider_config("")
        )
    };
    tf.env("TF_VAR_token", "two words");
    let host = world().host(BUILDER);
    let connections = host.connections_logged();
    tf.write(&builder(
        "netrc         = \"login nobody\"\n    access_tokens = { \"https://github.com\" = \"fine\" }",
    ));
    let out = tf.fails(&["plan", "-no-color"]);
    assert!(out.contains("Error: Invalid netrc"), "{out}");
    assert!(out.contains("does not start with a `machine HOST"), "{out}");
    assert!(out.contains("Error: Invalid access token host"), "{out}");
    assert!(out.contains("`https://github.com` is a URL"), "{out}");

    tf.write(&builder("access_tokens = { \"gitlab.com\" = var.token }"));
    let out = tf.fails(&["plan", "-no-color"]);
    assert!(out.contains("Error: Invalid access token"), "{out}");
    assert!(
        out.contains("the token for `gitlab.com` contains whitespace"),
        "{out}"
    );
    assert!(out.contains("access_tokens"), "the attribute path: {out}");
    assert!(!out.contains("two words"), "the secret echoed: {out}");
    assert_eq!(
        host.connections_logged(),
        connections,
        "a host was contacted"
    );
}
