//! Remote scripts run on this machine where they need no test host: the
//! package install of `nb_apt_install` (monitoring.sh, cache_proxy.sh) with
//! its temporary `/usr/sbin/policy-rc.d` (issue 28, item 9: it was left
//! behind when the script was killed mid-install).
//!
//! Each run is in a private mount namespace (`unshare --mount`, root as in
//! CI) where a scratch directory is bind-mounted over `/usr/sbin`, so the
//! real script writes its real path and the machine's own `/usr/sbin` is
//! never touched. `apt-get` and `systemctl` are stand-ins on PATH (no
//! package is installed here): the stand-in `apt-get` records that it ran
//! and, when asked, waits to be killed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use terraform_provider_nixbuild::scripts::APT_INSTALL;

const MARKER: &str = "# nixbuild: temporary, refuses service starts during a package install";

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["sbin", "bin"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let apt_get = format!(
            "#!/bin/sh\necho \"$*\" >>'{log}'\n[ ! -e '{hang}' ] || {{ touch '{started}'; exec sleep 60; }}\n",
            log = dir.path().join("apt.log").display(),
            hang = dir.path().join("hang").display(),
            started = dir.path().join("started").display(),
        );
        write_executable(&dir.path().join("bin/apt-get"), &apt_get);
        write_executable(&dir.path().join("bin/systemctl"), "#!/bin/sh\nexit 0\n");
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn policy_rc(&self) -> PathBuf {
        self.path("sbin/policy-rc.d")
    }

    /// `nb_apt_install demo-package demo.service` in the namespace.
    fn spawn(&self, hang: bool) -> Child {
        if hang {
            std::fs::write(self.path("hang"), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path("hang"));
        }
        let script = format!("{APT_INSTALL}\nnb_apt_install demo-package demo.service\n");
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap()
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" /usr/sbin && exec sh -c "$2""#)
            .arg("sandbox")
            .arg(self.path("sbin"))
            .arg(script)
            .env("PATH", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("unshare (util-linux) runs")
    }

    fn wait_until_apt_get_hangs(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.path("started").exists() {
            assert!(
                Instant::now() < deadline,
                "the stand-in apt-get never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn apt_runs(&self) -> usize {
        std::fs::read_to_string(self.path("apt.log"))
            .map(|l| l.lines().count())
            .unwrap_or(0)
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn signal_group(child: &Child, signal: i32) {
    let group = child.id() as i32;
    assert_eq!(unsafe { libc::kill(-group, signal) }, 0, "kill -{signal}");
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_install_stopped_by_sigterm_removes_its_policy_rc() {
    let sandbox = Sandbox::new();
    let child = sandbox.spawn(true);
    sandbox.wait_until_apt_get_hangs();
    let policy =
        std::fs::read_to_string(sandbox.policy_rc()).expect("policy-rc.d during the install");
    assert!(
        policy.contains(MARKER) && policy.contains("exit 101"),
        "{policy}"
    );
    // What the guard does at a stop: SIGTERM to the command's process group.
    signal_group(&child, libc::SIGTERM);
    let (status, stderr) = finish(child);
    assert_eq!(status, Some(143), "stderr: {stderr}");
    assert!(
        !sandbox.policy_rc().exists(),
        "policy-rc.d left after SIGTERM"
    );
}

#[test]
fn a_policy_rc_left_by_a_killed_install_is_removed_by_the_next_run() {
    let sandbox = Sandbox::new();
    let child = sandbox.spawn(true);
    sandbox.wait_until_apt_get_hangs();
    // SIGKILL: no trap runs, the file stays (the hole as it was).
    signal_group(&child, libc::SIGKILL);
    let (status, _) = finish(child);
    assert_eq!(status, None, "killed by a signal");
    assert!(sandbox.policy_rc().exists(), "SIGKILL leaves the file");

    let (status, stderr) = finish(sandbox.spawn(false));
    assert_eq!(status, Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("left by an interrupted install"),
        "{stderr}"
    );
    assert!(
        !sandbox.policy_rc().exists(),
        "the next run removes the leftover"
    );
    assert_eq!(sandbox.apt_runs(), 2);
}

#[test]
fn a_policy_rc_of_the_host_is_kept() {
    let sandbox = Sandbox::new();
    let own = "#!/bin/sh\nexit 101\n";
    write_executable(&sandbox.policy_rc(), own);
    let (status, stderr) = finish(sandbox.spawn(false));
    assert_eq!(status, Some(0), "stderr: {stderr}");
    assert_eq!(sandbox.apt_runs(), 1, "apt-get ran");
    assert_eq!(std::fs::read_to_string(sandbox.policy_rc()).unwrap(), own);
}

#[test]
fn a_finished_install_leaves_no_policy_rc() {
    let sandbox = Sandbox::new();
    let (status, stderr) = finish(sandbox.spawn(false));
    assert_eq!(status, Some(0), "stderr: {stderr}");
    assert_eq!(sandbox.apt_runs(), 1);
    assert!(std::fs::read_dir(sandbox.path("sbin"))
        .unwrap()
        .next()
        .is_none());
}
