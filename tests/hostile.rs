//! Hostile files and answers (issue 28's audit holes), on every supported
//! Terraform version, against the "hp" test host (sshd on port 2222, Nix
//! preinstalled):
//! - a root-only `nix.conf` keeps its mode, owner and group through an apply
//!   and a clean destroy.

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
