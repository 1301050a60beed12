//! Acceptance tests of the write-only twins of resource-level secrets
//! (`<name>_wo` with `<name>_wo_version`, Terraform ≥ 1.11), with real
//! Terraform and real hosts:
//!
//! - on h3 (`nixbuild_builder`: `nix.access_tokens_wo`, `nix.netrc_wo`,
//!   `push.secret_key_wo`) and h2 (`nixbuild_cache_push`:
//!   `store.secret_key_wo`), and on the systemd host sd (`nixbuild_builder`'s
//!   `cachix.auth_token_wo` for the watch-store service, and
//!   `nixbuild_cache_proxy`'s `tls.private_key_wo`), each fed from an
//!   ephemeral variable: the host holds the secret in its 0600 file while no
//!   secret is in the state file, `terraform show -json`, the private state,
//!   the saved plan (raw, unzipped, and `show -json`); a hand edit of a file
//!   is drift; new values with a new `_wo_version` reach the hosts, and the
//!   next plan is empty; a new value alone plans nothing (the registry
//!   convention);
//! - Terraform before 1.11 refuses a `_wo` argument at `terraform validate`,
//!   naming the minimum version;
//! - both twins, or a version without its twin, fail validation at the
//!   attribute.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    daemon_restart_command, exclusive, fixture, hcl, provider_config, salt, terraform_versions,
    world, Tf,
};
use serde_json::Value;

/// The Terraform versions of the run that have write-only arguments.
fn write_only_versions() -> Vec<String> {
    terraform_versions()
        .into_iter()
        .filter(|v| knows_write_only(v))
        .collect()
}

fn knows_write_only(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 11)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The part of a `name:base64` key that is secret.
fn key_secret(key: &str) -> String {
    key.split_once(':').unwrap().1.to_string()
}

/// `variable "NAME" { ephemeral = true, sensitive = true }` for each name,
/// and the ordinary `wo_version`.
fn variables(names: &[&str]) -> String {
    let mut out = String::from("variable \"wo_version\" {\n  type = number\n}\n");
    for name in names {
        out.push_str(&format!(
            "variable \"{name}\" {{\n  type      = string\n  ephemeral = true\n  sensitive = true\n}}\n"
        ));
    }
    out
}

/// Every secret of `secrets` is absent from `haystack` (`what` names it).
fn assert_absent(what: &str, haystack: &[u8], secrets: &[(&str, String)]) {
    assert!(!haystack.is_empty(), "{what} is empty");
    for (name, secret) in secrets {
        assert!(
            !haystack
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "the {name} is in {what}"
        );
    }
}

/// The private state of every resource instance in the state file, decoded
/// (MessagePack, base64 in the state file).
fn private_states(tf: &Tf) -> Vec<u8> {
    use base64::Engine;
    let state: Value = serde_json::from_str(&tf.state_text()).unwrap();
    let mut out = Vec::new();
    for resource in state["resources"].as_array().unwrap() {
        for instance in resource["instances"].as_array().unwrap() {
            if let Some(private) = instance["private"].as_str() {
                out.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(private)
                        .expect("private state is base64"),
                );
            }
        }
    }
    out
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The state file, `terraform show -json` and the private states hold none
/// of `secrets`; the private states hold no SHA-256 of `files` either (only
/// keyed fingerprints).
fn assert_state_clean(tf: &Tf, secrets: &[(&str, String)], files: &[String]) {
    assert_absent("the state file", tf.state_text().as_bytes(), secrets);
    let shown = tf.ok(&["show", "-json"]);
    assert_absent("`terraform show -json`", shown.as_bytes(), secrets);
    let private = private_states(tf);
    assert_absent("the private state", &private, secrets);
    let digests: Vec<(&str, String)> = files
        .iter()
        .map(|content| ("SHA-256 of a secret file", sha256_hex(content)))
        .collect();
    assert_absent("the private state", &private, &digests);
}

/// `terraform plan -out`, then the saved plan checked raw, unzipped and
/// through `terraform show -json`. Returns the plan's exit code
/// (`-detailed-exitcode`).
fn plan_out_clean(tf: &Tf, name: &str, secrets: &[(&str, String)]) -> i32 {
    let args = [
        "plan",
        "-no-color",
        "-detailed-exitcode",
        &format!("-out={name}"),
    ];
    let out = tf.run(&args);
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 2, "{}", tf.describe(&args, &out));
    assert_absent("the plan's output", &out.stdout, secrets);
    let file = tf.dir.path().join(name);
    assert_absent("the raw plan file", &std::fs::read(&file).unwrap(), secrets);
    let unzipped = Command::new("unzip")
        .args(["-p", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(unzipped.status.success(), "unzip the plan");
    assert_absent("the unzipped plan file", &unzipped.stdout, secrets);
    let shown = tf.ok(&["show", "-json", name]);
    assert_absent(
        "`terraform show -json` of the plan",
        shown.as_bytes(),
        secrets,
    );
    code
}

/// The builder on h3 with every secret write-only, and a push on h2 signed
/// with a write-only key.
fn h3_config(flake: &Path, push_cache: &str) -> String {
    let h3 = world().host("h3");
    format!(
        r#"{provider}
{variables}
resource "nixbuild_builder" "b" {{
  host       = {h3}
  on_destroy = "clean"
  nix {{
    install                  = "none"
    daemon_restart_command   = {restart}
    access_tokens_wo         = "github.com=${{var.access_token}}"
    access_tokens_wo_version = var.wo_version
    netrc_wo                 = var.netrc
    netrc_wo_version         = var.wo_version
  }}
  push {{
    store_uri             = {push_cache}
    secret_key_wo         = var.push_key
    secret_key_wo_version = var.wo_version
  }}
}}

resource "nixbuild_cache_push" "p" {{
  host         = {h2}
  source       = {flake}
  installables = ["app"]
  store {{
    uri                   = {cache}
    secret_key_wo         = var.store_key
    secret_key_wo_version = var.wo_version
  }}
}}

output "out_paths" {{
  value = nixbuild_cache_push.p.out_paths
}}
"#,
        provider = provider_config(""),
        variables = variables(&["access_token", "netrc", "push_key", "store_key"]),
        h3 = hcl(&h3.address()),
        h2 = hcl(&world().host("h2").address()),
        restart = hcl(&daemon_restart_command(&h3)),
        push_cache = hcl(push_cache),
        flake = hcl(flake.to_str().unwrap()),
        cache = hcl(world().json["cache"]["url"].as_str().unwrap()),
    )
}

/// The secrets of one round of [`h3_config`].
struct H3Secrets {
    token: String,
    password: String,
    push_key: String,
    store_key: (String, String),
}

impl H3Secrets {
    fn new(dir: &Path, round: u32) -> Self {
        Self {
            token: format!("ghp_wo{}", random_hex(12)),
            password: format!("nbt-wo-{}", random_hex(12)),
            push_key: common::nix_signing_key(dir, &format!("wo-push-{round}")).0,
            store_key: common::nix_signing_key(dir, &format!("wo-store-{round}")),
        }
    }

    fn netrc(&self) -> String {
        format!(
            "machine localhost\n  login nixbuild\n  password {}\n",
            self.password
        )
    }

    fn set(&self, tf: &mut Tf, version: u32) {
        tf.env("TF_VAR_access_token", &self.token)
            .env("TF_VAR_netrc", &self.netrc())
            .env("TF_VAR_push_key", &self.push_key)
            .env("TF_VAR_store_key", &self.store_key.0)
            .env("TF_VAR_wo_version", &version.to_string());
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("access token", self.token.clone()),
            ("netrc password", self.password.clone()),
            ("push hook key", key_secret(&self.push_key)),
            ("cache_push key", key_secret(&self.store_key.0)),
        ]
    }

    /// The host's files hold these secrets, root-only.
    fn assert_on_host(&self) {
        let h3 = world().host("h3");
        let conf = h3.exec("cat /etc/nix/nixbuild-credentials.conf");
        assert!(
            conf.contains(&format!("github.com={}", self.token)),
            "the access token is not in the credentials file"
        );
        assert!(
            h3.exec("cat /etc/nix/nixbuild.netrc")
                .contains(&format!("password {}", self.password)),
            "the netrc password is not in the netrc file"
        );
        assert_eq!(
            h3.exec("cat /etc/nixbuild/push/secret-key"),
            self.push_key,
            "the push hook's key file"
        );
        assert_eq!(
            h3.exec("stat -c '%a %U' /etc/nix/nixbuild-credentials.conf /etc/nix/nixbuild.netrc /etc/nixbuild/push/secret-key"),
            "600 root\n600 root\n600 root"
        );
    }

    /// The contents of the secret files as written (for the digest check).
    fn files(&self) -> Vec<String> {
        vec![self.netrc(), self.push_key.clone()]
    }
}

fn narinfo(path: &str) -> Option<String> {
    let dir = Path::new(world().json["cache"]["dir"].as_str().unwrap());
    let hash = &path.trim_start_matches("/nix/store/")[..32];
    std::fs::read_to_string(dir.join(format!("{hash}.narinfo"))).ok()
}

fn signed_by(path: &str, public_key: &str) -> bool {
    let name = public_key.split(':').next().unwrap();
    narinfo(path).is_some_and(|info| {
        info.lines()
            .any(|l| l.starts_with(&format!("Sig: {name}:")))
    })
}

/// Tokens, netrc and signing keys from ephemeral variables: on the hosts,
/// never in state or plan; drift, rotation by version, and the registry
/// convention for a new value under the same version.
#[test]
fn builder_and_push_secrets_reach_the_hosts_but_not_state_or_plan() {
    let _h3 = exclusive("h3");
    let versions = write_only_versions();
    assert!(!versions.is_empty(), "no Terraform ≥ 1.11 in this run");
    let push_cache = world().json["cache"]["second"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    for version in versions {
        let mut tf = Tf::new(&version);
        let dir = tf.dir.path().to_path_buf();
        let flake = fixture(&dir, &salt("write-only", &version));
        tf.write(&h3_config(&flake, &push_cache));
        let first = H3Secrets::new(&dir, 1);
        first.set(&mut tf, 1);

        // 1. Create: the hosts hold the secrets, Terraform's files do not.
        assert_eq!(plan_out_clean(&tf, "create.tfplan", &first.secrets()), 2);
        tf.ok(&["apply", "-no-color", "create.tfplan"]);
        first.assert_on_host();
        let out_paths: Vec<String> = tf
            .output("out_paths")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert!(
            signed_by(&out_paths[0], &first.store_key.1),
            "{} is not signed by the write-only key",
            out_paths[0]
        );
        assert_state_clean(&tf, &first.secrets(), &first.files());
        let shown: Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
        let builder = shown["values"]["root_module"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "nixbuild_builder")
            .unwrap()
            .clone();
        assert_eq!(builder["values"]["nix"][0]["netrc_wo"], Value::Null);
        assert_eq!(builder["values"]["nix"][0]["netrc_wo_version"], 1);
        // The next plan is empty, and so is its saved form.
        assert_eq!(plan_out_clean(&tf, "same.tfplan", &first.secrets()), 0);

        // 2. A hand edit of a file written from a write-only value is drift,
        //    found by its keyed digest; the apply restores it.
        let h3 = world().host("h3");
        h3.exec("printf 'machine localhost login x password edited\\n' > /etc/nix/nixbuild.netrc");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("/etc/nix/nixbuild.netrc was changed on the host"),
            "{plan}"
        );
        h3.exec("printf 'x' > /etc/nixbuild/push/secret-key");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("/etc/nixbuild/push/secret-key was changed on the host"),
            "{plan}"
        );
        tf.apply();
        first.assert_on_host();
        tf.assert_no_changes();

        // 3. New values under the same version: nothing planned (the
        //    registry convention: a write-only value may differ on every run).
        let second = H3Secrets::new(&dir, 2);
        second.set(&mut tf, 1);
        tf.assert_no_changes();
        first.assert_on_host();

        // 4. New values with a new version: the plan (saved) holds none of
        //    them, the apply writes them, the next plan is empty. The cache
        //    lost the out path, so the push uploads it again, signed with
        //    the new key.
        let dir_cache = Path::new(world().json["cache"]["dir"].as_str().unwrap());
        let hash = &out_paths[0].trim_start_matches("/nix/store/")[..32];
        std::fs::remove_file(dir_cache.join(format!("{hash}.narinfo"))).unwrap();
        second.set(&mut tf, 2);
        let mut all = first.secrets();
        all.extend(second.secrets());
        assert_eq!(plan_out_clean(&tf, "rotate.tfplan", &all), 2);
        tf.ok(&["apply", "-no-color", "rotate.tfplan"]);
        second.assert_on_host();
        assert!(
            signed_by(&out_paths[0], &second.store_key.1),
            "the push after the version bump did not sign with the new key"
        );
        tf.assert_no_changes();
        assert_state_clean(&tf, &all, &second.files());

        // 5. A twin without a version, then removed: adding or removing a
        //    twin plans an update by itself (the builder's private state
        //    records which arguments came from twins), which takes the
        //    tokens out of the credentials file.
        let config = h3_config(&flake, &push_cache);
        let version_line = "    access_tokens_wo_version = var.wo_version\n";
        let tokens_line = "    access_tokens_wo         = \"github.com=${var.access_token}\"\n";
        assert!(config.contains(version_line) && config.contains(tokens_line));
        let unversioned = config.replace(version_line, "");
        tf.write(&unversioned);
        tf.apply();
        tf.assert_no_changes();
        tf.write(&unversioned.replace(tokens_line, ""));
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "removing access_tokens_wo planned nothing: {plan}");
        assert!(plan.contains("drift"), "{plan}");
        tf.apply();
        tf.assert_no_changes();
        let conf = h3.exec("cat /etc/nix/nixbuild-credentials.conf");
        assert!(
            !conf.contains("access-tokens") && !conf.contains(&second.token),
            "the tokens stayed: {conf}"
        );
        assert!(conf.contains("netrc-file"), "{conf}");

        // 6. Destroy (on_destroy = "clean") removes the files.
        tf.destroy();
        assert_eq!(
            h3.exec("for f in /etc/nix/nixbuild-credentials.conf /etc/nix/nixbuild.netrc /etc/nixbuild/push; do test -e $f && echo $f; done; true"),
            ""
        );
    }
}

/// Make the Cachix API stand-in accept `token`.
fn register_token(token: &str) {
    use std::io::Write;
    let path = world().json["cachix_api"]["tokens_file"].as_str().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{token}").unwrap();
}

/// A self-signed certificate for `addr`: (cert PEM, key PEM, cert file).
fn certificate(dir: &Path, addr: &str, name: &str) -> (String, String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=proxy", "-addext"])
        .arg(format!("subjectAltName=IP:{addr}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req failed");
    (
        std::fs::read_to_string(&cert).unwrap(),
        std::fs::read_to_string(&key).unwrap(),
        cert.display().to_string(),
    )
}

/// The base64 lines of a PEM key (what must not leak).
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("")
}

fn sd_config(port: u16) -> String {
    let w = world();
    let sd = w.host("sd");
    let api = w.json["cachix_api"]["url"].as_str().unwrap();
    format!(
        r#"{provider}
{variables}
variable "certificate" {{
  type = string
}}

resource "nixbuild_builder" "sd" {{
  host       = {sd}
  on_destroy = "clean"
  nix {{
    install      = "distro"
    extra_config = "substituters =\nexperimental-features = nix-command flakes"
  }}
  cachix {{
    cache                 = "public-cache"
    watch_store           = true
    auth_token_wo         = var.cachix_token
    auth_token_wo_version = var.wo_version
  }}
}}

resource "nixbuild_cache_proxy" "p" {{
  host       = {sd}
  listen     = "{sd_addr}:{port}"
  max_size   = "256m"
  on_destroy = "clean"
  upstream {{
    url = {cache}
  }}
  tls {{
    certificate            = var.certificate
    private_key_wo         = var.tls_key
    private_key_wo_version = var.wo_version
  }}
  # One package manager at a time on the host.
  depends_on = [nixbuild_builder.sd]
}}
"#,
        provider = provider_config(&format!("cachix {{\n    api_url = {}\n  }}", hcl(api))),
        variables = variables(&["cachix_token", "tls_key"]),
        sd = hcl(&sd.address()),
        sd_addr = sd.address(),
        cache = hcl(w.json["cache"]["url"].as_str().unwrap()),
    )
}

/// `curl` the proxy's `nix-cache-info` over HTTPS, trusting only
/// `cert_file`, for up to 10 s: a changed key reaches nginx by `systemctl
/// reload`, whose new workers take over a moment after the apply returns.
fn https_ok(url: &str, cert_file: &str) -> bool {
    let started = std::time::Instant::now();
    loop {
        let ok = Command::new("curl")
            .args(["-sSf", "--max-time", "5", "--cacert", cert_file])
            .arg(format!("{url}/nix-cache-info"))
            .output()
            .unwrap()
            .status
            .success();
        if ok || started.elapsed() > std::time::Duration::from_secs(10) {
            return ok;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The watch-store token and the proxy's TLS key from ephemeral variables,
/// on the systemd host.
#[test]
fn cachix_token_and_proxy_key_reach_the_host_but_not_state_or_plan() {
    let _sd = exclusive("sd");
    let w = world();
    let sd = w.host("sd");
    let versions = write_only_versions();
    assert!(!versions.is_empty(), "no Terraform ≥ 1.11 in this run");
    for version in versions {
        sd.reset();
        let mut tf = Tf::new(&version);
        let dir = tf.dir.path().to_path_buf();
        let port = std::net::TcpListener::bind((sd.address().as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://{}:{port}", sd.address());
        tf.write(&sd_config(port));
        let round = |tf: &mut Tf, n: u32, version: u32| {
            let token = format!("nbt-wo-cachix-{}", random_hex(12));
            register_token(&token);
            let (cert, key, cert_file) = certificate(&dir, &sd.address(), &format!("r{n}"));
            tf.env("TF_VAR_cachix_token", &token)
                .env("TF_VAR_tls_key", &key)
                .env("TF_VAR_certificate", &cert)
                .env("TF_VAR_wo_version", &version.to_string());
            (token, key, cert_file)
        };
        let secrets = |token: &str, key: &str| {
            vec![
                ("Cachix token", token.to_string()),
                ("TLS key", pem_body(key)),
            ]
        };
        let on_host = |token: &str, key: &str| {
            assert_eq!(
                sd.exec("cat /etc/nixbuild/cachix.env"),
                format!("CACHIX_AUTH_TOKEN={token}")
            );
            assert_eq!(sd.exec("cat /etc/nixbuild/cache-proxy/tls.key"), key.trim());
            assert_eq!(
                sd.exec(
                    "stat -c '%a %U' /etc/nixbuild/cachix.env /etc/nixbuild/cache-proxy/tls.key"
                ),
                "600 root\n600 root"
            );
        };

        let (token, key, cert_file) = round(&mut tf, 1, 1);
        assert_eq!(
            plan_out_clean(&tf, "create.tfplan", &secrets(&token, &key)),
            2
        );
        tf.ok(&["apply", "-no-color", "create.tfplan"]);
        on_host(&token, &key);
        assert_eq!(
            sd.exec("systemctl is-active nixbuild-cachix-watch-store"),
            "active"
        );
        assert!(https_ok(&url, &cert_file), "the proxy does not serve TLS");
        assert_state_clean(&tf, &secrets(&token, &key), std::slice::from_ref(&key));
        assert_eq!(
            plan_out_clean(&tf, "same.tfplan", &secrets(&token, &key)),
            0
        );

        // A hand edit of the key file is drift; the apply restores it.
        sd.exec("printf x > /etc/nixbuild/cache-proxy/tls.key");
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("/etc/nixbuild/cache-proxy/tls.key was changed on the host"),
            "{plan}"
        );
        tf.apply();
        on_host(&token, &key);
        tf.assert_no_changes();

        // A new token alone (same version): nothing planned.
        let newer = format!("nbt-wo-cachix-{}", random_hex(12));
        register_token(&newer);
        tf.env("TF_VAR_cachix_token", &newer);
        tf.assert_no_changes();
        on_host(&token, &key);

        // New token, certificate and key with a new version.
        let (token2, key2, cert_file2) = round(&mut tf, 2, 2);
        let mut all = secrets(&token, &key);
        all.extend(secrets(&newer, &key));
        all.extend(secrets(&token2, &key2));
        assert_eq!(plan_out_clean(&tf, "rotate.tfplan", &all), 2);
        tf.ok(&["apply", "-no-color", "rotate.tfplan"]);
        on_host(&token2, &key2);
        assert!(https_ok(&url, &cert_file2), "the new key is not served");
        tf.assert_no_changes();
        assert_state_clean(&tf, &all, std::slice::from_ref(&key2));

        tf.destroy();
        assert_eq!(
            sd.exec("for f in /etc/nixbuild/cachix.env /etc/nixbuild/cache-proxy; do test -e $f && echo $f; done; true"),
            ""
        );
    }
}

/// One configuration with a `_wo` argument on each resource that has one
/// (literal values: Terraform before 1.10 has no ephemeral variables).
fn literal_config(extra: &str) -> String {
    const KEY: &str = "k-1:Z0lKmLg3ocfwxXuDvEnbFa/gt1axJPeAjHTuEQJZHn00Lg9n+CaTYHhqKSCqQ4H7cJ/ZNVo7FC+7Z6CQmUtXTw==";
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host = "127.0.0.1"
  nix {{
    netrc_wo = "machine h login u password p"
  }}
  {extra}
}}

resource "nixbuild_cache_push" "p" {{
  host         = "127.0.0.1"
  installables = ["nixpkgs#hello"]
  store {{
    uri           = "file:///tmp/c"
    secret_key_wo = "{KEY}"
  }}
}}
"#,
        provider = provider_config(""),
    )
}

/// Before 1.11 Terraform would store a write-only value like any argument:
/// `terraform validate` refuses it, naming the argument and the version.
#[test]
fn terraform_before_1_11_refuses_write_only_arguments_at_validate() {
    let versions = terraform_versions();
    let old: Vec<&String> = versions.iter().filter(|v| !knows_write_only(v)).collect();
    assert!(!old.is_empty(), "no Terraform before 1.11 in this run");
    for version in old {
        let tf = Tf::new(version);
        tf.write(&literal_config(""));
        let text = tf.fails(&["validate", "-no-color"]);
        let errors: Vec<&str> = text.split("Error: ").skip(1).collect();
        for attribute in ["netrc_wo", "secret_key_wo"] {
            assert!(
                errors.iter().any(|e| {
                    e.starts_with("Write-only argument needs Terraform 1.11 or later")
                        && e.contains(&format!("{attribute} "))
                }),
                "Terraform {version}: no refusal of {attribute}:\n{text}"
            );
        }
        assert_eq!(errors.len(), 2, "{text}");
    }
    for version in write_only_versions() {
        let tf = Tf::new(&version);
        tf.write(&literal_config(""));
        tf.ok(&["validate", "-no-color"]);
    }
}

/// Both twins, or a version without its twin: validation fails at the
/// attribute, on every Terraform version.
#[test]
fn both_twins_or_an_orphaned_version_fail_validation() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&literal_config(
            "cachix {\n    cache = \"c\"\n    auth_token_wo_version = 2\n  }",
        ));
        let text = tf.fails(&["validate", "-no-color"]);
        assert!(
            text.contains("Error: `auth_token_wo_version` without `auth_token_wo`")
                && text.contains("auth_token_wo_version = 2"),
            "Terraform {version}:\n{text}"
        );
        if knows_write_only(&version) {
            let tf = Tf::new(&version);
            tf.write(&literal_config("").replace(
                "netrc_wo = ",
                "netrc = \"machine h login u password p\"\n    netrc_wo = ",
            ));
            let text = tf.fails(&["validate", "-no-color"]);
            assert!(
                text.contains("Error: Both `netrc` and `netrc_wo` are set")
                    && text.contains("netrc_wo = "),
                "Terraform {version}:\n{text}"
            );
        }
    }
}
