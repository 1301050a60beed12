//! Hostile files and answers (issue 28's audit holes), on every supported
//! Terraform version, against the "hp" test host (sshd on port 2222, Nix
//! preinstalled) and the Cachix API stand-in:
//! - a root-only `nix.conf` keeps its mode, owner and group through an apply
//!   and a clean destroy;
//! - a machines file (or its companion) replaced by a symlink to a secret is
//!   drift, and the secret reaches no plan, state or log.

mod common;

use common::{
    daemon_restart_command, exclusive, hcl, provider_config, terraform_versions, world, Tf,
};

const HOST: &str = "hp";

fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// Puts the host's `nix.conf` back as it was when dropped, pass or fail.
struct RestoreNixConf {
    saved: String,
}

impl RestoreNixConf {
    fn save() -> Self {
        let saved = format!("/root/nix.conf.hostile-{}", nonce());
        world()
            .host(HOST)
            .exec(&format!("cp -p /etc/nix/nix.conf {saved}"));
        Self { saved }
    }
}

impl Drop for RestoreNixConf {
    fn drop(&mut self) {
        let host = world().host(HOST);
        let _ = host.try_exec(&format!(
            "cp -p {s} /etc/nix/nix.conf && rm -f {s} /etc/nix/nixbuild.conf",
            s = self.saved
        ));
        let _ = host.try_exec(&daemon_restart_command(&host));
    }
}

/// Destroys what a failed test applied, so the shared host stays clean.
struct DestroyOnPanic<'a>(&'a Tf);

impl Drop for DestroyOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.run(&["destroy", "-auto-approve", "-no-color"]);
        }
    }
}

fn builder(provider: &str, cachix: &str) -> String {
    let hp = world().host(HOST);
    format!(
        r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {host}
  on_destroy = "clean"
  ssh {{
    port     = 2222
    host_key = {host_key}
  }}
  nix {{
    install                = "none"
    daemon_restart_command = {restart}
  }}
  {cachix}
}}
"#,
        host = hcl(&hp.address()),
        host_key = hcl(&hp.host_key()),
        restart = hcl(&daemon_restart_command(&hp)),
    )
}

/// Hole 1: every apply that adds the include line, and a clean destroy that
/// removes it, rewrote `nix.conf` as 0644 root:root, so `access-tokens` in a
/// 0600 file became world-readable.
#[test]
fn a_root_only_nix_conf_stays_root_only() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let _restore = RestoreNixConf::save();
    let token = format!("github.com=ghp_hostile{}", nonce().replace('-', ""));
    for version in terraform_versions() {
        hp.exec(&format!(
            "grep -v '^access-tokens' /etc/nix/nix.conf > /etc/nix/nix.conf.new && \
             echo 'access-tokens = {token}' >> /etc/nix/nix.conf.new && \
             cat /etc/nix/nix.conf.new > /etc/nix/nix.conf && rm /etc/nix/nix.conf.new && \
             chown root:adm /etc/nix/nix.conf && chmod 0640 /etc/nix/nix.conf"
        ));
        let unreadable = |when: &str| {
            assert_eq!(
                hp.exec("stat -c '%a %U %G' /etc/nix/nix.conf"),
                "640 root adm",
                "{version}: nix.conf's mode or owner changed {when}"
            );
            let (ok, out) = hp.try_exec("runuser -u nobody -- cat /etc/nix/nix.conf");
            assert!(
                !ok && !out.contains(&token),
                "{version}: nobody can read nix.conf {when}:\n{out}"
            );
        };
        let tf = Tf::new(&version);
        let _cleanup = DestroyOnPanic(&tf);
        tf.write(&builder(&provider_config(""), ""));
        tf.apply();
        let conf = hp.exec("cat /etc/nix/nix.conf");
        assert!(
            conf.contains("include /etc/nix/nixbuild.conf") || conf.contains("nixbuild.conf"),
            "{version}: the apply added no include line:\n{conf}"
        );
        assert!(conf.contains(&token), "{version}: the user's line is gone");
        unreadable("after the apply");
        tf.destroy();
        let conf = hp.exec("cat /etc/nix/nix.conf");
        assert!(
            !conf.contains("nixbuild.conf") && conf.contains(&token),
            "{version}: the clean destroy left the include line or lost the user's line:\n{conf}"
        );
        unreadable("after the clean destroy");
    }
}

/// Runs a command on the host when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = world().host(HOST).try_exec(&self.0);
    }
}

/// Hole 2: a machines file (or its `.known_hosts` companion) swapped for a
/// symlink to a root-only secret by whoever can write its directory: the
/// refresh ran `cat` as root, so the secret went into the plan, the state and
/// the INFO log. Now the link is drift, never followed; the apply replaces
/// the link (not the secret) with the file.
#[test]
fn a_machines_file_symlink_is_drift_never_read() {
    let _host = exclusive(HOST);
    let hp = world().host(HOST);
    let h1 = world().host("h1");
    for version in terraform_versions() {
        let id = nonce();
        let dir = format!("/home/hostile-{id}");
        let file = format!("{dir}/machines");
        let secret_file = format!("/root/hostile-secret-{id}");
        let secret = format!("SECRET-{}", id.replace('-', ""));
        hp.exec(&format!(
            "mkdir -p {dir} && echo 'CACHIX_AUTH_TOKEN={secret}' > {secret_file} && chmod 600 {secret_file}"
        ));
        let mut tf = Tf::new(&version);
        tf.write(&format!(
            r#"{provider}
resource "nixbuild_machines_file" "m" {{
  target {{
    host = {host}
    path = {file}
    ssh {{
      port     = 2222
      host_key = {host_key}
    }}
  }}
  machine {{
    uri             = "ssh-ng://root@{h1}"
    systems         = ["x86_64-linux"]
    public_host_key = {h1_key}
    known_hosts     = {known}
  }}
}}
"#,
            provider = provider_config(""),
            host = hcl(&hp.address()),
            file = hcl(&file),
            host_key = hcl(&hp.host_key()),
            h1 = h1.address(),
            h1_key = hcl(&base64_of(&h1.host_key())),
            known = hcl(&format!("{} {}", h1.address(), h1.host_key())),
        ));
        tf.apply();
        // Whatever happens, the host loses the test's directory and secret.
        let _cleanup = Cleanup(format!("rm -rf {dir} {secret_file}"));
        tf.assert_no_changes();
        let companion = hp.exec(&format!("ls {dir} | grep -v '^machines$' | head -1"));
        assert!(
            !companion.is_empty(),
            "{version}: no companion file was written"
        );
        for linked in ["machines".to_string(), companion.clone()] {
            let path = format!("{dir}/{linked}");
            let before = hp.exec(&format!("cat {path}"));
            hp.exec(&format!("rm -f {path} && ln -s {secret_file} {path}"));
            let log = tf.dir.path().join(format!("tf-{linked}.log"));
            tf.env("TF_LOG", "info");
            tf.env("TF_LOG_PATH", log.to_str().unwrap());
            let args = [
                "plan",
                "-detailed-exitcode",
                "-no-color",
                "-out=linked.plan",
            ];
            let out = tf.run(&args);
            let text = tf.describe(&args, &out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{version}: a symlink at {linked} is no planned change: {text}"
            );
            let shown = tf.ok(&["show", "-json", "linked.plan"]);
            tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            for (what, haystack) in [
                ("plan output", &text),
                ("show -json", &shown),
                ("state", &tf.state_text()),
                ("TF_LOG=info log", &logged),
            ] {
                assert!(
                    !haystack.contains(&secret),
                    "{version}: the secret behind the {linked} symlink is in the {what}"
                );
            }
            assert!(
                logged.contains("symbolic link"),
                "{version}: the log does not say {linked} is a symbolic link"
            );
            tf.env("TF_LOG", "");
            tf.env("TF_LOG_PATH", "");
            tf.apply();
            assert_eq!(
                hp.exec(&format!("test -L {path} && echo link || cat {path}")),
                before,
                "{version}: the apply did not put {linked} back"
            );
            assert_eq!(
                hp.exec(&format!("cat {secret_file}")),
                format!("CACHIX_AUTH_TOKEN={secret}"),
                "{version}: the secret file changed"
            );
            tf.assert_no_changes();
        }
        tf.destroy();
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{text}\n"))
}
